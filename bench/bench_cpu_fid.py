"""Time to equal quality on the CPU at the `cpu` scale: the old settings' FID, and how soon the new settings reach it.

    python bench/bench_cpu_fid.py --data data/anime-faces-64.zip       # the CPU issue's run: 6 epochs of the old settings
    python bench/bench_cpu_fid.py --epochs 30 --every 156 --seeds 0 1   # the README's figures: 30 epochs, FID every epoch
    python bench/bench_cpu_fid.py --new channels-last ema bf16          # bfloat16 as well (fast only with AVX-512 BF16 or AMX)
    python bench/bench_cpu_fid.py --new channels-last ema standing-stats bf16   # the average's own batch-norm statistics too
    python bench/bench_cpu_fid.py --data toy --epochs 1 --every 8 --n 256   # a quick check that it runs

Both runs train the same DCGAN (width 32, 32×32, batch 64, Adam 2·10⁻⁴, β₁ 0.5) from the same seed on the same faces
through the library's `Learner`, as `ganime train dcgan --size 32 --width 32` does. The old settings are that command's
on the day the CPU issue was filed: NCHW, float32, samples from G itself. The new ones are what `--new` names: by
default channels-last (the default of `ganime train` on CPUs since then) and samples from a moving average of G's
weights (`--ema 0.999`, the README's recipe).

The old run trains `--epochs` epochs. FID uses the metrics lesson's offline features (`TinyFeatures` at the images'
size) on `--n` samples from fixed noise against the last `--n` real faces; it is measured every `--every` steps, with
the clock stopped. A GAN's FID swings from one measurement to the next (the old run's by a factor of two and more
between neighbouring epochs), so one measurement is a poor target and a poor finish line: a run's quality at a measurement is
the median of its last `--window` FIDs. The target is the old run's quality at its end; each run's time is its training
time when its quality first reaches the target, and the new run trains until then (or for at most `--epochs` epochs). The
speed-up is the old time over the new. The table also gives the single-measurement rule (the old run's last FID as the
target, each run's first FID at or below it), which the swings make a lottery. A throughput-only comparison is
`bench/bench_cpu.py`.
"""
import argparse, statistics, sys, time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from ganime_nb.core import machine_name, seed_everything
from ganime_nb.data import Batches, load_images
from ganime_nb.learner import Callback, CancelFit, Learner
from ganime_nb.callbacks import ChannelsLastCB, MixedPrecisionCB, NaNGuardCB
from ganime_nb.dcgan import DCGAN
from ganime_nb.metrics import TinyFeatures, extract_features, frechet_distance, gaussian_stats

NEW = { # name -> what it changes against the old settings
    'channels-last': 'channels-last memory layout (`ganime train`\'s default on CPUs)',
    'ema': 'samples from a moving average of G\'s weights (--ema 0.999)',
    'standing-stats': 'the average\'s batch-norm statistics measured on its own samples before it samples (--standing-stats; needs ema)',
    'bf16': 'bfloat16 autocast (--precision bf16; different rounding, fast only on CPUs with AVX-512 BF16 or AMX)',
    'batch-128': 'batches of 128 (--batch-size 128; half the steps per epoch, the same learning rate), FID every --every × 64 images',
}


def quality(fids:list, window:int) -> float:
    "A run's quality after its last measurement: the median of its last `window` FIDs (fewer at the start)."
    return statistics.median(fids[-window:])


class FIDClock(Callback):
    "Every `every` steps and after the last one: stop the clock, measure FID, restart; end the fit once the quality reaches `target`."
    order = 100
    def __init__(self, fid, every:int, window:int, target:float=None):
        self.fid, self.every, self.window, self.target, self.records = fid, every, window, target, []
    def before_fit(self, learn): self.seconds, self.start = 0.0, time.perf_counter()
    def after_step(self, learn):
        last = learn.step == learn.n_epochs * len(learn.data)
        if learn.step % self.every and not last: return
        self.seconds += time.perf_counter() - self.start
        fid = self.fid(learn.method)
        self.records.append((learn.step, self.seconds, fid))
        median = quality([r[2] for r in self.records], self.window)
        print(f'  step {learn.step:5d}  {self.seconds:6.1f} s of training  FID {fid:.3f}  median of the last {self.window} {median:.3f}', flush=True)
        if self.target is not None and first_reached(self.records, self.target, self.window): raise CancelFit
        self.start = time.perf_counter()


def first_reached(records:list, target:float, window:int=1):
    "(step, seconds) of the first record whose quality (median of `window` FIDs, full windows only) is at most `target`, or None."
    fids = [r[2] for r in records]
    return next(((step, seconds) for i, (step, seconds, _) in enumerate(records)
                 if i + 1 >= window and quality(fids[:i + 1], window) <= target), None)


