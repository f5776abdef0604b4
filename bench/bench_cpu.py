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

It also prints how close each variant comes to the CPU's own limit: the arithmetic of one step (counted by
`torch.utils.flop_counter`) per second, against a large matrix product's rate in the same precision, which bounds what
any setting that keeps the arithmetic can gain.
"""
import argparse, os, statistics, sys, time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from ganime_nb.core import machine_name, seed_everything
from ganime_nb.data import Batches, toy_faces
from ganime_nb.learner import Callback, Learner
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
    'channels-last+bf16+compile': (64, True, True, 'bf16', '--precision bf16 --compile'),
    'batch-128+bf16': (128, True, False, 'bf16', '--precision bf16 --batch-size 128 (a different run: twice the images per step)'),
}


class FlopCount(Callback):
    "Count the floating-point operations of the second training step (the first may set things up)."
    def before_step(self, learn):
        if learn.step == 1: self.counter = FlopCounterMode(display=False); self.counter.__enter__()
    def after_step(self, learn):
        if learn.step == 2: self.counter.__exit__(None, None, None); self.flops = self.counter.get_total_flops()


def flops_per_image(images:torch.Tensor, args) -> float:
    "Floating-point operations per image of one DCGAN training step at batch 64 (the same in every variant)."
    seed_everything(0)
    counter = FlopCount()
    Learner(DCGAN(size=args.size, width=args.width), Batches(tile(images, 128), 64, 'cpu'), [counter], device='cpu', seed=0).fit(1)
    return counter.flops / 64


def matmul_gflops(dtype:torch.dtype, n:int=1536, reps:int=20) -> float:
    "GFLOP/s of a large square matrix product: about the most this CPU computes per second in `dtype`."
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3): a @ b
    start = time.perf_counter()
    for _ in range(reps): a @ b
    return 2 * n ** 3 * reps / (time.perf_counter() - start) / 1e9


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
    base, flops = statistics.median(speeds['nchw']), flops_per_image(images, args)
    peak = {p: matmul_gflops(dtype) for p, dtype in (('fp32', torch.float32), ('bf16', torch.bfloat16))}
    print('| variant | batch | images/s (median) | ratio to nchw | GFLOP/s | share of the matrix product\'s rate | what it is |')
    print('|---|---|---|---|---|---|---|')
    for v in variants:
        ips = statistics.median(speeds[v])
        gflops = ips * flops / 1e9
        print(f'| {v} | {VARIANTS[v][0]} | {ips:.0f} | {ips / base:.2f}× | {gflops:.0f} | {gflops / peak[VARIANTS[v][3]]:.0%} | {VARIANTS[v][-1]} |')
    print(f'One training step is {flops * 64 / 1e9:.2f} GFLOP per batch of 64. A 1536×1536 matrix product runs at '
          f'{peak["fp32"]:.0f} GFLOP/s in float32 and {peak["bf16"]:.0f} in bfloat16 here, so no float32 setting that keeps '
          f'the arithmetic can train more than {peak["fp32"] * 1e9 / flops / base:.2f}× as fast as nchw on this CPU.')


if __name__ == '__main__': main()
