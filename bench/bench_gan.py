"""Training throughput and peak memory of ganime's GANs, and of a reference-style DCGAN on the same machine.

    python bench/bench_gan.py                                   # GPU: every GAN at batch 64, 128, 512, plus the reference
    python bench/bench_gan.py --methods dcgan --batch-sizes 128 # one row
    python bench/bench_gan.py --device cpu --batch-sizes 8 --steps 3   # a quick check that everything runs

ganime's rows train through the library's own `Learner` and `train_step` (data resident on the device as uint8,
bfloat16 autocast on GPUs, channels-last, fused Adam, networks compiled with `torch.compile` on GPUs), exactly as
`ganime train METHOD --channels-last --compile` does, without the per-epoch sample grids and checkpoints.

The `reference` row mimics the PyTorch examples' `dcgan/main.py`: the same DCGAN networks in float32, no
channels-last, no compilation, a sigmoid and `BCELoss`, `.item()` after each loss, and images read from JPEG files by
`torchvision.datasets.ImageFolder` through a `DataLoader` with 2 worker processes (Resize, CenterCrop, ToTensor,
Normalize). The JPEG files are written to a temporary folder first, so both rows run on the same machine and data.
"""
import argparse, math, platform, shlex, sys, tempfile, time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from ganime_nb.data import Batches, load_images, toy_faces
from ganime_nb.core import pick_device, seed_everything
from ganime_nb.learner import Learner, get_method
from ganime_nb.callbacks import ChannelsLastCB, CompileCB, MixedPrecisionCB, NaNGuardCB
from timing import StepTimer, tile

GAN_METHODS = ('dcgan', 'wgan', 'wgan-gp', 'resgan')


def source_images(args) -> torch.Tensor:
    "uint8 images to train on: toy faces (default) or any ganime data source."
    if args.data == 'toy': return toy_faces(args.distinct_images, args.size).images
    return load_images(args.data, args.size, limit=args.distinct_images).images


def method_config(name:str, args) -> dict:
    config = dict(size=args.size)
    if args.width: config['width'] = args.width
    return config


def peak_memory(device, baseline:int) -> float:
    "Peak device memory in GiB since the last reset, beyond `baseline` bytes (the resident data)."
    if device.type != 'cuda': return float('nan')
    return (torch.cuda.max_memory_allocated(device) - baseline) / 2**30


def bench_method(name:str, batch_size:int, images:torch.Tensor, device, args) -> dict:
    "Images per second of one GAN method through the Learner."
    if args.compile: torch._dynamo.reset()  # a fresh compilation per row: no recompile limits, no dynamic shapes from earlier rows
    seed_everything(0)
    method = get_method(name)(**method_config(name, args))
    data = Batches(tile(images, batch_size * (args.warmup + args.steps + 1)), batch_size, device)
    if device.type == 'cuda': torch.cuda.synchronize(device); torch.cuda.reset_peak_memory_stats(device)
    baseline = torch.cuda.memory_allocated(device) if device.type == 'cuda' else 0
    timer = StepTimer(args.warmup, args.steps)
    cbs = [NaNGuardCB(), MixedPrecisionCB(args.precision), timer]
    if not args.no_channels_last: cbs.append(ChannelsLastCB())
    if args.compile: cbs.append(CompileCB(args.compile_mode))
    Learner(method, data, cbs, device=device, seed=0).fit(1)
    if timer.seconds is None: raise RuntimeError(f'{name}: training ended before {args.warmup + args.steps} steps')
    return dict(method=name, batch=batch_size, ips=batch_size * args.steps / timer.seconds, mem=peak_memory(device, baseline))


def write_jpegs(images:torch.Tensor, n:int, folder:Path):
    "Write `n` JPEG files (cycling through `images`) into folder/faces/, as ImageFolder expects."
    from PIL import Image
    (folder / 'faces').mkdir(parents=True, exist_ok=True)
    arrays = images.permute(0, 2, 3, 1).numpy()
    for i in range(n): Image.fromarray(arrays[i % len(arrays)]).save(folder / 'faces' / f'{i:06d}.jpg', quality=95)


