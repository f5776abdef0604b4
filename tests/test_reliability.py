"Bad input and faults, tried as a new user would: each probe gets a one-line error before any work, or a counted skip."
import fractions, io, zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from ganime_nb.core import atomic_save
from ganime_nb.data import CACHE_VERSION, load_images, prepare_image
from ganime_nb.toy import toy_face
from ganime_nb.learner import read_checkpoint


def _png(img) -> bytes:
    buf = io.BytesIO(); img.save(buf, format='PNG'); return buf.getvalue()


def _faces(folder, n=3, size=40):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n): toy_face(i, size=size)[0].save(folder / f'{i}.png')
    return folder


def test_a_tiny_file_of_absurd_shape_is_skipped_without_decoding_it():
    wide = _png(Image.new('RGB', (300_000, 1)))
    assert len(wide) < 5_000
    img, why, _ = prepare_image(wide, 64)
    assert img is None and why == 'unreadable: 300000×1 pixels, not a face'
    img, why, _ = prepare_image(_png(Image.new('RGB', (6000, 5000))), 64)  # 30 megapixels
    assert img is None and why.startswith('unreadable: 6000×5000 pixels, more than 25,000,000')
    img, why, _ = prepare_image(_png(Image.new('RGB', (300, 200), (10, 20, 30))), 64)
    assert why is None and img.shape == (3, 64, 64) and img[:, 0, 0].tolist() == [10, 20, 30]


def test_absurd_images_are_counted_as_unreadable(tmp_path):
    folder = _faces(tmp_path / 'faces')
    (folder / 'wide.png').write_bytes(_png(Image.new('RGB', (100_000, 1))))
    ims = load_images(folder, 32, cache=False, verbose=False)
    assert (ims.report.kept, ims.report.unreadable) == (3, 1)
    assert ims.report.skipped_examples == ['wide.png (unreadable: 100000×1 pixels, not a face)']


def test_a_zip_member_that_fails_its_crc_is_skipped(tmp_path):
    path = tmp_path / 'faces.zip'
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as z:
        for i in range(3): z.writestr(f'faces/{i}.png', _png(toy_face(i, size=40)[0]))
    data = bytearray(path.read_bytes())
    at = data.index(b'IDAT') + 20  # inside the first member's image data, stored as is
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    ims = load_images(path, 32, cache=False, verbose=False)
    assert (ims.report.kept, ims.report.unreadable) == (2, 1)


def test_sixteen_bit_grey_keeps_its_tones():
    grey = Image.fromarray(np.full((48, 48), 32896, dtype=np.uint16))  # 32896 / 65535 = 128 / 255
    assert grey.mode.startswith('I')
    img, why, converted = prepare_image(_png(grey), 32)
    assert why is None and converted and img.unique().tolist() == [128]


def test_a_damaged_or_stale_cache_is_rebuilt(tmp_path, capsys):
    folder, cache = _faces(tmp_path / 'faces'), tmp_path / 'data'
    first = load_images(folder, 32, data_dir=cache, verbose=False)
    path, = (cache / 'cache').glob('*.pt')
    path.write_bytes(path.read_bytes()[:100])  # truncated
    again = load_images(folder, 32, data_dir=cache, verbose=False)
    assert 'is unreadable' in capsys.readouterr().out and torch.equal(again.images, first.images)
    stale = torch.load(path, weights_only=True)
    for problem, saved in {'made by another version of ganime': {**stale, 'version': CACHE_VERSION - 1},
                           'not uint8 images': {**stale, 'images': torch.rand(3, 3, 32, 32)},
                           'images of shape (3, 8, 8)': {**stale, 'images': stale['images'][..., :8, :8]},
                           'a report that does not match': {**stale, 'images': stale['images'][:2]},
                           'made for another source': {**stale, 'key': 'elsewhere'}}.items():
        atomic_save(saved, path)
        again = load_images(folder, 32, data_dir=cache, verbose=False)
        out = capsys.readouterr().out
        assert out.count('\n') == 1 and problem in out and 'rebuilding it' in out, (problem, out)
        assert torch.equal(again.images, first.images)
    load_images(folder, 32, data_dir=cache, verbose=False)
    assert capsys.readouterr().out == ''  # the rebuilt cache is good


