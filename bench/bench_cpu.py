"""Training speed on the CPU at the `cpu` scale: the old settings against faster ones, in one run, with the ratios.

    python bench/bench_cpu.py                              # DCGAN width 32 at 32x32, batch 64, every variant
    python bench/bench_cpu.py --variants nchw compile      # some of them
    python bench/bench_cpu.py --steps 3 --rounds 1         # a quick check that every variant runs

Each variant trains the same DCGAN through the library's `Learner` and `train_step`, as `ganime train dcgan` does,
on toy faces (the content of the images does not change the speed). The variants change only how the same
arithmetic runs (memory layout, compilation, precision), so they train the same model up to rounding (bfloat16 rounds more); the
batch-size variant is the one exception, and is marked so. Variants are timed in turn, A B C A B C, for `--rounds` rounds, and
each row gives the median images per second and its ratio to `nchw`, the settings `ganime train` used before
channels-last became its default on CPUs.
"""
import argparse, os, statistics, sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from ganime_nb.core import machine_name, seed_everything
from ganime_nb.data import Batches, toy_faces
from ganime_nb.learner import Learner
from ganime_nb.callbacks import ChannelsLastCB, CompileCB, MixedPrecisionCB, NaNGuardCB
from ganime_nb.dcgan import DCGAN
from timing import StepTimer, tile

VARIANTS = { # name -> (batch size, channels-last, compiled, precision, what it changes)
    'nchw': (64, False, False, 'fp32', 'eager, NCHW: `ganime train dcgan --size 32 --width 32 --no-channels-last`, the old default'),
    'channels-last': (64, True, False, 'fp32', 'eager, channels-last: the default of `ganime train` on CPUs'),
    'compile': (64, False, True, 'fp32', '--compile'),
    'channels-last+compile': (64, True, True, 'fp32', '--channels-last --compile'),
    'batch-128+compile': (128, True, True, 'fp32', '--channels-last --compile --batch-size 128 (a different run: twice the images per step)'),
    'channels-last+bf16': (64, True, False, 'bf16', '--precision bf16 (different rounding: bfloat16 convolutions, fast only on CPUs with AVX-512 BF16 or AMX)'),
}


def images_per_second(variant:str, images:torch.Tensor, args) -> float:
    "Images per second of one variant, timed over `args.steps` steps after `args.warmup`."
    batch_size, channels_last, compiled, precision, _ = VARIANTS[variant]
    torch._dynamo.reset()  # each variant compiles afresh
    seed_everything(0)
    method = DCGAN(size=args.size, width=args.width)
    data = Batches(tile(images, batch_size * (args.warmup + args.steps + 1)), batch_size, 'cpu')
    timer = StepTimer(args.warmup, args.steps)
    cbs = [NaNGuardCB(), timer, MixedPrecisionCB(precision)] + [ChannelsLastCB()] * channels_last + [CompileCB()] * compiled
    Learner(method, data, cbs, device='cpu', seed=0).fit(1)
    return batch_size * args.steps / timer.seconds


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=VARIANTS)
    p.add_argument('--size', type=int, default=32)
    p.add_argument('--width', type=int, default=32)
    p.add_argument('--steps', type=int, default=40, help='timed steps per variant and round (default: 40)')
    p.add_argument('--warmup', type=int, default=5, help='untimed steps first, compilation included (default: 5)')
    p.add_argument('--rounds', type=int, default=2, help='times each variant is timed, in turn (default: 2)')
    args = p.parse_args(argv)
    variants = ['nchw', *[v for v in args.variants if v != 'nchw']]  # the baseline of every ratio
    print(f'{machine_name()}; torch {torch.__version__}, {torch.get_num_threads()} threads; '
          f'DCGAN width {args.width} at {args.size}x{args.size}, {args.steps} steps per timing, {args.rounds} rounds')
    images = toy_faces(256, args.size).images
    speeds = {v: [] for v in variants}
    for _ in range(args.rounds):
        for v in variants: speeds[v].append(images_per_second(v, images, args))
    base = statistics.median(speeds['nchw'])
    print('| variant | batch | images/s (median) | ratio to nchw | what it is |\n|---|---|---|---|---|')
    for v in variants:
        ips = statistics.median(speeds[v])
        print(f'| {v} | {VARIANTS[v][0]} | {ips:.0f} | {ips / base:.2f}× | {VARIANTS[v][-1]} |')


if __name__ == '__main__': main()
