"""Wall time and result of every method's toy run, `ganime train METHOD --data toy` with no other option.

    python bench/bench_toy.py                          # every method, its toy defaults, on this machine
    python bench/bench_toy.py --methods dcgan vae      # some of them
    python bench/bench_toy.py --epochs 1 --data toy:64 # a quick check that every toy default runs
    python bench/bench_toy.py --methods dcgan --seeds 0 1 2 3 4   # the spread of one method's results over seeds
    python bench/bench_toy.py --methods dcgan --seeds 0 1 2 3 4 --options="--d-norm layer"   # and of a candidate's

Each method trains in a fresh process from the command line, as a new user would, into a temporary run folder. The
table gives the training time (the sum of the epochs' seconds in log.jsonl), the whole command's wall time (start-up,
data, the closing summary), and for the methods that sample from noise the closing summary's two figures: how many of
the 8 toy hair colours the grid's 64 samples show (for CycleGAN: how often a translation keeps a toy photo's hair
colour), and the total-variation distance of 512 samples' (translations') hair-colour mix from the real one. The targets: at most 180 s of training on 2 CPU cores, at least 6 of 8 colours, a distance of at
most 0.15.
"""
import argparse, json, os, shlex, subprocess, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from ganime_nb.core import machine_name

METHODS = ('ae', 'vae', 'dcgan', 'wgan', 'wgan-gp', 'resgan', 'cyclegan', 'ddpm')


def run(method:str, seed:int, args, folder:Path) -> dict:
    "Train `method` on toy data from `seed` in a fresh process; its wall time, training time and closing line."
    extra = ([] if args.epochs is None else ['--epochs', str(args.epochs)]) + shlex.split(args.options)
    cmd = [sys.executable, '-m', 'ganime_nb.cli', 'train', method, '--data', args.data, *extra, '--seed', str(seed), '--device', 'cpu', '--out', str(folder)]
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - start
    if proc.returncode: return dict(method=method, wall=wall, train=None, colours=proc.stderr.strip().splitlines()[-1])
    log = [json.loads(l) for l in (folder / 'log.jsonl').read_text().splitlines()]
    summary = dict(colours='', distance='')
    for line in proc.stdout.splitlines():
        if ' toy hair colours among ' in line: summary['colours'] = line.split(' of the 8')[0] + ' of 8'
        if ' keep their hair colour ' in line: summary['colours'] = 'kept ' + line.split(' hair colour ')[1].split()[0]  # CycleGAN
        if line.startswith('hair-colour mix of '): summary['distance'] = line.split(': ')[1].split()[0]
    return dict(method=method, wall=wall, train=sum(r.get('seconds', 0) for r in log), epochs=log[-1]['epoch'], **summary)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--methods', nargs='+', default=METHODS, choices=METHODS)
    p.add_argument('--data', default='toy')
    p.add_argument('--epochs', type=int, help='override the toy default (for a quick check)')
    p.add_argument('--seeds', type=int, nargs='+', default=[0], help='a run per method and seed (default: 0, the seed of `ganime train`)')
    p.add_argument('--options', default='', help='more options of `ganime train` for every run, in one string: --options="--ema 0.99"')
    args = p.parse_args()
    print(f'{machine_name()}; torch threads: {os.environ.get("OMP_NUM_THREADS", "default")}' + (f'; options: {args.options}' if args.options else ''))
    print('| method | seed | epochs | training | wall | hair colours (64 samples) | mix distance (512 samples) |\n|---|---|---|---|---|---|---|')
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods:
            for seed in args.seeds:
                r = run(method, seed, args, Path(tmp) / f'{method}-{seed}')
                train = f"{r['train']:.0f} s" if r['train'] is not None else 'failed'
                print(f"| {method} | {seed} | {r.get('epochs', '')} | {train} | {r['wall']:.0f} s | {r['colours']} | {r.get('distance', '')} |", flush=True)


if __name__ == '__main__': main()
