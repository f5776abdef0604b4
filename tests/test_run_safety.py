"Nothing is lost and nothing runs that should not: run-folder locks, epochs written whole, full disks, big files, signals."
import errno, json, os, signal, subprocess, sys, time, tracemalloc, zipfile, zlib
from pathlib import Path

import pytest
import torch
from PIL import Image

from ganime_nb import cli, core
from ganime_nb.ae import Autoencoder
from ganime_nb.callbacks import auto_precision, MixedPrecisionCB
from ganime_nb.run import train
from ganime_nb.core import DiskFullError, GanimeError, LOCK_FILE, seed_everything
from ganime_nb.data import MAX_FILE_BYTES, load_images, prepare_image
from ganime_nb.toy import toy_face
from ganime_nb.learner import Callback, read_checkpoint

TRAIN = ['train', 'ae', '--data', 'toy:32', '--size', '32', '--width', '4', '--latent', '8', '--batch-size', '16',
         '--samples', '4', '--device', 'cpu']


def _wait_for(path:Path, proc, seconds=300):
    "Wait until `path` exists (or `proc` ended)."
    end = time.time() + seconds
    while not path.exists() and proc.poll() is None and time.time() < end: time.sleep(0.05)
    assert path.exists(), proc.communicate()


def _start(ganime, *args):
    env = {**os.environ, 'GANIME_DATA': str(ganime.cwd / 'data')}
    return subprocess.Popen([sys.executable, '-m', 'ganime_nb.cli', *map(str, args)], cwd=ganime.cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_second_run_into_a_busy_folder_is_refused_in_one_line(ganime):
    first = _start(ganime, *TRAIN, '--epochs', '100000', '--out', 'run')  # far more than the test lasts, however slow the second runs
    try:
        _wait_for(ganime.cwd / 'run' / 'checkpoint.pt', first)
        for extra in ([], ['--resume']):
            err = ganime(*TRAIN, '--epochs', '2', '--out', 'run', *extra, check=2).stderr
            assert f'is in use by another run (process {first.pid})' in err and err.count('\n') == 1, err
        assert first.poll() is None  # the first run goes on
    finally:
        first.send_signal(signal.SIGINT)
        try: out, err = first.communicate(timeout=120)
        except subprocess.TimeoutExpired: first.kill(); out, err = first.communicate()
    assert first.returncode == 130, (first.returncode, out[-1000:], err[-1000:])
    assert not (ganime.cwd / 'run' / LOCK_FILE).exists()
    ganime('train', 'ae', '--out', 'run', '--resume', '--epochs', str(read_checkpoint(ganime.cwd / 'run' / 'checkpoint.pt')['epochs_done'] + 1), check=0)


def test_sigterm_keeps_finished_epochs_and_says_so_in_one_line(ganime):
    run = _start(ganime, *TRAIN, '--epochs', '400', '--out', 'run')
    _wait_for(ganime.cwd / 'run' / 'checkpoint.pt', run)
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 143 and err == 'ganime: stopped (SIGTERM). Finished epochs are saved: continue with --resume\n', err
    assert read_checkpoint(ganime.cwd / 'run' / 'checkpoint.pt')['epochs_done'] >= 1


class Killed(Exception): "As if the process were killed here."

class KillAt(Callback):
    "Stop the run in epoch `epoch`'s after_epoch, at this callback's `order` (before or after the checkpoint's)."
    def __init__(self, epoch, order): self.epoch, self.order = epoch, order
    def after_epoch(self, learn):
        if learn.epochs_done == self.epoch: raise Killed


def _train(out, epochs, resume=False, cbs=()):
    seed_everything(0)
    return train(Autoencoder(size=32, latent=8, width=4), 'toy:32', epochs=epochs, batch_size=16, out=out, resume=resume,
                 device='cpu', samples=4, cbs=cbs)


@pytest.mark.parametrize('order', [-1, 5])  # killed after the grid and log line, or after the checkpoint too
def test_every_saved_epoch_has_its_grid_and_one_log_line(tmp_path, order):
    with pytest.raises(Killed): _train(tmp_path, 3, cbs=[KillAt(2, order)])
    assert (tmp_path / 'samples' / 'epoch_002.png').exists()  # the grid is written before the checkpoint counts the epoch
    _train(tmp_path, 3, resume=True)
    log = [json.loads(l) for l in (tmp_path / 'log.jsonl').read_text().splitlines()]
    assert [r['epoch'] for r in log] == [1, 2, 3]
    assert sorted(p.name for p in (tmp_path / 'samples').iterdir()) == ['epoch_001.png', 'epoch_002.png', 'epoch_003.png']


@pytest.mark.parametrize('failing_write', [5, 6, 7, 8])  # epoch 2's grid, log, loss plot, checkpoint
def test_a_full_disk_is_one_line_and_leaves_every_file_whole(tmp_path, monkeypatch, capsys, failing_write):
    real_fsync, calls = os.fsync, []
    def fsync(fd):
        calls.append(fd)
        if len(calls) >= failing_write: raise OSError(errno.ENOSPC, 'No space left on device')
        real_fsync(fd)
    monkeypatch.setattr(core.os, 'fsync', fsync)
    assert cli.main([*TRAIN, '--epochs', '3', '--out', str(tmp_path / 'run')]) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'the disk is full while writing' in err, err
    assert err.rstrip().endswith('the last complete epoch is 1, continue with --resume'), err
    files = [p for p in (tmp_path / 'run').rglob('*') if p.is_file()]
    assert not [p for p in files if p.name.endswith('.tmp') or p.name == LOCK_FILE]
    for png in (p for p in files if p.suffix == '.png'): Image.open(png).load()
    [json.loads(l) for l in (tmp_path / 'run' / 'log.jsonl').read_text().splitlines()]
    assert read_checkpoint(tmp_path / 'run' / 'checkpoint.pt')['epochs_done'] == 1
    monkeypatch.setattr(core.os, 'fsync', real_fsync)
    assert cli.main(['train', 'ae', '--out', str(tmp_path / 'run'), '--resume', '--device', 'cpu']) == 0
    log = [json.loads(l)['epoch'] for l in (tmp_path / 'run' / 'log.jsonl').read_text().splitlines()]
    assert log == [1, 2, 3]


def _zip_with(path, members:dict):
    "A zip whose members are `name: bytes` or `name: (chunk, count)` (written in chunks, never whole in memory)."
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            if isinstance(data, bytes): z.writestr(name, data)
            else:
                with z.open(name, 'w', force_zip64=True) as f:
                    for _ in range(data[1]): f.write(data[0])
    return path


def _png(img):
    import io
    buf = io.BytesIO(); img.save(buf, format='PNG'); return buf.getvalue()


def test_a_huge_zip_member_or_file_is_skipped_unread(tmp_path):
    faces = {f'faces/{i}.png': _png(toy_face(i, size=40)[0]) for i in range(3)}
    chunk = bytes(2 ** 20)
    path = _zip_with(tmp_path / 'faces.zip', {**faces, 'faces/huge.png': (chunk, MAX_FILE_BYTES // len(chunk) + 20)})
    assert path.stat().st_size < 2 ** 20  # a small zip...
    folder = tmp_path / 'folder'
    folder.mkdir()
    for name, data in faces.items(): (folder / Path(name).name).write_bytes(data)
    with open(folder / 'huge.png', 'wb') as f: f.truncate(MAX_FILE_BYTES + 1)  # ...and a big sparse file
    for source in (path, folder):
        tracemalloc.start()
        ims = load_images(source, 32, cache=False, verbose=False)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert (ims.report.kept, ims.report.unreadable) == (3, 1), ims.report
        why, = [e for e in ims.report.skipped_examples if 'huge.png' in e]
        assert 'bytes, more than 100,000,000)' in why, why
        assert peak < 30 * 2 ** 20, f'{source}: {peak / 2 ** 20:.0f} MiB'  # the member was never read whole


def _png_header(width, height) -> bytes:
    "A PNG file's signature and header claiming `width`×`height` pixels (no pixel data: Pillow refuses it on opening)."
    ihdr = width.to_bytes(4, 'big') + height.to_bytes(4, 'big') + bytes([8, 2, 0, 0, 0])
    chunk = lambda kind, data: len(data).to_bytes(4, 'big') + kind + data + zlib.crc32(kind + data).to_bytes(4, 'big')
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IEND', b'')


def test_an_image_too_large_for_pillow_says_why_it_was_skipped():
    img, why, _ = prepare_image(_png_header(20000, 20000), 64)
    assert img is None and why == 'unreadable: 400,000,000 pixels, more than 25,000,000', why


@pytest.mark.parametrize('method, args', [
    ('dcgan', ['--lr', '-1']), ('dcgan', ['--lr', 'nan']), ('dcgan', ['--beta1', '1.5']),
    ('wgan', ['--lr', '-1']), ('wgan', ['--clip', '0']), ('wgan-gp', ['--beta2', '1']),
    ('cyclegan', ['--lr', '-1']), ('cyclegan', ['--cycle-weight', 'inf']),
    ('resgan', ['--lr-d', '0']), ('vae', ['--lr', '-1']),
])
def test_every_numeric_option_is_checked_before_any_work(ganime, method, args):
    data = 'toy:8,toy-photo:8' if method == 'cyclegan' else 'toy:8'
    err = ganime('train', method, '--data', data, *args, '--out', 'run', '--device', 'cpu', check=2).stderr
    name = args[0][2:].replace('-', '_')
    assert err.startswith(f'ganime: error: {name} must be') and err.count('\n') == 1 and 'Traceback' not in err, err
    assert not (ganime.cwd / 'run').exists()


def test_a_resumed_run_cannot_lower_a_learning_rate_below_zero(ganime):
    ganime(*TRAIN, '--epochs', '1', '--out', 'run', check=0)
    err = ganime('train', 'ae', '--out', 'run', '--resume', '--epochs', '2', '--lr', '-1', check=2).stderr
    assert 'lr must be positive; got -1.0' in err and err.count('\n') == 1, err
    assert read_checkpoint(ganime.cwd / 'run' / 'checkpoint.pt')['epochs_done'] == 1


@pytest.mark.parametrize('args, env, message', [
    (['data', 'toy:8', '--size', '0'], {}, '--size must be at least 1; got 0'),
    (['data', 'toy:8', '--size', '-4'], {}, '--size must be at least 1; got -4'),
    (['data', 'toy:10000000'], {}, 'toy faces come in sets of 1 to 200,000; asked for 10,000,000'),
    (['sample', 'no-such.pt', '--out', 'x.txt'], {}, '--out x.txt is not an image file name'),
    (['data', 'toy:8', '--preview', 'x.txt'], {}, '--preview x.txt is not an image file name'),
    (['train', 'ae', '--data', 'toy:8', '--epochs', '1'], {'GANIME_SEED_OFFSET': 'abc'}, "GANIME_SEED_OFFSET='abc' is not a whole number"),
    (['eval', 'no-such.pt', '-n', '8', '--k', '50'], {}, '--k 50 neighbours need more than 50 samples'),
])
def test_more_bad_inputs_are_one_line_before_any_work(ganime, args, env, message):
    err = ganime(*args, env=env, check=2).stderr
    assert message in err and err.count('\n') == 1 and 'Traceback' not in err, err
    assert sorted(p.name for p in ganime.cwd.iterdir()) == []  # no run folder, no grid, no cache


def test_an_unwritable_data_folder_is_one_line_before_any_work(ganime):
    (ganime.cwd / 'a-file').write_text('not a folder')
    (ganime.cwd / 'faces').mkdir()
    toy_face(0, size=40)[0].save(ganime.cwd / 'faces' / '0.png')
    err = ganime('data', 'faces', env={'GANIME_DATA': str(ganime.cwd / 'a-file' / 'data')}, check=2).stderr
    assert 'the data cache (set GANIME_DATA to a writable folder)' in err and 'is a file' in err and err.count('\n') == 1, err


@pytest.mark.parametrize('args', [['--data', 'no-such-folder'], ['--data', 'toy:8', '--batch-size', '16'], ['--data', 'toy:8', '--lr', '-1']])
def test_a_failed_start_leaves_no_run_folder(ganime, args):
    ganime('train', 'ae', *args, '--out', 'runs/new', '--device', 'cpu', check=2)
    assert not (ganime.cwd / 'runs').exists() or not any((ganime.cwd / 'runs').iterdir())


def test_translate_with_a_wrong_checkpoint_leaves_no_output_folder(ganime):
    ganime(*TRAIN, '--epochs', '1', '--out', 'run', check=0)
    (ganime.cwd / 'photos').mkdir()
    toy_face(0, 'photo', 40)[0].save(ganime.cwd / 'photos' / '0.png')
    err = ganime('translate', 'run/checkpoint.pt', '--input', 'photos', '--out', 'anime', check=2).stderr
    assert 'not a CycleGAN' in err and not (ganime.cwd / 'anime').exists(), err


def test_a_truncated_checkpoint_is_one_line_cut_at_a_word(ganime):
    ganime(*TRAIN, '--epochs', '1', '--out', 'run', check=0)
    path = ganime.cwd / 'run' / 'checkpoint.pt'
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    err = ganime('sample', 'run/checkpoint.pt', check=2).stderr
    assert err.count('\n') == 1 and 'is not a readable checkpoint' in err and err.rstrip().endswith(')'), err
    reason = err.rstrip()[:-1].split(': ')[-1]
    assert reason.endswith(' …') or len(err) < 300, err


def test_sample_writes_many_images_in_batches(ganime):
    ganime(*TRAIN, '--epochs', '1', '--out', 'run', check=0)
    ganime('sample', 'run/checkpoint.pt', '-n', '300', '--out', 'many.jpg', check=0)
    assert Image.open(ganime.cwd / 'many.jpg').size == (18 * 34 + 2, 17 * 34 + 2)  # 18 columns of 32 px and 2 px gaps; 17 rows


def test_device_help_names_its_default_once(ganime):
    out = ganime('train', 'dcgan', '--help', check=0).stdout
    device = out[out.index('  --device'):].split('--precision')[0]
    assert device.count('(default: auto)') == 1, device


@pytest.mark.filterwarnings('ignore:torch.cuda.amp.GradScaler is enabled')  # no CUDA here: the scaler is made, then disabled
def test_auto_precision_is_bf16_only_where_the_gpu_computes_it(monkeypatch):
    assert auto_precision('cpu') == 'fp32'
    for capability, expected in {(7, 5): 'fp16', (7, 0): 'fp16', (8, 0): 'bf16', (9, 0): 'bf16'}.items():  # T4, V100, A100, H100
        monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda device=None, c=capability: c)
        monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda *a, **kw: True)  # as a T4 answers, by emulation
        assert auto_precision('cuda') == expected, capability
        learn = type('FakeLearner', (), dict(device=torch.device('cuda'), scaler=None, autocast_dtype=None))()
        MixedPrecisionCB('auto').before_fit(learn)
        assert learn.autocast_dtype == {'fp16': torch.float16, 'bf16': torch.bfloat16}[expected]
        assert (learn.scaler is not None) == (expected == 'fp16')  # float16 needs its gradient scaler


def test_a_cpu_training_shares_the_cores_with_another_one_and_takes_them_back(tmp_path, monkeypatch):
    from ganime_nb.callbacks import ShareCPUCB, _cpu_runs_folder, process_start
    monkeypatch.delenv('IN_TEST', raising=False)
    monkeypatch.delenv('GANIME_SHARE_CPU', raising=False)  # the tests' default is off (conftest)
    other = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])  # another training, as the count sees it
    (_cpu_runs_folder()).mkdir(parents=True, exist_ok=True)
    (_cpu_runs_folder() / str(other.pid)).write_text(process_start(other.pid))
    seen, before = [], torch.get_num_threads()
    class Watch(Callback):
        def after_step(self, learn): seen.append(torch.get_num_threads())
    try: learn = _train(tmp_path / 'run', 1, cbs=[Watch()])
    finally: other.kill(); other.wait()
    assert any(isinstance(cb, ShareCPUCB) for cb in learn.cbs)
    assert set(seen) == {max(1, before // 2)} and torch.get_num_threads() == before
    monkeypatch.setenv('IN_TEST', '1')  # nbdev-test: the lessons' runs keep all their threads
    assert not any(isinstance(cb, ShareCPUCB) for cb in _train(tmp_path / 'lesson', 1).cbs)
    monkeypatch.setenv('GANIME_SHARE_CPU', '1')  # unless told
    assert any(isinstance(cb, ShareCPUCB) for cb in _train(tmp_path / 'told', 1).cbs)


@pytest.mark.skipif(not Path('/proc/self/stat').exists(), reason='process start times come from /proc')
def test_a_reused_process_number_is_not_counted_as_a_training(tmp_path):
    from ganime_nb.callbacks import live_cpu_runs, process_start
    assert process_start(os.getpid()) == process_start(os.getpid()) != '' and process_start(2**22 + 7) == ''
    (tmp_path / str(os.getpid())).write_text(process_start(os.getpid()))  # this process, registered
    (tmp_path / str(os.getppid())).write_text('0')  # alive, but not the process that registered under its number
    assert live_cpu_runs(tmp_path) == 1 and [f.name for f in tmp_path.iterdir()] == [str(os.getpid())]
