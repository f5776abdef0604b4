"""CycleGAN training speed and peak memory per batch size: the numbers behind "a 128x128 run fits a 16 GB GPU".

    python bench/bench_cyclegan.py --device cuda --size 128 --batch-sizes 1,2,4,8 --steps 50   # the GPU measurement
    python bench/bench_cyclegan.py --device cpu --size 64 --batch-sizes 1 --steps 2 --width 8 --res-blocks 2   # a quick check

Each batch size trains a fresh CycleGAN (the paper's networks unless told otherwise) through the shared `Learner`,
on toy faces already on the device, and prints one Markdown table row: iterations (training steps, each updating
both generators and both discriminators) per second, images per second, and the peak memory of the process.
"""
import argparse, platform, resource, sys

import torch

from ganime_nb.cyclegan import CycleGAN
from ganime_nb.data import Batches, toy_faces
from ganime_nb.core import pick_device, seed_everything
from ganime_nb.learner import Learner
from ganime_nb.callbacks import MixedPrecisionCB, ChannelsLastCB
from timing import StepTimer


class Repeat:
    "The same (a, b) batch `n` times: the benchmark measures training, not data loading."
    def __init__(self, batch, n): self.batch, self.n = batch, n
    def __len__(self): return self.n
    def __iter__(self): return (self.batch for _ in range(self.n))


def peak_memory(device) -> str:
    "Peak GPU memory reserved by PyTorch's allocator (what the driver sees) and allocated; on the CPU the process's peak RSS."
    if device.type == 'cuda':
        gib = 2 ** 30
        return f'{torch.cuda.max_memory_reserved(device) / gib:.2f} GiB reserved ({torch.cuda.max_memory_allocated(device) / gib:.2f} allocated)'
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if platform.system() == 'Darwin' else 1)  # bytes on macOS
    return f'{kib / 2 ** 20:.2f} GiB process peak RSS'


def bench(batch_size, args, device) -> dict:
    seed_everything(0)
    method = CycleGAN(size=args.size, width=args.width, res_blocks=args.res_blocks, gen_kernel=args.gen_kernel,
                      disc_width=args.disc_width, disc_layers=args.disc_layers, embed_weight=args.embed_weight)
    a, b = (Batches(toy_faces(batch_size, args.size, domain).images, batch_size, device).fixed_batch(batch_size) for domain in ('photo', 'anime'))
    timer = StepTimer(args.warmup, args.steps)
    cbs = [MixedPrecisionCB(args.precision), timer, *([ChannelsLastCB()] if args.channels_last else [])]
    if device.type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    Learner(method, Repeat((a, b), args.warmup + args.steps), cbs=cbs, device=device).fit(1)
    its = args.steps / timer.seconds
    return dict(batch_size=batch_size, its=its, images=its * batch_size, memory=peak_memory(device))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--device', default='auto')
    p.add_argument('--size', type=int, default=128)
    p.add_argument('--batch-sizes', default='1,2,4,8', help='comma-separated (default: 1,2,4,8)')
    p.add_argument('--steps', type=int, default=50, help='timed steps per batch size (default: 50)')
    p.add_argument('--warmup', type=int, default=5, help='untimed steps first (default: 5)')
    p.add_argument('--precision', default='auto', choices=('auto', 'fp32', 'bf16', 'fp16'))
    p.add_argument('--channels-last', action='store_true')
    p.add_argument('--width', type=int, default=64)
    p.add_argument('--res-blocks', type=int, default=6)
    p.add_argument('--gen-kernel', type=int, default=3)
    p.add_argument('--disc-width', type=int, default=64)
    p.add_argument('--disc-layers', type=int, default=3)
    p.add_argument('--embed-weight', type=float, default=0.0)
    args = p.parse_args(argv)
    device = pick_device(None if args.device == 'auto' else args.device)
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else f'CPU ({torch.get_num_threads()} threads)'
    print(f'CycleGAN {args.size}x{args.size}, width {args.width}, {args.res_blocks} residual blocks, kernel {args.gen_kernel}, '
          f'embedding D {"on" if args.embed_weight else "off"}, precision {args.precision}, on {name}, torch {torch.__version__}')
    print('| batch | iterations/s | images/s | peak memory |\n|---|---|---|---|')
    for bs in [int(s) for s in args.batch_sizes.split(',')]:
        r = bench(bs, args, device)
        print(f"| {r['batch_size']} | {r['its']:.2f} | {r['images']:.1f} | {r['memory']} |", flush=True)


if __name__ == '__main__': sys.exit(main())