def fid_of(reference:torch.Tensor, n:int, size:int):
    "A function: method -> FID of `n` samples from fixed noise against `reference` (uint8), with the offline features."
    extractor = TinyFeatures(size=size)
    ref_stats = gaussian_stats(extract_features(reference, extractor))
    def fid(method) -> float:
        samples = method.sample_batches(n, torch.Generator().manual_seed(0))
        return frechet_distance(*ref_stats, *gaussian_stats(extract_features(samples, extractor)))
    return fid


def train_until(images:torch.Tensor, settings:set, epochs:int, fid, every:int, window:int, seed:int, target:float=None) -> FIDClock:
    "Train the benchmark's DCGAN with `settings` (a subset of NEW) and return its clock's records."
    seed_everything(seed)
    method = DCGAN(size=images.shape[-1], width=32, ema=0.999 if 'ema' in settings else 0.0, standing_stats='standing-stats' in settings)
    batch = 128 if 'batch-128' in settings else 64
    clock = FIDClock(fid, every * 64 // batch, window, target)  # measured after the same numbers of images whatever the batch
    cbs = [NaNGuardCB(), MixedPrecisionCB('bf16' if 'bf16' in settings else 'fp32'), clock] + [ChannelsLastCB()] * ('channels-last' in settings)
    Learner(method, Batches(images, batch, 'cpu', seed=seed), cbs, device='cpu', seed=seed).fit(epochs)
    return clock


def at(reached) -> str:
    "Where a run first reached the target, as the table prints it."
    return f'step {reached[0]:,}, {reached[1]:.1f} s' if reached else 'not reached'

def ratio(old_at, new_at, epochs:int) -> str:
    "The old run's time to the target over the new run's, or why there is none."
    return f'{old_at[1] / new_at[1]:.2f}×' if new_at else f'not reached in {epochs} epochs'


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', default='data/anime-faces-64.zip', help='the real faces: a folder, zip or hub dataset (default: data/anime-faces-64.zip)')
    p.add_argument('--size', type=int, default=32)
    p.add_argument('--epochs', type=int, default=6, help="the old run's epochs, and the new run's limit (default: 6, the issue's)")
    p.add_argument('--new', nargs='+', default=['channels-last', 'ema'], choices=NEW, help='what the new settings change (default: channels-last ema)')
    p.add_argument('--every', type=int, default=78, help='steps between FID measurements (default: 78, half an epoch of 10,000 faces)')
    p.add_argument('--n', type=int, default=5000, help='samples per FID, and real faces held as its reference (default: 5000)')
    p.add_argument('--window', type=int, default=5, help='FIDs whose median is a run\'s quality (default: 5)')
    p.add_argument('--seeds', type=int, nargs='+', default=[0])
    args = p.parse_args(argv)
    if 'standing-stats' in args.new and 'ema' not in args.new: p.error('--new standing-stats measures the moving average\'s statistics: add ema')
    real = load_images(args.data, args.size)
    if len(real) < args.n: p.error(f'{args.data} holds {len(real):,} images, fewer than --n {args.n:,}')
    measurements = -(-args.epochs * (len(real) // 64) // args.every)  # the old run's: every --every steps and after the last
    if measurements < args.window: p.error(f'the old run measures FID {measurements} times, fewer than --window {args.window}')
    fid = fid_of(real.images[-args.n:], args.n, args.size)
    new = set(args.new)
    print(f'{machine_name()}; torch {torch.__version__}, {torch.get_num_threads()} threads; DCGAN width 32 at {args.size}x{args.size}, '
          f'batch 64, {len(real):,} faces of {args.data}; FID of {args.n:,} samples (TinyFeatures) every {args.every} steps, '
          f'a run\'s quality the median of its last {args.window}')
    print('new settings: ' + '; '.join(NEW[k] for k in NEW if k in new))
    rows = []
    for seed in args.seeds:
        print(f'seed {seed}, old settings (NCHW, float32, samples from G), {args.epochs} epochs:')
        old = train_until(real.images, set(), args.epochs, fid, args.every, args.window, seed).records
        target = quality([r[2] for r in old], args.window)
        print(f'seed {seed}, new settings, until the median of its last {args.window} FIDs reaches {target:.3f}:')
        new_records = train_until(real.images, new, args.epochs, fid, args.every, args.window, seed, target).records
        single = old[-1][2]  # the single-measurement rule's target
        rows.append((seed, target, first_reached(old, target, args.window), first_reached(new_records, target, args.window),
                     single, first_reached(old, single), first_reached(new_records, single)))
    print(f'| seed | old: quality at its end (the target) | old: first reached at | new: first reached at | speed-up to equal quality '
          f'| single measurements: target, old, new, speed-up |')
    print('|---|---|---|---|---|---|')
    for seed, target, old_at, new_at, single, old_single, new_single in rows:
        print(f'| {seed} | {target:.3f} | {at(old_at)} | {at(new_at)} | {ratio(old_at, new_at, args.epochs)} '
              f'| {single:.3f}, {at(old_single)}, {at(new_single)}, {ratio(old_single, new_single, args.epochs)} |')


if __name__ == '__main__': main()
