"""Run the lessons' tests (`nbdev-test`) under other CPU kernels and seeds, and print which notebooks passed.

A training run follows another trajectory on another CPU: other SIMD kernels round differently, and a GAN amplifies
the difference. PyTorch can emulate other CPUs on this one: `ATEN_CPU_CAPABILITY` picks its vectorised kernels and
`ONEDNN_MAX_CPU_ISA` the convolution kernels. `GANIME_SEED_OFFSET` shifts every seed given to `seed_everything`.
A lesson check that passes for every seed under every setting holds on a student's machine too.

    python tools/check_notebooks.py                                        # every notebook, native kernels, seed 0
    python tools/check_notebooks.py --kernels default                      # what the second pass of .ci/run does
    python tools/check_notebooks.py nbs/21_dcgan.ipynb nbs/11_vae.ipynb --kernels native default avx2 --seeds 0 1 2 3 4
"""
import argparse, os, re, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KERNELS = {  # name -> environment
    'native': {},
    'default': {'ATEN_CPU_CAPABILITY': 'default', 'ONEDNN_MAX_CPU_ISA': 'SSE41'},  # no vector units: another rounding
    'avx2': {'ATEN_CPU_CAPABILITY': 'avx2', 'ONEDNN_MAX_CPU_ISA': 'AVX2'},  # a CPU without AVX-512
}

def notebook_filter(notebooks) -> list:
    "nbdev-test arguments selecting these notebooks (all of them when none are named)."
    if not notebooks: return []
    missing = [n for n in notebooks if not Path(n).is_file()]
    if missing: sys.exit(f'check_notebooks: no such notebook: {", ".join(missing)}')
    names = '|'.join(re.escape(Path(n).name) for n in notebooks)
    return ['--file-re', f'^({names})$']

def run_nbdev_test(kernel:str, seed:int, selection:list, workers:int=None) -> dict:
    "Run nbdev-test once under a kernel setting and seed offset; return pass/fail, the failed notebooks and the time."
    env = {**os.environ, **KERNELS[kernel], 'GANIME_SEED_OFFSET': str(seed)}
    cmd = ['nbdev-test', '--timing', *selection, *(['--n-workers', str(workers)] if workers else [])]
    start = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    failed = re.findall(r'^\t(\S+\.ipynb)$', proc.stderr.split('Failed On The Following Notebooks:')[-1], re.M) if proc.returncode else []
    if 'No files were eligible' in out: return dict(ok=False, failed=['(no notebook matched)'], seconds=0, log=out)
    return dict(ok=proc.returncode == 0, failed=failed or ([] if proc.returncode == 0 else ['(see log)']),
                seconds=time.time() - start, log=out)

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('notebooks', nargs='*', help='notebooks to test (default: all)')
    p.add_argument('--kernels', nargs='+', default=['native'], choices=list(KERNELS), help='kernel settings (default: native)')
    p.add_argument('--seeds', nargs='+', type=int, default=[0], help='seed offsets (default: 0)')
    p.add_argument('--workers', type=int, help='notebooks run at once (default: one per CPU)')
    p.add_argument('--logs', help='folder for the full output of every run')
    args = p.parse_args(argv)
    selection = notebook_filter(args.notebooks)
    table = {}
    for seed in args.seeds:
        for kernel in args.kernels:
            r = run_nbdev_test(kernel, seed, selection, args.workers)
            table[seed, kernel] = r
            verdict = 'passed' if r['ok'] else 'FAILED: ' + ', '.join(r['failed'])
            print(f'seed {seed}, kernels {kernel} ({" ".join(f"{k}={v}" for k, v in KERNELS[kernel].items()) or "as detected"}): '
                  f'{verdict} in {r["seconds"]:.0f} s', flush=True)
            if args.logs:
                Path(args.logs).mkdir(parents=True, exist_ok=True)
                (Path(args.logs) / f'seed{seed}-{kernel}.log').write_text(r['log'])
            if not r['ok'] and not args.logs: print(r['log'][-3000:], file=sys.stderr)
    print('\n| seed | ' + ' | '.join(args.kernels) + ' |\n|---|' + '---|' * len(args.kernels))
    for seed in args.seeds:
        cells = ['passed' if table[seed, k]['ok'] else 'failed: ' + ', '.join(table[seed, k]['failed']) for k in args.kernels]
        print(f'| {seed} | ' + ' | '.join(cells) + ' |')
    return 0 if all(r['ok'] for r in table.values()) else 1

if __name__ == '__main__': sys.exit(main())