TRAIN = ['train', 'ae', '--data', 'toy:32', '--size', '32', '--width', '4', '--latent', '8', '--batch-size', '16',
         '--samples', '4', '--device', 'cpu']


@pytest.mark.parametrize('args, message', [
    (['--batch-size', '0'], 'batch_size must be at least 1; got 0'),
    (['--batch-size', '-4'], 'batch_size must be at least 1; got -4'),
    (['--epochs', '0'], 'epochs must be at least 1; got 0'),
    (['--epochs', '-3'], 'epochs must be at least 1; got -3'),
    (['--limit', '-5'], 'limit must be at least 1; got -5'),
    (['--samples', '0'], 'samples must be at least 1; got 0'),
    (['--samples', '-3'], 'samples must be at least 1; got -3'),
    (['--device', 'nosuch'], "unknown device 'nosuch'"),
    (['--precision', 'fp8'], "unknown precision 'fp8'"),
    (['--data', ''], 'the data source is empty'),
    (['--out', 'notes.txt'], '--out notes.txt is a file, not a folder'),
    (['--out', 'notes.txt/run'], 'cannot be created'),
])
def test_bad_train_arguments_are_one_line_before_any_work(ganime, args, message):
    (ganime.cwd / 'notes.txt').write_text('keep me')
    run = ganime(*TRAIN, '--epochs', '1', '--out', 'run', *args, check=2)
    assert message in run.stderr and run.stderr.count('\n') == 1 and 'Traceback' not in run.stderr, run.stderr
    assert not (ganime.cwd / 'run').exists() and (ganime.cwd / 'notes.txt').read_text() == 'keep me'


def test_bad_sample_and_data_outputs_are_one_line_before_any_work(ganime):
    ganime(*TRAIN, '--epochs', '1', '--out', 'run', check=0)
    (ganime.cwd / 'grids').mkdir()
    for args, message in {('sample', 'run/checkpoint.pt', '--out', 'grids'): '--out grids is a folder, not a file',
                          ('sample', 'run/checkpoint.pt', '-n', '0'): '-n must be at least 1; got 0',
                          ('data', 'toy:8', '--preview', 'grids'): '--preview grids is a folder, not a file',
                          ('data', 'toy:8', '--limit', '-5'): '--limit must be at least 1; got -5',
                          ('data', ''): 'the data source is empty'}.items():
        err = ganime(*args, check=2).stderr
        assert message in err and err.count('\n') == 1, (args, err)


def _checkpoint_with(ganime, change):
    "A trained checkpoint, changed by `change(state)`, saved as bad.pt."
    ganime(*TRAIN, '--epochs', '1', '--out', 'run', check=0)
    state = read_checkpoint(ganime.cwd / 'run' / 'checkpoint.pt')
    assert state['ganime'] == '0.0.1'
    change(state)
    atomic_save(state, ganime.cwd / 'run' / 'checkpoint.pt')


@pytest.mark.parametrize('change, message', [
    (lambda s: s['config'].update(width=8), "checkpoint.pt's encoder does not fit ae (written by ganime 0.0.1): size mismatch"),
    (lambda s: s.pop('models'), "holds networks [], not ae's ['decoder', 'encoder']"),
    (lambda s: s['config'].update(colour='pink'), "holds a configuration that ae does not take"),
])
def test_checkpoints_that_do_not_fit_their_method_are_one_line(ganime, change, message):
    _checkpoint_with(ganime, change)
    for args in (['sample', 'run/checkpoint.pt'], ['train', 'ae', '--out', 'run', '--resume', '--epochs', '2']):
        err = ganime(*args, check=2).stderr
        assert err.count('\n') == 1 and 'Traceback' not in err, (args, err)
        assert message.split(' (written')[0].split("checkpoint.pt's ")[-1] in err, (args, err)


