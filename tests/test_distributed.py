"Data-parallel training under torchrun: two CPU processes with the gloo backend."
import json, os, subprocess, sys
from pathlib import Path

import pytest
import torch

from ganime_nb.core import seed_everything
from ganime_nb.learner import read_checkpoint

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from ddp_worker import PlainAutoencoder
pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason='torch.distributed is not available')


def torchrun(*args, cwd, env=None):
    "Run `torchrun --standalone --nproc_per_node=2 ARGS` (a free port, two processes); fail with its output."
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', *map(str, args)]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, f'torchrun failed:\n{proc.stdout}\n{proc.stderr}'
    return proc


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    "The same training, once on two processes and once on one, with the same global batch and seed."
    out = tmp_path_factory.mktemp('ddp')
    torchrun(HERE / 'ddp_worker.py', out / 'two', cwd=out)
    subprocess.run([sys.executable, HERE / 'ddp_worker.py', out / 'one'], check=True, cwd=out, timeout=300)
    return out


def _weights(path): return torch.load(path, weights_only=True)


def test_ranks_keep_identical_weights(runs):
    r0, r1 = _weights(runs / 'two' / 'weights-2-0.pt'), _weights(runs / 'two' / 'weights-2-1.pt')
    assert (r0['rank'], r1['rank'], r0['steps']) == (0, 1, 18)  # 96 images / 16 per global batch * 3 epochs
    for k in r0['weights']: assert torch.equal(r0['weights'][k], r1['weights'][k]), k


def test_two_processes_match_one(runs):
    two, one = _weights(runs / 'two' / 'weights-2-0.pt'), _weights(runs / 'one' / 'weights-1-0.pt')
    assert one['steps'] == two['steps'] == 18
    seed_everything(0)
    start = PlainAutoencoder().models.state_dict()
    assert len(one['weights']) == 6
    for k, w in one['weights'].items():
        assert (w - start[k]).abs().max() > 1e-3, f'{k} did not train'
        torch.testing.assert_close(two['weights'][k], w, rtol=1e-4, atol=1e-5)


def test_one_checkpoint_written(runs):
    files = sorted(p.name for p in (runs / 'two' / 'run').iterdir())
    assert files == ['checkpoint.pt'], files
    state = read_checkpoint(runs / 'two' / 'run' / 'checkpoint.pt')
    assert state['epochs_done'] == 3 and len(state['rng']) == 2  # each process's RNG state, for resuming


def test_gan_steps_stay_in_sync(tmp_path):
    "WGAN-GP calls its critic several times per step and differentiates through it twice: ranks must still agree."
    torchrun(HERE / 'ddp_worker.py', tmp_path, 'wgan-gp', cwd=tmp_path)
    r0, r1 = _weights(tmp_path / 'weights-2-0.pt'), _weights(tmp_path / 'weights-2-1.pt')
    assert r0['steps'] == 18
    params = [k for k in r0['weights'] if 'running' not in k and 'num_batches' not in k]
    assert len(params) > 10
    for k in params: assert torch.equal(r0['weights'][k], r1['weights'][k]), k


def test_cli_under_torchrun_writes_once_and_resumes(tmp_path):
    env = {**os.environ, 'GANIME_DATA': str(tmp_path / 'data')}
    args = ['-m', 'ganime_nb.cli', 'train', 'ae', '--data', 'toy:128', '--batch-size', '32', '--width', '8',
            '--latent', '16', '--samples', '4', '--out', 'runs/ddp']
    first = torchrun(*args, '--epochs', '1', cwd=tmp_path, env=env)
    assert first.stdout.count('epoch 1/1') == 1  # only rank 0 reports
    torchrun(*args, '--epochs', '2', '--resume', cwd=tmp_path, env=env)
    run = tmp_path / 'runs' / 'ddp'
    assert sorted(p.name for p in run.iterdir()) == ['checkpoint.pt', 'log.jsonl', 'losses.png', 'samples']
    assert sorted(p.name for p in (run / 'samples').iterdir()) == ['epoch_001.png', 'epoch_002.png']
    log = [json.loads(l) for l in (run / 'log.jsonl').read_text().splitlines()]
    assert [r.get('epoch') for r in log] == [1, None, 2] and log[1]['changed'] == {'epochs': [1, 2]}  # written once, not per process
    assert read_checkpoint(run / 'checkpoint.pt')['epochs_done'] == 2
