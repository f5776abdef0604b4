"The ganime command line end to end, on toy data on the CPU."
import json

import torch
from PIL import Image

from ganime_nb import cli
from ganime_nb.learner import get_method, read_checkpoint

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
    distance = next(l for l in run.stdout.splitlines() if l.startswith('hair-colour mix of 512 samples: '))
    assert 0 <= float(distance.split(': ')[1].split()[0]) <= 1
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
        ('train', 'ae', '--minutes', '0'): 'minutes must be positive; got 0',
    }
    for args, message in cases.items():
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert message in err and err.count('\n') == 1 and 'Traceback' not in err, (args, err)



def test_a_time_budget_ends_the_run_after_a_whole_epoch(ganime):
    "--minutes: a budget far shorter than one epoch stops the run after its first epoch, saved whole."
    run = ganime('train', 'ae', '--data', 'toy:64', '--epochs', '5', '--minutes', '0.0001', *TINY, '--out', 'budget', check=0)
    assert 'stopped after epoch 1 of 5: another would pass the 0.0001-minute budget' in run.stdout
    assert read_checkpoint(ganime.cwd / 'budget' / 'checkpoint.pt')['epochs_done'] == 1
    assert (ganime.cwd / 'budget' / 'samples' / 'epoch_001.png').is_file()


def test_data_command_reports_counts(ganime):
    folder = ganime.cwd / 'faces'
    folder.mkdir()
    from ganime_nb.toy import toy_face
    for i in range(3): toy_face(i, size=40)[0].save(folder / f'{i}.png')
    (folder / 'broken.png').write_bytes(b'\x89PNG broken')
    out = ganime('data', 'faces', '--size', '32', '--preview', 'preview.png', check=0)
    assert 'faces: kept 3 images, skipped 1 (0 empty, 1 unreadable, 0 duplicates)' in out.stdout
    assert Image.open(ganime.cwd / 'preview.png').size[0] > 32


RUN = ['--data', 'toy:96', '--limit', '40', '--batch-size', '8', '--seed', '5', '--size', '32', '--width', '8', '--latent', '16',
       '--samples', '4', '--device', 'cpu']


def test_a_resume_takes_the_saved_run_options(ganime):
    "Resumed with only --out, --resume and --epochs, a run with a non-default batch size, seed and limit is the uninterrupted run."
    ganime('train', 'ae', *RUN, '--epochs', '2', '--out', 'straight', check=0)
    ganime('train', 'ae', *RUN, '--epochs', '1', '--out', 'split', check=0)
    resumed = ganime('train', 'ae', '--out', 'split', '--resume', '--epochs', '2', check=0)
    assert 'resuming split/checkpoint.pt after epoch 1; epochs 1 -> 2' in resumed.stdout
    a, b = (read_checkpoint(ganime.cwd / d / 'checkpoint.pt') for d in ('straight', 'split'))
    assert b['run'] == dict(data='toy:96', limit=40, gray=False, size=32, batch_size=8, seed=5, precision='auto', epochs=2)
    assert a['step'] == b['step'] == 10 and a['history'] == b['history']  # 40 images in batches of 8, two epochs
    for net in a['models']:
        for k, w in a['models'][net].items(): assert torch.equal(w, b['models'][net][k]), f'{net}.{k}'


def test_a_resume_refuses_contradictions_and_logs_safe_changes(ganime):
    ganime('train', 'ae', *RUN, '--epochs', '1', '--out', 'run', check=0)
    resume = ['train', 'ae', '--out', 'run', '--resume', '--epochs', '2']
    cases = {('--batch-size', '16'): ('batch_size=8', 'batch_size=16'), ('--seed', '1'): ('seed=5', 'seed=1'),
             ('--limit', '20'): ('limit=40', 'limit=20'), ('--gray',): ('gray=False', 'gray=True'),
             ('--data', 'toy:64'): ("data='toy:96'", "data='toy:64'"), ('--width', '4'): ('width=8', 'width=4'),
             ('--lr', '0.01'): ('lr=0.001', 'lr=0.01')}  # a higher learning rate is not a safe change
    for given, (saved, new) in cases.items():
        err = ganime(*resume, *given, check=2).stderr
        assert err.count('\n') == 1 and f'was trained with {saved}, which {new} contradicts' in err, (given, err)
    slower = ganime(*resume, '--lr', '1e-4', '--precision', 'fp32', check=0)
    assert 'lr 0.001 -> 0.0001' in slower.stdout and 'precision auto -> fp32' in slower.stdout
    log = [json.loads(l) for l in (ganime.cwd / 'run' / 'log.jsonl').read_text().splitlines()]
    assert log[1] == {'resumed_after_epoch': 1, 'changed': {'epochs': [1, 2], 'precision': ['auto', 'fp32'], 'lr': [1e-3, 1e-4]}}
    state = read_checkpoint(ganime.cwd / 'run' / 'checkpoint.pt')
    assert state['config']['lr'] == 1e-4 and next(iter(state['optimizers'].values()))['param_groups'][0]['lr'] == 1e-4


