"Training core: resuming gives the same run, checkpoints are atomic, NaN stops training safely."
import os
from pathlib import Path

import pytest
import torch

from ganime_nb.ae import Autoencoder
from ganime_nb.core import GanimeError, atomic_save, seed_everything
from ganime_nb.learner import Callback, Learner, NonFiniteLossError, get_method, read_checkpoint
from ganime_nb.callbacks import CheckpointCB, NaNGuardCB
from ganime_nb.run import train

SMALL = dict(size=32, latent=16, width=8)


class CrashAt(Callback):
    "Raise KeyboardInterrupt at a given global step, as a killed run would stop."
    def __init__(self, step): self.step = step
    def after_step(self, learn):
        if learn.step == self.step: raise KeyboardInterrupt


def _train(out, epochs, resume=False, cbs=()):
    seed_everything(0)
    return train(Autoencoder(**SMALL), 'toy:96', epochs=epochs, batch_size=16, out=out, resume=resume,
                 device='cpu', samples=4, cbs=cbs)


def _weights(out): return read_checkpoint(Path(out) / 'checkpoint.pt')['models']


def test_resume_after_crash_equals_uninterrupted(tmp_path):
    _train(tmp_path / 'straight', 4)
    with pytest.raises(KeyboardInterrupt): _train(tmp_path / 'crashed', 4, cbs=[CrashAt(6 * 2 + 3)])  # 6 steps/epoch
    assert read_checkpoint(tmp_path / 'crashed' / 'checkpoint.pt')['epochs_done'] == 2
    learn = _train(tmp_path / 'crashed', 4, resume=True)
    assert learn.epochs_done == 4 and learn.step == 24
    straight, resumed = _weights(tmp_path / 'straight'), _weights(tmp_path / 'crashed')
    for net in straight:
        for k, w in straight[net].items(): assert torch.equal(w, resumed[net][k]), f'{net}.{k}'
    hist = read_checkpoint(tmp_path / 'crashed' / 'checkpoint.pt')['history']['mse']
    assert hist == read_checkpoint(tmp_path / 'straight' / 'checkpoint.pt')['history']['mse'] and len(hist) == 24


def test_refuses_to_overwrite_and_to_resume_nothing(tmp_path):
    _train(tmp_path / 'run', 1)
    with pytest.raises(GanimeError, match='already holds a trained run'): _train(tmp_path / 'run', 2)
    with pytest.raises(GanimeError, match='nothing to resume'): _train(tmp_path / 'other', 2, resume=True)
    seed_everything(0)
    with pytest.raises(GanimeError, match='trained with latent=16, which latent=8 contradicts'):
        train(Autoencoder(size=32, latent=8, width=8), 'toy:96', 2, 16, out=tmp_path / 'run', resume=True, device='cpu')


def test_checkpoint_written_atomically(tmp_path, monkeypatch):
    path = tmp_path / 'checkpoint.pt'
    atomic_save({'version': 1}, path)
    real_save = torch.save
    def crash_halfway(obj, f, *a, **kw):
        f.write(b'PK\x03\x04 half a checkpoint')  # a partial write...
        raise OSError('disk full')                 # ...then the crash
    monkeypatch.setattr(torch, 'save', crash_halfway)
    with pytest.raises(OSError, match='disk full'): atomic_save({'version': 2}, path)
    monkeypatch.setattr(torch, 'save', real_save)
    assert torch.load(path, weights_only=True) == {'version': 1}  # the old checkpoint is intact
    assert os.listdir(tmp_path) == ['checkpoint.pt']             # and no temporary file is left behind


def test_killed_during_checkpoint_leaves_old_one(tmp_path, monkeypatch):
    "A crash inside CheckpointCB (as when the process is killed while saving) keeps the previous epoch's file."
    _train(tmp_path / 'run', 1)
    before = _weights(tmp_path / 'run')
    def killed_while_saving(obj, f, *args, **kwargs):
        f.write(b'junk')
        raise KeyboardInterrupt
    monkeypatch.setattr(torch, 'save', killed_while_saving)
    with pytest.raises(KeyboardInterrupt): _train(tmp_path / 'run', 2, resume=True)
    monkeypatch.undo()
    assert read_checkpoint(tmp_path / 'run' / 'checkpoint.pt')['epochs_done'] == 1
    assert torch.equal(_weights(tmp_path / 'run')['decoder']['0.weight'], before['decoder']['0.weight'])
    assert sorted(os.listdir(tmp_path / 'run')) == ['checkpoint.pt', 'log.jsonl', 'losses.png', 'samples']


def test_nan_guard_stops_and_keeps_last_good_checkpoint(tmp_path):
    seed_everything(0)
    method = Autoencoder(**SMALL)
    from ganime_nb.data import Batches, toy_faces
    learn = Learner(method, Batches(toy_faces(64, 32).images, 16), device='cpu',
                    cbs=[CheckpointCB(tmp_path / 'checkpoint.pt'), NaNGuardCB(every=1)])
    learn.fit(1)
    with torch.no_grad(): method.models['encoder'][0][0].weight.fill_(float('nan'))
    with pytest.raises(NonFiniteLossError, match=r"loss 'mse' became nan at epoch 2, step 5; the last good checkpoint is .*checkpoint.pt \(after epoch 1\)"):
        learn.fit(2)
    assert read_checkpoint(tmp_path / 'checkpoint.pt')['epochs_done'] == 1