def test_an_unsafe_pickle_is_refused_in_one_sentence(tmp_path):
    torch.save({'format': 'ganime-checkpoint-2', 'payload': fractions.Fraction(1, 3)}, tmp_path / 'evil.pt')  # any non-tensor class
    with pytest.raises(Exception, match=r"evil.pt is not a ganime checkpoint: it holds a Python object \(fractions.Fraction\) "
                                        r"that loading refuses, because unpickling it could run code$"):
        read_checkpoint(tmp_path / 'evil.pt')


def test_a_run_killed_while_writing_leaves_no_temporary_behind(ganime):
    ganime(*TRAIN, '--epochs', '1', '--out', 'run', check=0)
    (ganime.cwd / 'run' / '.checkpoint.pt.999.tmp').write_bytes(b'')  # what a kill during the write leaves
    ganime('train', 'ae', '--out', 'run', '--resume', '--epochs', '2', check=0)
    assert sorted(p.name for p in (ganime.cwd / 'run').iterdir()) == ['checkpoint.pt', 'log.jsonl', 'losses.png', 'samples']


def _cyclegan_checkpoint(path):
    "A one-step CycleGAN checkpoint of the smallest networks, for translate's probes."
    from ganime_nb.callbacks import CheckpointCB
    from ganime_nb.cyclegan import CycleGAN, unpaired_batches
    from ganime_nb.learner import Learner
    torch.manual_seed(0)
    m = CycleGAN(size=32, width=4, res_blocks=1, disc_width=4, disc_layers=2)
    Learner(m, unpaired_batches('toy:4', 32, 4), cbs=[CheckpointCB(path)], device='cpu').fit(1)
    return path


def test_translate_never_overwrites_its_inputs_nor_earlier_outputs(tmp_path, capsys):
    from ganime_nb import cli
    ckpt = _cyclegan_checkpoint(tmp_path / 'cg.pt')
    photos = _faces(tmp_path / 'photos')
    originals = {p.name: p.read_bytes() for p in photos.iterdir()}
    def translate(*args):
        code = cli.main(['translate', str(ckpt), '--device', 'cpu', *map(str, args)])
        out, err = capsys.readouterr()
        return code, out, err
    for out in (photos, photos / 'anime'):
        code, _, err = translate('--input', photos, '--out', out)
        assert code == 2 and 'is inside the input folder' in err and err.count('\n') == 1, err
    code, _, err = translate('--input', photos / '0.png', '--out', photos, '--overwrite')  # one PNG translated onto itself
    assert code == 2 and 'would overwrite the input' in err, err
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == originals
    (tmp_path / 'anime').mkdir()
    (tmp_path / 'anime' / '1.png').write_bytes(b'keep me')
    code, out, _ = translate('--input', photos, '--out', tmp_path / 'anime')
    assert code == 0 and 'translated 2 images' in out and 'left 1 existing file as they were' in out, out
    assert (tmp_path / 'anime' / '1.png').read_bytes() == b'keep me'
    code, out, _ = translate('--input', photos, '--out', tmp_path / 'anime', '--overwrite')
    assert code == 0 and 'translated 3 images' in out and (tmp_path / 'anime' / '1.png').read_bytes() != b'keep me'


def test_a_bad_translate_out_is_one_line_before_any_work(tmp_path, capsys):
    from ganime_nb import cli
    photos = _faces(tmp_path / 'photos')
    (tmp_path / 'notes.txt').write_text('keep me')
    for out, message in ((tmp_path / 'notes.txt', 'is a file, not a folder'), (tmp_path / 'notes.txt' / 'x', 'cannot be created')):
        code = cli.main(['translate', str(tmp_path / 'no-checkpoint-needed.pt'), '--input', str(photos), '--out', str(out)])
        err = capsys.readouterr().err
        assert code == 2 and message in err and err.count('\n') == 1, err  # refused before the checkpoint is even looked for


def test_a_zero_latent_is_one_line_before_any_work(ganime):
    err = ganime('train', 'dcgan', '--data', 'toy:8', '--latent', '0', '--out', 'run', '--device', 'cpu', check=2).stderr
    assert 'latent must be at least 1; got 0' in err and err.count('\n') == 1, err
    assert not (ganime.cwd / 'run').exists()