def test_options_may_come_before_the_method(ganime):
    run = ganime('train', '--epochs', '1', 'ae', *RUN, '--out', 'early', check=0)
    assert 'epoch 1/1' in run.stdout
    help = ganime('train', '--epochs', '1', 'dcgan', '--help', check=0).stdout
    assert 'dcgan options' in help and '--width INT' in help


def test_cyclegan_trains_at_its_own_size(ganime):
    "Without --size, CycleGAN trains at the 128 pixels of its signature (toy data has its own 32-pixel default)."
    for domain in ('A', 'B'):
        folder = ganime.cwd / 'pairs' / f'train{domain}'
        folder.mkdir(parents=True)
        from ganime_nb.toy import toy_face
        for i in range(2): toy_face(i, size=128, domain='photo' if domain == 'A' else 'anime')[0].save(folder / f'{i}.png')
    ganime('train', 'cyclegan', '--data', 'pairs', '--epochs', '1', '--batch-size', '2', '--width', '4', '--res-blocks', '1',
           '--samples', '2', '--device', 'cpu', '--out', 'cg', check=0)
    assert read_checkpoint(ganime.cwd / 'cg' / 'checkpoint.pt')['config']['size'] == 128


def test_every_method_has_a_toy_run(ganime):
    "`ganime train METHOD --data toy` with only a shorter run asked for: each method's toy defaults train and end on a grid."
    for method in ('ae', 'vae', 'dcgan', 'wgan', 'wgan-gp', 'resgan', 'cyclegan', 'ddpm'):
        run = ganime('train', method, '--data', 'toy:64', '--epochs', '1', '--device', 'cpu', '--out', method, check=0)
        grid = ganime.cwd / method / 'samples' / 'epoch_001.png'
        assert f'Sample grid: {method}/samples/epoch_001.png' in run.stdout and grid.is_file(), (method, run.stdout)
        config = read_checkpoint(ganime.cwd / method / 'checkpoint.pt')['config']
        expected = get_method(method).defaults_for(toy=True)
        assert {k: config[k] for k in config if k in expected} == {k: expected[k] for k in config if k in expected}, method
        closing = 'keep their hair colour' if method == 'cyclegan' else 'toy hair colours among 64 samples'
        assert closing in run.stdout and 'from the real one (total variation' in run.stdout, (method, run.stdout)


def test_speed_tip_suggests_bf16_only_for_float32_runs_on_cpus_with_amx(monkeypatch):
    from types import SimpleNamespace
    def learn(precision='auto', device='cpu'): return SimpleNamespace(run={'precision': precision}, device=torch.device(device))
    monkeypatch.setattr(cli, 'cpu_has_amx', lambda: True)
    assert len(cli._speed_tip(learn(), {})) == 1 and '--precision bf16' in cli._speed_tip(learn(), {})[0]
    assert cli._speed_tip(learn(), {'precision': 'auto'}) == []  # typed: the user chose
    assert cli._speed_tip(learn('fp32'), {}) == []  # a resumed run keeps the precision it was saved with
    assert cli._speed_tip(learn(device='cuda'), {}) == []
    monkeypatch.setattr(cli, 'cpu_has_amx', lambda: False)
    assert cli._speed_tip(learn(), {}) == []


def test_the_method_is_found_wherever_it_stands_without_importing_the_others():
    "`ganime train` finds the method's name among flags and their values (one a method's name), importing no other method."
    cases = {('train', 'dcgan', '--epochs', '3'): 'dcgan', ('train', '--width', '16', 'dcgan'): 'dcgan',
             ('train', '--loss', 'wgan', 'dcgan'): 'dcgan', ('train', 'dcgan', '--loss', 'wgan'): 'dcgan',
             ('train', '--gray', 'ae'): 'ae', ('train', '--width', '16', 'nosuch'): 'nosuch', ('train',): None, ('sample', 'x'): None}
    for argv, name in cases.items(): assert cli._method_name(list(argv)) == name, argv
    import subprocess, sys
    code = ("import sys; from ganime_nb.cli import _method_name; assert _method_name(['train', '--width', '16', 'resgan']) == 'resgan'; "
            "print(sorted(m for m in ('ganime_nb.ae', 'ganime_nb.vae', 'ganime_nb.wgan', 'ganime_nb.resgan') if m in sys.modules))")
    assert subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.strip() == '[]'
