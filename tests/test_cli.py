"The ganime command line end to end, on toy data on the CPU."
import json

import torch
from PIL import Image

from ganime_nb.learner import read_checkpoint

TINY = ['--size', '32', '--width', '8', '--latent', '16', '--batch-size', '16', '--samples', '16', '--device', 'cpu']


def test_train_then_sample(ganime):
    run = ganime('train', 'ae', '--data', 'toy:128', '--epochs', '2', *TINY, '--out', 'runs/ae', check=0)
    assert 'epoch 1/2  mse' in run.stdout and 'epoch 2/2  mse' in run.stdout and 'img/s' in run.stdout
    folder = ganime.cwd / 'runs' / 'ae'
    grid = Image.open(folder / 'samples' / 'epoch_002.png')
    assert grid.size == (4 * 34 + 2, 4 * 34 + 2)  # 16 images of 32px in a 4x4 grid with 2px padding
    assert [json.loads(l)['epoch'] for l in (folder / 'log.jsonl').read_text().splitlines()] == [1, 2]
    state = read_checkpoint(folder / 'checkpoint.pt')
    assert state['method'] == 'ae' and state['config']['latent'] == 16 and state['epochs_done'] == 2
    out = ganime('sample', 'runs/ae/checkpoint.pt', '-n', '9', '--out', 'grid.png', check=0)
    assert 'wrote grid.png' in out.stdout
    assert Image.open(ganime.cwd / 'grid.png').size == (3 * 34 + 2, 3 * 34 + 2)


def test_resume_continues_the_same_run(ganime):
    common = ['train', 'ae', '--data', 'toy:64', *TINY]
    ganime(*common, '--epochs', '2', '--out', 'straight', check=0)
    ganime(*common, '--epochs', '1', '--out', 'split', check=0)
    resumed = ganime('train', 'ae', '--epochs', '2', '--resume', '--out', 'split', '--device', 'cpu', '--batch-size', '16', check=0)
    assert 'epoch 2/2' in resumed.stdout and 'epoch 1/2' not in resumed.stdout
    a, b = (read_checkpoint(ganime.cwd / d / 'checkpoint.pt') for d in ('straight', 'split'))
    assert a['config'] == b['config'] and b['run']['data'] == 'toy:64'
    for net in a['models']:
        for k, w in a['models'][net].items(): assert torch.equal(w, b['models'][net][k]), f'{net}.{k}'
    clash = ganime('train', 'ae', '--epochs', '3', '--resume', '--out', 'split', '--latent', '32', check=2)
    assert 'was trained with latent=16' in clash.stderr


def test_toy_defaults_and_the_closing_summary(ganime):
    run = ganime('train', 'dcgan', '--data', 'toy:64', '--epochs', '1', '--samples', '16', '--device', 'cpu', '--out', 'toy', check=0)
    config = read_checkpoint(ganime.cwd / 'toy' / 'checkpoint.pt')['config']
    assert (config['size'], config['width'], config['lr'], config['latent']) == (32, 16, 3e-4, 100)  # toy defaults, then the paper's
    assert 'Sample grid: toy/samples/epoch_001.png' in run.stdout and (ganime.cwd / 'toy/samples/epoch_001.png').is_file()
    count, _, mix = next(l for l in run.stdout.splitlines() if 'toy hair colours among 16 samples' in l).partition(' of the 8')
    counts = [int(part.split()[-1]) for part in mix.split(': ', 1)[1].split(', ')]
    assert len(counts) == int(count) and sum(counts) == 16
    given = ganime('train', 'dcgan', '--data', 'toy:64', '--epochs', '1', '--size', '16', '--width', '4', '--lr', '1e-3', '--gray',
                   '--samples', '4', '--device', 'cpu', '--out', 'given', check=0)
    config = read_checkpoint(ganime.cwd / 'given' / 'checkpoint.pt')['config']
    assert (config['size'], config['width'], config['lr'], config['channels']) == (16, 4, 1e-3, 1)  # given options win
    assert 'epoch 1/1' in given.stdout and 'hair colours' not in given.stdout  # the colour classifier reads colour images only


def test_errors_are_one_clear_line(tmp_path, monkeypatch, capsys):
    "Bad paths and arguments: exit status 2 and one line on stderr, no traceback (run in-process: faster)."
    from ganime_nb.cli import main
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('GANIME_DATA', str(tmp_path / 'data'))
    (tmp_path / 'empty').mkdir()
    cases = {
        ('train', 'ae', '--data', 'no/such/dir'): 'no such folder or file: no/such/dir',
        ('train', 'gan9000'): "unknown method 'gan9000'",
        ('train', 'ae', '--epochs', 'two'): "argument --epochs: invalid int value: 'two'",
        ('train', 'ae', '--frobnicate'): 'unrecognized arguments: --frobnicate',
        ('sample', 'missing.pt'): 'no checkpoint at missing.pt',
        ('train', 'ae', '--resume', '--out', 'nowhere'): 'nothing to resume: no checkpoint.pt in nowhere',
        ('data', 'empty'): 'no image files in empty',
    }
    for args, message in cases.items():
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert message in err and err.count('\n') == 1 and 'Traceback' not in err, (args, err)



def test_data_command_reports_counts(ganime):
    folder = ganime.cwd / 'faces'
    folder.mkdir()
    from ganime_nb.data import toy_face
    for i in range(3): toy_face(i, size=40)[0].save(folder / f'{i}.png')
    (folder / 'broken.png').write_bytes(b'\x89PNG broken')
    out = ganime('data', 'faces', '--size', '32', '--preview', 'preview.png', check=0)
    assert 'faces: kept 3 images, skipped 1 (0 empty, 1 unreadable, 0 duplicates)' in out.stdout
    assert Image.open(ganime.cwd / 'preview.png').size[0] > 32
