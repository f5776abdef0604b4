"The home page's figure: tools/showcase.py trains every method briefly, draws one PNG, and reuses finished runs."
import os, subprocess, sys
from pathlib import Path

from PIL import Image

SCRIPT = Path(__file__).resolve().parents[1] / 'tools' / 'showcase.py'


def showcase(tmp_path, *args):
    env = {**os.environ, 'GANIME_DATA': str(tmp_path / 'data')}
    return subprocess.run([sys.executable, SCRIPT, '--runs', tmp_path / 'runs', '--out', tmp_path / 'showcase.png',
                           '--epochs-scale', '0.05', '--device', 'cpu', *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)


def test_showcase_draws_every_method_and_reuses_finished_runs(tmp_path):
    first = showcase(tmp_path)
    assert first.returncode == 0, first.stderr
    runs = sorted(p.name for p in (tmp_path / 'runs').iterdir())
    assert runs == ['cyclegan', 'dcgan', 'resgan', 'vae', 'wgan-gp']
    with Image.open(tmp_path / 'showcase.png') as im: assert im.width > 500 and im.height > 5 * 150
    stamps = {r: (tmp_path / 'runs' / r / 'checkpoint.pt').stat().st_mtime_ns for r in runs}
    again = showcase(tmp_path)
    assert again.returncode == 0, again.stderr
    assert 'epoch' not in again.stdout  # nothing trained again
    assert stamps == {r: (tmp_path / 'runs' / r / 'checkpoint.pt').stat().st_mtime_ns for r in runs}


def test_showcase_names_an_unreadable_photo_folder(tmp_path):
    (tmp_path / 'photos').mkdir()
    (tmp_path / 'photos' / 'broken.jpg').write_bytes(b'not an image')
    result = showcase(tmp_path, '--photos', tmp_path / 'photos')
    assert result.returncode != 0 and 'no readable images in' in result.stderr


def test_the_cpu_figure_gathers_the_lessons_grids_and_names_a_missing_one(tmp_path):
    images = tmp_path / 'nbs' / 'images'
    images.mkdir(parents=True)
    for name in ('vae_cpu_grid', 'three_gans_cpu_dcgan', 'three_gans_cpu_wgan-gp', 'three_gans_cpu_resgan'):
        Image.new('RGB', (66, 66), (200, 120, 90)).save(images / f'{name}.png')
    missing = showcase(tmp_path, '--scale', 'cpu')
    assert missing.returncode != 0 and 'missing cyclegan_cpu_astronaut.png (30_cyclegan)' in missing.stderr
    Image.new('RGB', (34, 18), (90, 120, 200)).save(images / 'cyclegan_cpu_astronaut.png')
    drawn = showcase(tmp_path, '--scale', 'cpu')
    assert drawn.returncode == 0, drawn.stderr
    with Image.open(tmp_path / 'showcase.png') as im: assert im.width > 1000 and im.height > 250
    assert not (tmp_path / 'runs').exists()  # nothing trained