def test_bad_eval_arguments_are_one_line_before_any_work(ganime):
    ganime(*TRAIN, '--epochs', '1', '--out', 'run', check=0)
    (ganime.cwd / 'grids').mkdir()
    for args, message in {('--batch-size', '0'): '--batch-size must be at least 1; got 0',
                          ('--k', '0'): '--k must be at least 1; got 0',
                          ('--json', 'grids'): '--json grids is a folder, not a file'}.items():
        err = ganime('eval', 'run/checkpoint.pt', '-n', '8', '--features', 'tiny', *args, check=2).stderr
        assert message in err and err.count('\n') == 1, (args, err)


def test_a_damaged_classifier_cache_is_trained_again(tmp_path, capsys, monkeypatch):
    from ganime_nb import probes
    path = tmp_path / 'models' / f'toy-attributes-anime-8-v{probes.CLASSIFIER_VERSION}.pt'
    path.parent.mkdir()
    path.write_bytes(b'\x80\x02 truncated')
    trained = []
    monkeypatch.setattr(probes, 'train_attribute_classifier', lambda *a, **kw: trained.append(a) or probes.AttributeClassifier())
    classifier = probes.attribute_classifier(8, data_dir=tmp_path, device='cpu', verbose=False)
    assert isinstance(classifier, probes.AttributeClassifier) and trained == [(8, 'anime')]
    assert 'is unreadable' in capsys.readouterr().out
    probes.attribute_classifier(8, data_dir=tmp_path, device='cpu')  # the new file is good: no second training
    assert len(trained) == 1 and capsys.readouterr().out == ''


def test_the_offline_inception_message_names_the_command_line_option(monkeypatch):
    import sys
    from ganime_nb.core import GanimeError
    from ganime_nb.metrics import InceptionFeatures
    monkeypatch.setitem(sys.modules, 'torch_fidelity.feature_extractor_inceptionv3', None)  # as if not installed
    with pytest.raises(GanimeError, match='--features tiny on the command line'): InceptionFeatures()


def _foreign_checkpoint(path, **fields):
    "A file with a ganime checkpoint's header and the given fields."
    atomic_save({'format': 'ganime-checkpoint-2', 'config': {}, 'run': {}, 'epochs_done': 1, **fields}, path)
    return path


def test_a_checkpoint_can_never_make_ganime_import_code(ganime):
    "A checkpoint naming an unregistered method and a module beside it: one line, and the module never runs."
    (ganime.cwd / 'evilmod.py').write_text("open('pwned', 'w').write('ran')\n")
    _foreign_checkpoint(ganime.cwd / 'evil.pt', method='evil', module='evilmod')
    _foreign_checkpoint(ganime.cwd / 'zen.pt', method='zen', module='this')
    _foreign_checkpoint(ganime.cwd / 'gone.pt', method='gone', module='no_such_module_anywhere')
    for name in ('evil', 'zen', 'gone'):
        for args in (['sample', f'{name}.pt'], ['eval', f'{name}.pt', '--features', 'tiny']):
            run = ganime(*args, env={'PYTHONPATH': str(ganime.cwd)}, check=2)
            assert f"unknown method '{name}'" in run.stderr and run.stderr.count('\n') == 1, run.stderr
            assert 'Beautiful is better' not in run.stdout, run.stdout  # the Zen of Python: `import this` ran
    assert not (ganime.cwd / 'pwned').exists()


def test_a_method_registered_in_your_own_code_loads_from_its_checkpoint(tmp_path):
    from ganime_nb.learner import TinyAutoencoder, load_method, register_method, get_method
    from ganime_nb.core import GanimeError
    path = _foreign_checkpoint(tmp_path / 'mine.pt', method='tiny-ae', config=dict(size=16, latent=4),
                               models={k: m.state_dict() for k, m in TinyAutoencoder(16, 4).models.items()})
    with pytest.raises(GanimeError, match="unknown method 'tiny-ae'"): load_method(path)
    register_method(TinyAutoencoder)
    assert isinstance(load_method(path, 'cpu'), TinyAutoencoder) and get_method('tiny-ae') is TinyAutoencoder
