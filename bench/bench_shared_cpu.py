"""Two trainings sharing one CPU: do they share it, or fight over it?

    python bench/bench_shared_cpu.py                 # toy DCGAN, 10 epochs, as the reliability issue measured it
    python bench/bench_shared_cpu.py --modes 'no sharing' sharing passive 'spin 1k'

Each run is `ganime train dcgan --data toy --epochs N` in a fresh process. PyTorch's OpenMP threads spin while they
wait for work (libgomp's default); on a CPU that another training also uses, a spinning thread holds a core the other
process needs. ganime's `ShareCPUCB` (on by default, `--no-share-cpu` turns it off) gives each training running at
the same time an equal share of the threads instead. The script times each mode:
- one run alone (median of `--repeats`): does one run keep its speed?
- two runs started at once, against the same two run one after the other (twice the alone time): do they share?
Two other remedies can be timed for comparison: threads that sleep at once instead of spinning
(OMP_WAIT_POLICY=PASSIVE) or spin only briefly (GOMP_SPINCOUNT=1000), each without sharing.
It prints the figures and ratios of this one run of the script, and appends them as a JSON line to --record.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from ganime_nb.core import machine_name

MODES = {'no sharing': (['--no-share-cpu'], {}), 'sharing': ([], {}),  # name: (extra options, environment)
         'passive': (['--no-share-cpu'], dict(OMP_WAIT_POLICY='PASSIVE')), 'spin 1k': (['--no-share-cpu'], dict(GOMP_SPINCOUNT='1000'))}


def start(epochs:int, mode:str, folder:Path) -> subprocess.Popen:
    "A toy DCGAN training in a fresh process, in `mode`."
    options, env = MODES[mode]
    cmd = [sys.executable, '-m', 'ganime_nb.cli', 'train', 'dcgan', '--data', 'toy', '--epochs', str(epochs), '--device', 'cpu',
           '--out', str(folder), *options]
    clean = {k: v for k, v in os.environ.items() if k not in ('OMP_WAIT_POLICY', 'GOMP_SPINCOUNT', 'OMP_NUM_THREADS', 'IN_TEST')}
    return subprocess.Popen(cmd, env={**clean, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def timed(epochs:int, mode:str, n:int, tmp:Path) -> float:
    "Seconds until `n` trainings started at once have all ended."
    began = time.perf_counter()
    procs = [start(epochs, mode, tmp / f'run{time.perf_counter_ns()}-{i}') for i in range(n)]
    for p in procs:
        _, err = p.communicate()
        if p.returncode: raise SystemExit(f'a training failed: {err.strip().splitlines()[-1]}')
    return time.perf_counter() - began


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--epochs', type=int, default=10)
    p.add_argument('--repeats', type=int, default=3, help='runs alone per mode (median)')
    p.add_argument('--modes', nargs='*', default=['no sharing', 'sharing'], help=f'which of: {", ".join(MODES)}')
    p.add_argument('--record', default='bench/results.jsonl', help='append the figures here as one JSON line')
    args = p.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes:
            alone = statistics.median(timed(args.epochs, mode, 1, Path(tmp)) for _ in range(args.repeats))
            rows[mode] = dict(alone=alone, together=timed(args.epochs, mode, 2, Path(tmp)))
    print(f'toy DCGAN, {args.epochs} epochs, the whole command; {machine_name()}')
    print(f'{"mode":12} {"one alone":>10} {"two at once":>12} {"one after other":>16} {"at once / one after other":>26}')
    for mode, r in rows.items():
        print(f'{mode:12} {r["alone"]:9.1f}s {r["together"]:11.1f}s {2 * r["alone"]:15.1f}s {r["together"] / (2 * r["alone"]):25.2f}×')
    if 'no sharing' in rows and 'sharing' in rows:
        print(f'one run alone, sharing / no sharing: {rows["sharing"]["alone"] / rows["no sharing"]["alone"]:.2f}×')
    if args.record:
        record = dict(bench='shared_cpu', date=time.strftime('%Y-%m-%d'), machine=machine_name(), epochs=args.epochs,
                      modes={k: {m: round(v, 2) for m, v in r.items()} for k, r in rows.items()})
        with open(args.record, 'a') as f: f.write(json.dumps(record) + '\n')


if __name__ == '__main__': main()