def bench_reference(batch_size:int, images:torch.Tensor, device, args) -> dict:
    "Images per second of a reference-style DCGAN: float32, ImageFolder + DataLoader from JPEG files, BCELoss, .item()."
    import torchvision.datasets as dset
    import torchvision.transforms as transforms
    from ganime_nb.dcgan import DCGANDiscriminator, DCGANGenerator
    with tempfile.TemporaryDirectory() as tmp:
        write_jpegs(images, args.ref_images, Path(tmp))
        dataset = dset.ImageFolder(root=tmp, transform=transforms.Compose([
            transforms.Resize(args.size), transforms.CenterCrop(args.size), transforms.ToTensor(),
            transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]))
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=args.workers, drop_last=True)
        seed_everything(0)
        width, latent = args.width or 64, 100
        netG = DCGANGenerator(args.size, 3, latent, width).to(device)
        netD = nn.Sequential(DCGANDiscriminator(args.size, 3, width), nn.Sigmoid()).to(device)
        criterion = nn.BCELoss()
        optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
        optG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
        if device.type == 'cuda': torch.cuda.synchronize(device); torch.cuda.reset_peak_memory_stats(device)
        done, start = 0, None
        while done < args.warmup + args.steps:
            for data in loader:
                if done == args.warmup:
                    if device.type == 'cuda': torch.cuda.synchronize(device)
                    start = time.perf_counter()
                if done == args.warmup + args.steps: break
                netD.zero_grad()
                real = data[0].to(device)
                label = torch.full((real.size(0),), 1.0, device=device)
                output = netD(real)
                err_real = criterion(output, label); err_real.backward()
                d_x = output.mean().item()
                fake = netG(torch.randn(real.size(0), latent, device=device))
                label.fill_(0.0)
                output = netD(fake.detach())
                err_fake = criterion(output, label); err_fake.backward()
                d_g_z1 = output.mean().item()
                optD.step()
                netG.zero_grad()
                label.fill_(1.0)
                output = netD(fake)
                err_g = criterion(output, label); err_g.backward()
                d_g_z2 = output.mean().item()
                optG.step()
                done += 1
        if device.type == 'cuda': torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
    return dict(method='reference', batch=batch_size, ips=batch_size * args.steps / seconds, mem=peak_memory(device, 0))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--device', default='auto', help='auto, cuda, cpu (default: auto)')
    p.add_argument('--methods', nargs='+', default=list(GAN_METHODS), choices=GAN_METHODS)
    p.add_argument('--batch-sizes', nargs='+', type=int, default=[64, 128, 512])
    p.add_argument('--size', type=int, default=64, help='image size (default: 64)')
    p.add_argument('--width', type=int, help="network width (default: each method's own, 64)")
    p.add_argument('--steps', type=int, default=50, help='timed steps per row (default: 50)')
    p.add_argument('--warmup', type=int, help='untimed steps first (default: 15 on a GPU, 1 on the CPU)')
    p.add_argument('--precision', default='auto', choices=['auto', 'fp32', 'bf16', 'fp16'], help='auto: bf16 on a GPU')
    p.add_argument('--compile', action=argparse.BooleanOptionalAction, help='torch.compile the networks (default: on a GPU)')
    p.add_argument('--compile-mode', help='torch.compile mode, e.g. max-autotune-no-cudagraphs (default: the default mode)')
    p.add_argument('--no-channels-last', action='store_true')
    p.add_argument('--reference', action=argparse.BooleanOptionalAction, default=True, help='also time the reference-style DCGAN')
    p.add_argument('--ref-batch-sizes', nargs='+', type=int, help='batch sizes of the reference (default: 128 if timed, else the first)')
    p.add_argument('--ref-images', type=int, help='JPEG files the reference reads (default: 8192 on a GPU, 256 on the CPU)')
    p.add_argument('--workers', type=int, default=2, help="the reference's DataLoader worker processes (the example's default: 2)")
    p.add_argument('--data', default='toy', help='images to use: toy (default), or any ganime data source')
    p.add_argument('--distinct-images', type=int, default=512, help='distinct images loaded (repeated as needed)')
    args = p.parse_args(argv)
    args.device = pick_device(None if args.device == 'auto' else args.device)
    gpu = args.device.type == 'cuda'
    if args.warmup is None: args.warmup = 15 if gpu else 1
    if args.precision == 'auto': args.precision = 'bf16' if gpu and torch.cuda.is_bf16_supported() else 'fp32'
    if args.compile is None: args.compile = gpu
    if args.ref_images is None: args.ref_images = 8192 if gpu else 256
    if args.ref_batch_sizes is None: args.ref_batch_sizes = [128] if 128 in args.batch_sizes else args.batch_sizes[:1]
    return args


def main(argv=None):
    args = parse_args(argv)
    device = args.device
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.processor() or 'CPU'
    print(f'# {name}, torch {torch.__version__}, {args.size}x{args.size}, {args.steps} timed steps after {args.warmup}')
    print(f'# command: python bench/bench_gan.py {" ".join(map(shlex.quote, sys.argv[1:] if argv is None else argv))}')
    images = source_images(args)
    rows = []
    if args.reference:
        for bs in args.ref_batch_sizes: rows.append(bench_reference(bs, images, device, args)); print_row(rows[-1], args, 'ref')
    for name in args.methods:
        for bs in args.batch_sizes: rows.append(bench_method(name, bs, images, device, args)); print_row(rows[-1], args)
    ref = {r['batch']: r['ips'] for r in rows if r['method'] == 'reference'}
    dcgan = {r['batch']: r['ips'] for r in rows if r['method'] == 'dcgan'}
    for bs in sorted(set(ref) & set(dcgan)): print(f'# dcgan at batch {bs}: {dcgan[bs] / ref[bs]:.1f}x the reference-style DCGAN')
    return rows


def print_row(r, args, kind='ganime'):
    if not getattr(print_row, 'header', False):
        print(f'{"method":10} {"batch":>5} {"images/s":>10} {"peak GiB":>9}  setup (peak: device memory during training, beyond the resident data)')
        print_row.header = True
    setup = (f'fp32, ImageFolder + DataLoader({args.workers} workers) from {args.ref_images} JPEGs' if kind == 'ref' else
             f'{args.precision}, {"" if args.no_channels_last else "channels-last, "}'
             f'{"compiled" + (f" ({args.compile_mode})" if args.compile_mode else "") if args.compile else "eager"}, data on {args.device.type}')
    mem = '-' if math.isnan(r['mem']) else f'{r["mem"]:.2f}'
    print(f'{r["method"]:10} {r["batch"]:>5} {r["ips"]:>10,.0f} {mem:>9}  {setup}', flush=True)


if __name__ == '__main__': main()
