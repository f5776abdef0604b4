"""Train every generative method once and draw the home page's figure: samples of each, and photo -> anime translations.

    python tools/showcase.py                          # toy faces on a laptop CPU, about 3 minutes -> nbs/images/showcase_toy.png
    python tools/showcase.py --scale real             # a GPU: real anime faces and selfie2anime -> nbs/images/showcase.png
    python tools/showcase.py --scale cpu              # the lessons' cpu-scale outputs, in one figure -> nbs/images/showcase_cpu.png

The cpu scale trains nothing: it gathers the sample grids that the lessons' real-face sections save in nbs/images
when they run at `GANIME_SCALE=cpu` (each of those trainings takes up to 15 minutes on 2 CPU cores; CycleGAN's
about 47), and says which lesson to run for a grid that is missing.

The real scale reads the anime faces from $GANIME_ANIME_FACES (else the hub's huggan/anime-faces) and the two
CycleGAN domains from $GANIME_SELFIE2ANIME (else huggan/selfie2anime). Its translation panel shows photos the
project may publish, never the real selfies: `--photos FOLDER`, else scikit-image's public-domain `astronaut` where
scikit-image is installed, else toy photo faces. Each method trains in its own run folder under `--runs`, so an
interrupted showcase resumes where it stopped.
"""
import argparse, math, sys
from pathlib import Path

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
import torch
import torchvision.transforms.v2.functional as TF

from ganime_nb.core import GanimeError, seed_everything
from ganime_nb.data import folder_items, image_grid, interleave, prepare_image, real_faces_source, toy_faces
from ganime_nb.learner import get_method, read_checkpoint, load_method
from ganime_nb.run import train
from ganime_nb.cyclegan import selfie2anime_source

# method -> (options, epochs, batch size): the lessons' settings, tiny on toy faces and full on real data
PRESETS = {
    'toy': dict(size=32, anime='toy:2048', pairs='toy:512', methods={
        'vae': (dict(width=16, latent=32, lr=2e-3), 16, 16),
        'dcgan': (dict(width=16, lr=5e-4), 30, 32),
        'wgan-gp': (dict(width=16, lr=5e-4), 30, 32),
        'resgan': (dict(width=8, lr=1e-3, lr_d=1e-3, beta1=0.5, beta2=0.999), 20, 32),
        'cyclegan': (dict(width=8, res_blocks=2, disc_width=8, disc_layers=2, lr=1e-3, ema=0.999), 8, 8)}),
    'real': dict(size=64, anime=None, pairs=None, methods={
        'vae': ({}, 30, 128),
        'dcgan': ({}, 25, 128),
        'wgan-gp': ({}, 40, 64),
        'resgan': ({}, 40, 64),
        'cyclegan': (dict(size=128, gen_kernel=5, label_noise=0.2, lr=5e-4, ema=0.999), 20, 4)}),  # the lesson's gpu recipe
}
TITLES = {'vae': 'VAE', 'dcgan': 'DCGAN', 'wgan-gp': 'WGAN-GP', 'resgan': 'ResGAN'}


def train_method(name:str, options:dict, epochs:int, batch_size:int, data:str, size:int, runs:Path, device):
    "Train (or finish training) one method in runs/NAME; returns the trained method."
    out = runs / name
    resume = (out / 'checkpoint.pt').exists()
    if resume and read_checkpoint(out / 'checkpoint.pt')['epochs_done'] >= epochs: return load_method(out / 'checkpoint.pt', device)
    seed_everything(0)
    method = get_method(name)(**{'size': size, **options})
    learn = train(method, data, epochs=epochs, batch_size=batch_size, out=out, resume=resume, device=device,
                  samples=16)
    return learn.method


def showcase_photos(folder, size:int, scale:str) -> tuple[torch.Tensor, str]:
    "Photos (uint8, N×3×size×size) the figure may show, and where they came from."
    if folder:
        if not Path(folder).is_dir(): raise GanimeError(f'no such folder: {folder}')
        decoded = (prepare_image(read(), size)[0] for _, read in folder_items(folder)[:8])
        images = [image for image in decoded if image is not None]
        if not images: raise GanimeError(f'no readable images in {folder}')
        return torch.stack(images), Path(folder).name
    if scale == 'real':
        try:
            from skimage.data import astronaut
            photo = torch.from_numpy(astronaut()).permute(2, 0, 1)[:, :260, 100:360]  # the face, cropped square
            return TF.resize(photo, [size, size], antialias=True)[None], "scikit-image's public-domain astronaut"
        except ImportError: pass
    return toy_faces(8, size, 'photo', seed=1).images, 'toy photo faces'


