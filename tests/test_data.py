"Data sources, cleaning counts, caching and batches."
import io, time, zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image

from ganime_nb import data
from ganime_nb.data import Batches, DataError, load_images, parse_source, toy_faces
from ganime_nb.toy import TOY_ATTRIBUTES, toy_face
from ganime_nb.core import GanimeError


def _save(img, path, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


@pytest.fixture
def messy(tmp_path):
    "A folder with 5 good faces, a copied file, 0-byte, truncated, palette, RGBA, grey and non-image files."
    root = tmp_path / 'messy'
    for i in range(5): _save(toy_face(i, size=48)[0], root / f'good{i}.jpg', quality=95)
    (root / 'deep' / 'er').mkdir(parents=True)
    (root / 'deep' / 'er' / 'copy.jpg').write_bytes((root / 'good0.jpg').read_bytes())
    (root / 'zero.png').write_bytes(b'')
    (root / 'cut.jpg').write_bytes((root / 'good1.jpg').read_bytes()[:400])
    _save(toy_face(10, size=48)[0].convert('P'), root / 'palette.png')
    rgba = toy_face(11, size=48)[0].convert('RGBA'); rgba.putalpha(128)
    _save(rgba, root / 'deep' / 'alpha.png')
    _save(toy_face(12, size=48)[0].convert('L'), root / 'grey.png')
    (root / 'README.txt').write_text('not an image')
    (root / '.DS_Store').write_bytes(b'\0\0')
    return root


def test_messy_folder_counts(messy, tmp_path):
    ims = load_images(messy, size=32, data_dir=tmp_path / 'data', verbose=False)
    r = ims.report
    assert (r.kept, r.duplicates, r.empty, r.unreadable, r.converted) == (8, 1, 1, 1, 3)
    assert ims.images.shape == (8, 3, 32, 32) and ims.images.dtype == torch.uint8
    assert {'zero.png (empty)', 'cut.jpg (unreadable)', 'good0.jpg (duplicates)'} <= set(r.skipped_examples)  # sorted: deep/ first
    assert 'kept 8 images, skipped 3 (1 empty, 1 unreadable, 1 duplicates)' in str(r)


def test_cache_is_reused_and_refreshed(messy, tmp_path):
    data = tmp_path / 'data'
    first = load_images(messy, size=32, data_dir=data, verbose=False)
    caches = list((data / 'cache').glob('*.pt'))
    assert len(caches) == 1
    (messy / 'good1.jpg').unlink()  # the folder changed: its cache must not be used
    second = load_images(messy, size=32, data_dir=data, verbose=False)
    assert second.report.kept == first.report.kept - 1 and second.report.duplicates == 1
    assert len(list((data / 'cache').glob('*.pt'))) == 2


def test_empty_missing_and_wrong_sources(tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(DataError, match='no image files in .*empty'): load_images(tmp_path / 'empty', data_dir=tmp_path)
    (tmp_path / 'bad').mkdir(); (tmp_path / 'bad' / 'x.jpg').write_bytes(b'garbage')
    with pytest.raises(DataError, match=r'no usable images in .*bad.*1 unreadable'): load_images(tmp_path / 'bad', data_dir=tmp_path)
    with pytest.raises(DataError, match='no such folder or file: .*missing'): load_images(tmp_path / 'missing')
    (tmp_path / 'notes.txt').write_text('hello')
    with pytest.raises(DataError, match='not a zip file'): load_images(tmp_path / 'notes.txt')


def test_zip_with_subfolder(tmp_path):
    path = tmp_path / 'pairs.zip'
    with zipfile.ZipFile(path, 'w') as z:
        for domain, folder in (('photo', 'trainA'), ('anime', 'trainB')):
            for i in range(3):
                buf = io.BytesIO(); toy_face(i, domain, 32)[0].save(buf, 'PNG')
                z.writestr(f'set/{folder}/{i}.png', buf.getvalue())
    assert parse_source(f'{path}:trainA').part == 'trainA'
    a = load_images(f'{path}:trainA', size=32, data_dir=tmp_path, verbose=False)
    both = load_images(path, size=32, data_dir=tmp_path, verbose=False)
    assert len(a) == 3 and len(both) == 6
    assert torch.equal(a.images[0], both.images[0])


def test_toy_faces_are_deterministic_with_attributes():
    a, b = toy_faces(8, size=32, seed=3), toy_faces(8, size=32, seed=3)
    assert torch.equal(a.images, b.images)
    assert set(a.attrs) == set(TOY_ATTRIBUTES)
    for k, v in a.attrs.items(): assert v.shape == (8,) and int(v.max()) < len(TOY_ATTRIBUTES[k])
    assert not torch.equal(toy_faces(8, 32, 'photo', 3).images, a.images)
    with pytest.raises(GanimeError, match='unknown toy domain'): toy_face(0, 'cartoon')


def test_batches_shard_and_epochs():
    images = toy_faces(64, size=16).images
    whole = Batches(images, 16, seed=1)
    halves = [Batches(images, 16, seed=1).shard(r, 2) for r in (0, 1)]
    for dl in (whole, *halves): dl.set_epoch(4)
    for w, h0, h1 in zip(whole, *halves): assert torch.equal(w, torch.cat([h0, h1]))
    whole.set_epoch(5)
    assert not torch.equal(next(iter(whole)), torch.cat([next(iter(h)) for h in halves]))
    with pytest.raises(DataError, match='larger than the 64 images'): Batches(images, 128)
    with pytest.raises(DataError, match='uint8'): Batches(images.float(), 8)


def test_transparency_goes_on_white():
    from ganime_nb.data import prepare_image
    buf = io.BytesIO(); Image.new('RGBA', (40, 30), (255, 0, 0, 0)).save(buf, 'PNG')
    img, why, converted = prepare_image(buf.getvalue(), size=16)
    assert why is None and converted and img.shape == (3, 16, 16)
    assert int(img.min()) == 255  # fully transparent red is white, not red or black


def test_hub_source_goes_through_the_same_cleaning(tmp_path, monkeypatch):
    "A hub dataset (here built in memory, as the hub would return it) is read as raw bytes and cleaned like files."
    datasets = pytest.importorskip('datasets')
    faces = [toy_face(i, size=48)[0] for i in range(4)]
    table = datasets.Dataset.from_dict({'imageA': faces, 'imageB': [faces[0]] * 4})
    table = table.cast_column('imageA', datasets.Image()).cast_column('imageB', datasets.Image())
    asked = []
    monkeypatch.setattr(datasets, 'load_dataset', lambda name, split: asked.append((name, split)) or table)
    monkeypatch.setattr(data, '_hub_reachable', lambda: True)
    a = load_images('huggan/selfie2anime', size=32, data_dir=tmp_path, verbose=False)
    b = load_images('huggan/selfie2anime:imageB', size=32, data_dir=tmp_path, verbose=False)
    assert asked == [('huggan/selfie2anime', 'train')] * 2
    assert (a.report.kept, b.report.kept, b.report.duplicates) == (4, 1, 3)
    with pytest.raises(DataError, match=r"has no column 'photo'; its columns are \['imageA', 'imageB'\]"):
        load_images('hf:huggan/selfie2anime:photo', data_dir=tmp_path)


def test_hub_source_without_the_extra(monkeypatch):
    import builtins
    real_import = builtins.__import__
    def no_datasets(name, *args, **kwargs):
        if name == 'datasets': raise ImportError(name)
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, '__import__', no_datasets)
    with pytest.raises(DataError, match=r'install the optional extra first: pip install "ganime\[hub\]"'):
        load_images('huggan/anime-faces', cache=False)


def test_limit_stops_decoding_early():
    "A limit on a large source keeps the first images and decodes at most one chunk, not the whole source."
    from ganime_nb.data import CLEAN_CHUNK, clean_images
    pngs = []
    for i in range(20):
        buf = io.BytesIO(); toy_face(i, size=32)[0].save(buf, format='PNG'); pngs.append(buf.getvalue())
    decoded = []
    def loader(i): return lambda: decoded.append(i) or pngs[i % 20]
    items = [(f'face{i}.png', loader(i)) for i in range(3 * CLEAN_CHUNK)]
    ims = clean_images(items, 'many', size=32, limit=10, progress=False)
    assert len(ims.images) == ims.report.kept == 10
    assert len(decoded) <= CLEAN_CHUNK  # the first chunk at most
    whole = clean_images(items[:CLEAN_CHUNK + 5], 'some', size=32, progress=False)
    assert (whole.report.kept, whole.report.duplicates) == (20, CLEAN_CHUNK + 5 - 20)  # counts span the chunks


def test_an_unreachable_hub_fails_fast(monkeypatch, tmp_path):
    "Offline, the hub library retries for half a minute; ganime says so within a few seconds, unless HF_HUB_OFFLINE asks for its cache."
    datasets = pytest.importorskip('datasets')
    asked = []
    monkeypatch.setattr(datasets, 'load_dataset', lambda name, split: asked.append(name) or (_ for _ in ()).throw(OSError('offline')))
    monkeypatch.delenv('HF_HUB_OFFLINE', raising=False)
    monkeypatch.setattr(data, 'HUB_HOST', '192.0.2.1')  # a documentation address: never answers
    start = time.time()
    with pytest.raises(DataError, match='which cannot be reached from here'): load_images('huggan/anime-faces', data_dir=tmp_path)
    assert time.time() - start < 5 and asked == []
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    with pytest.raises(DataError, match='could not load huggan/anime-faces from the Hugging Face hub: offline'):
        load_images('huggan/anime-faces', data_dir=tmp_path)
    assert asked == ['huggan/anime-faces']


def test_a_limit_keeps_a_fixed_subset_spread_over_the_source(tmp_path):
    "With more images than the limit, load_images keeps the same spread subset every time; with no more, all of them in order."
    for i in range(12): _save(toy_face(i, size=32)[0], tmp_path / 'faces' / f'face{i:02d}.png')
    every = load_images(str(tmp_path / 'faces'), size=32, cache=False, verbose=False).images
    first = load_images(str(tmp_path / 'faces'), size=32, limit=5, cache=False, verbose=False).images
    again = load_images(str(tmp_path / 'faces'), size=32, limit=5, cache=False, verbose=False).images
    assert torch.equal(first, again) and len(first) == 5
    picked = [next(i for i in range(12) if torch.equal(every[i], img)) for img in first]
    assert picked != [0, 1, 2, 3, 4] and len(set(picked)) == 5  # not the first five: spread over the folder
    assert torch.equal(load_images(str(tmp_path / 'faces'), size=32, limit=12, cache=False, verbose=False).images, every)