def test_method_registry_errors():
    assert get_method('ae') is Autoencoder
    with pytest.raises(GanimeError, match="unknown method 'nope'"): get_method('nope')


def test_read_checkpoint_rejects_foreign_files(tmp_path):
    (tmp_path / 'x.pt').write_bytes(b'not a checkpoint')
    with pytest.raises(GanimeError, match='is not a readable checkpoint'): read_checkpoint(tmp_path / 'x.pt')
    torch.save({'some': 'dict'}, tmp_path / 'y.pt')
    with pytest.raises(GanimeError, match='is not a ganime checkpoint'): read_checkpoint(tmp_path / 'y.pt')
    with pytest.raises(GanimeError, match='no checkpoint at'): read_checkpoint(tmp_path / 'z.pt')


class RunningMean(Callback):
    "A callback that learns while training: the running mean of the loss, kept in checkpoints."
    def __init__(self): self.mean, self.count = 0.0, 0
    def after_step(self, learn):
        self.count += 1
        self.mean += (float(learn.losses['mse']) - self.mean) / self.count
    def state_dict(self): return {'mean': self.mean, 'count': self.count}
    def load_state_dict(self, state): self.mean, self.count = state['mean'], state['count']


def test_a_callback_keeps_its_state_in_checkpoints(tmp_path):
    straight = RunningMean()
    _train(tmp_path / 'straight', 3, cbs=[straight])
    with pytest.raises(KeyboardInterrupt): _train(tmp_path / 'crashed', 3, cbs=[RunningMean(), CrashAt(6 + 2)])
    assert read_checkpoint(tmp_path / 'crashed' / 'checkpoint.pt')['callbacks']['RunningMean']['count'] == 6
    resumed = RunningMean()
    _train(tmp_path / 'crashed', 3, resume=True, cbs=[resumed])
    assert (resumed.count, resumed.mean) == (straight.count, straight.mean) == (18, straight.mean)


def test_callback_order_is_checked(tmp_path):
    class Early(Callback): order, run_after = -50, (CheckpointCB,)
    with pytest.raises(GanimeError, match=r'Early \(order -50\) must run after CheckpointCB: give it a higher order'):
        _train(tmp_path / 'run', 1, cbs=[Early()])


def test_a_resume_reads_the_checkpoint_once_and_checks_its_options_once(tmp_path, monkeypatch):
    "From the command line and from `train`, a resumed run reads checkpoint.pt once, and finds each contradiction in one place."
    from ganime_nb import cli, learner, run
    common = ['--data', 'toy:64', '--size', '32', '--width', '8', '--latent', '16', '--batch-size', '16', '--samples', '4', '--device', 'cpu']
    assert cli.main(['train', 'ae', *common, '--epochs', '1', '--out', str(tmp_path / 'a')]) == 0
    reads, checks = [], []
    real_load, real_changes = torch.load, run.resume_changes
    monkeypatch.setattr(torch, 'load', lambda f, *a, **k: reads.append(Path(f).name) or real_load(f, *a, **k))
    monkeypatch.setattr(run, 'resume_changes', lambda *a, **k: checks.append(k['where']) or real_changes(*a, **k))
    monkeypatch.setattr(learner, 'resume_changes', lambda *a, **k: checks.append(k['where']) or real_changes(*a, **k))
    assert cli.main(['train', 'ae', '--out', str(tmp_path / 'a'), '--resume', '--epochs', '2', '--lr', '5e-4']) == 0
    assert reads == ['checkpoint.pt'] and checks == ['the saved run', 'the saved ae run']
    state = read_checkpoint(tmp_path / 'a' / 'checkpoint.pt')
    assert state['epochs_done'] == 2 and state['config']['lr'] == 5e-4 and state['run']['batch_size'] == 16
    reads.clear(); checks.clear()
    seed_everything(0)
    learn = train(Autoencoder(size=32, width=8, latent=16, lr=2.5e-4), out=tmp_path / 'a', resume=True, epochs=3, samples=4, device='cpu')
    assert reads == ['checkpoint.pt'] and checks == ['the saved run', 'the saved ae run']
    assert learn.changes == {'epochs': (2, 3), 'lr': (5e-4, 2.5e-4)} and learn.epochs_done == 3


def test_a_run_config_says_where_each_option_came_from():
    "Base defaults, the method's, its toy preset, the checkpoint, the options given: the strongest wins and is named."
    from ganime_nb.run import RUN_OPTIONS, resolve_run
    config = resolve_run('vae', dict(data='toy', limit=100), dict(beta=0.5))
    assert config.run == {**RUN_OPTIONS, 'size': 32, 'epochs': 60, 'limit': 100}
    assert [config.origin[k] for k in ('batch_size', 'epochs', 'limit', 'beta', 'recon', 'size')] == ['default', 'toy preset', 'given', 'given', 'method', 'toy preset']
    resumed = resolve_run('vae', dict(epochs=80), checkpoint=dict(method='vae', config=config.options, run=config.run))
    assert resumed.options == config.options and resumed.run == {**config.run, 'epochs': 80} and resumed.changes == {'epochs': (60, 80)}
    assert resumed.origin['beta'] == resumed.origin['limit'] == 'checkpoint' and resumed.origin['epochs'] == 'given'
    with pytest.raises(GanimeError, match='colour images need a method with channels=3, not 1'):
        resolve_run(Autoencoder(size=32, channels=1), dict(data='toy'))