def draw(samples:dict, photos:torch.Tensor, anime:torch.Tensor, source:str, caption:str, out:Path):
    "One figure: a 2×8 grid of samples per method, then photos (odd columns) next to their anime versions."
    panels = [(f'{TITLES[k]}: samples from random latents', image_grid(v, nrow=8)) for k, v in samples.items()]
    panels.append((f'CycleGAN: {source} (odd columns) → anime (even columns)', image_grid(interleave(photos, anime), nrow=8)))
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.3 * len(panels)))
    for ax, (title, grid) in zip(axes, panels):
        ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation='nearest'); ax.set_title(title, fontsize=10); ax.axis('off')
    fig.suptitle(caption, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    print(f'wrote {out}')


CYCLEGAN_MINUTES = 54  # the CycleGAN lesson's cpu-scale training (bench/RESULTS.md)

# panel title -> (image the lesson's cpu-scale section saves in nbs/images, the lesson that makes it, panel width)
CPU_PANELS = {'VAE: decoded prior draws': ('vae_cpu_grid.png', '11_vae', 1), 'DCGAN': ('three_gans_cpu_dcgan.png', '24_resgan', 1),
              'WGAN-GP': ('three_gans_cpu_wgan-gp.png', '24_resgan', 1), 'ResGAN': ('three_gans_cpu_resgan.png', '24_resgan', 1),
              'CycleGAN: a public-domain\nphoto → anime': ('cyclegan_cpu_astronaut.png', '30_cyclegan', 0.6)}


def draw_from_lessons(images:Path, out:Path):
    "One row of the lessons' cpu-scale grids, read from `images`; a missing grid names the lesson that makes it."
    missing = [f'{f} ({lesson})' for f, lesson, _ in CPU_PANELS.values() if not (images / f).is_file()]
    if missing: raise GanimeError(f'run these lessons at GANIME_SCALE=cpu first (tools/execute_notebooks.py --slow): missing {", ".join(missing)} in {images}')
    fig, axes = plt.subplots(1, len(CPU_PANELS), figsize=(3.2 * len(CPU_PANELS), 3.6),
                             gridspec_kw=dict(width_ratios=[width for _, _, width in CPU_PANELS.values()]))
    for ax, (title, (file, _, _)) in zip(axes, CPU_PANELS.items()):
        ax.imshow(plt.imread(images / file), interpolation='lanczos'); ax.set_title(title, fontsize=10); ax.axis('off')
    fig.suptitle(f'ganime on 2 CPU cores: real anime faces at 32×32, at most 7 minutes of training each (CycleGAN: selfie2anime at 32×32, {CYCLEGAN_MINUTES} minutes)', fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(out, dpi=100)
    print(f'wrote {out}')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--scale', choices=[*PRESETS, 'cpu'], default='toy',
                   help="toy: tiny models on toy faces (CPU); real: the lessons' GPU runs; cpu: the lessons' cpu-scale grids, gathered")
    p.add_argument('--out', type=Path, help='PNG to write (default: nbs/images/showcase_toy.png, or showcase.png for real)')
    p.add_argument('--runs', type=Path, help='run folders (default: runs/showcase-SCALE)')
    p.add_argument('--photos', help='a folder of photos you may publish, for the translation panel (up to 8)')
    p.add_argument('--device', default=None, help='cuda, cpu, ... (default: the best available)')
    p.add_argument('--epochs-scale', type=float, default=1.0, help='multiply every epoch count (e.g. 0.25 for a quick look)')
    args = p.parse_args(argv)
    if args.scale == 'cpu': return draw_from_lessons(Path('nbs/images'), args.out or Path('nbs/images/showcase_cpu.png'))
    preset = PRESETS[args.scale]
    out = args.out or Path('nbs/images') / ('showcase.png' if args.scale == 'real' else 'showcase_toy.png')
    runs = args.runs or Path(f'runs/showcase-{args.scale}')
    anime, pairs = preset['anime'] or real_faces_source(), preset['pairs'] or selfie2anime_source()
    cyclegan_size = preset['methods']['cyclegan'][0].get('size', preset['size'])
    photos, source = showcase_photos(args.photos, cyclegan_size, args.scale)  # before training: a bad folder fails fast
    samples = {}
    for name, (options, epochs, batch_size) in preset['methods'].items():
        epochs = max(1, math.ceil(epochs * args.epochs_scale))
        data = pairs if name == 'cyclegan' else anime
        method = train_method(name, options, epochs, batch_size, data, preset['size'], runs, args.device)
        with torch.no_grad():
            if name == 'cyclegan': translated = method.translate(photos.float() / 127.5 - 1, 'a2b').float().cpu()
            else: samples[name] = method.sample(16, torch.Generator().manual_seed(0)).float().cpu()
    where = 'tiny models trained on toy faces' if args.scale == 'toy' else 'trained on real anime faces and selfie2anime'
    draw(samples, photos.float() / 127.5 - 1, translated, source, f'ganime: {where}', out)


if __name__ == '__main__':
    try: main()
    except GanimeError as e: sys.exit(f'showcase: error: {e}')
