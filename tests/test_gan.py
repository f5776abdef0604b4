"DCGAN, WGAN, WGAN-GP and ResGAN: network shapes, the shared adversarial step, and the command line end to end."
import subprocess, sys
from pathlib import Path

import pytest
import torch
from torch import nn

from ganime_nb.core import GanimeError, seed_everything
from ganime_nb.data import Batches, toy_faces
from ganime_nb.dcgan import DCGAN, DCGANDiscriminator, DCGANGenerator, slerp
from ganime_nb.learner import Learner, get_method
from ganime_nb.resgan import ResDiscriminator, ResGAN, ResGenerator
from ganime_nb.wgan import WGAN, WGANGP

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize('size', [64, 128])
def test_network_shapes(size):
    z = torch.randn(2, 100)
    assert DCGANGenerator(size, width=8)(z).shape == (2, 3, size, size)
    assert DCGANGenerator(size, width=8, upsample='nearest')(z).shape == (2, 3, size, size)
    x = torch.randn(2, 3, size, size)
    for norm in ('batch', 'layer', 'none'): assert DCGANDiscriminator(size, width=8, norm=norm)(x).shape == (2,)
    assert ResGenerator(size, latent=100, width=8)(z).shape == (2, 3, size, size)
    assert ResDiscriminator(size, width=8)(x).shape == (2,)


def test_registered_names():
    assert [get_method(n) for n in ('dcgan', 'wgan', 'wgan-gp', 'resgan')] == [DCGAN, WGAN, WGANGP, ResGAN]


def test_generator_output_range_and_dcgan_init():
    seed_everything(0)
    gen = DCGANGenerator(32, width=8)
    out = gen(torch.randn(16, 100))
    assert out.min() >= -1 and out.max() <= 1
    convs = [m for m in gen.modules() if isinstance(m, nn.ConvTranspose2d)]
    weights = torch.cat([m.weight.flatten() for m in convs])
    assert abs(weights.std().item() - 0.02) < 0.002 and abs(weights.mean().item()) < 0.002


def tiny_learner(method, n=64, batch_size=16, size=32):
    return Learner(method, Batches(toy_faces(n, size).images, batch_size), cbs=[], device='cpu', seed=0)


def test_step_logs_and_updates_both_networks():
    seed_everything(0)
    gan = DCGAN(size=32, width=8, latent=16)
    before = {k: [p.detach().clone() for p in m.parameters()] for k, m in gan.models.items()}
    learn = tiny_learner(gan).fit(1)
    assert set(learn.history) == {'d_loss', 'g_loss', 'D(x)', 'D(G(z))'} and len(learn.history['d_loss']) == 4
    assert all(0 < v < 1 for v in learn.history['D(x)'] + learn.history['D(G(z))'])  # probabilities for the ns loss
    for k, m in gan.models.items():
        assert any(not torch.equal(a, b) for a, b in zip(before[k], m.parameters())), f'{k} did not change'


def test_generator_step_leaves_discriminator_gradients_alone():
    "The G update must not compute (or accumulate into) D's parameter gradients."
    seed_everything(0)
    gan = DCGAN(size=32, width=8, latent=16)
    learn = tiny_learner(gan)
    seen = {}
    original = learn.update
    def update(loss, name):
        original(loss, name)
        seen[name] = [None if p.grad is None else p.grad.clone() for p in gan.D.parameters()]
    learn.update = update
    learn.fit(1)
    for after_d, after_g in zip(seen['discriminator'], seen['generator']): assert torch.equal(after_d, after_g)
    assert all(p.requires_grad for p in gan.D.parameters())  # restored after the G step


def test_n_critic_steps_per_generator_step():
    seed_everything(0)
    gan = WGANGP(size=32, width=8, latent=16, n_critic=3)
    learn = tiny_learner(gan, n=96).fit(1)  # 6 steps
    steps = {k: int(next(iter(opt.state.values()))['step']) for k, opt in learn.opts.items()}
    assert steps == {'discriminator': 6, 'generator': 2}
    assert len(learn.history['g_loss']) == 6 and all(v >= 0 for v in learn.history['penalty'])


def test_wgan_clips_the_critic():
    seed_everything(0)
    gan = WGAN(size=32, width=8, latent=16, lr=1e-2, clip=0.01)
    tiny_learner(gan).fit(1)
    weights = torch.cat([p.detach().flatten() for p in gan.D.parameters()])
    assert weights.abs().max() <= 0.01 + 1e-7 and (weights.abs() > 0.0099).any()
    assert type(gan.configure_optimizers()['generator']).__name__ == 'RMSprop'


def test_gradient_penalty_trains_through_learner():
    seed_everything(0)
    gan = DCGAN(size=32, width=8, latent=16, loss='wgan-gp', d_norm='layer')
    learn = tiny_learner(gan).fit(1)
    assert all(torch.isfinite(torch.tensor(v)).all() for v in learn.history.values())
    assert learn.history['penalty'][0] > 0
    with pytest.warns(UserWarning, match='batch norm'): DCGAN(size=32, width=8, loss='dragan')


def test_resgan_spectral_norm():
    seed_everything(0)
    gan = ResGAN(size=32, width=8)
    convs = [m for m in gan.D.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(hasattr(m, 'parametrizations') for m in convs)
    sigma = torch.linalg.matrix_norm(convs[1].weight.detach().flatten(1), ord=2).item()
    assert sigma == pytest.approx(1.0, abs=0.01)
    assert not any(hasattr(m, 'parametrizations') for m in ResGAN(size=32, width=8, spectral_norm=False).D.modules())
    # forward passes only read the power-iteration vectors (so compiled graphs can be differentiated); updates refine them
    buffers = lambda: [b.clone() for name, b in gan.D.named_buffers() if name.endswith(('.u', '.v'))]
    before = buffers()
    gan.D.train()(torch.randn(4, 3, 32, 32)); gan.D(torch.randn(4, 3, 32, 32))
    assert all(torch.equal(a, b) for a, b in zip(before, buffers()))
    learn = tiny_learner(gan).fit(1)
    assert not all(torch.equal(a, b) for a, b in zip(before, buffers()))
    for m in convs: assert torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2).item() == pytest.approx(1.0, abs=0.05)


def test_sampling_interpolation_and_cherry_picking():
    seed_everything(0)
    gan = DCGAN(size=32, width=8, latent=16)
    a, b = gan.sample(5, torch.Generator().manual_seed(3)), gan.sample(5, torch.Generator().manual_seed(3))
    assert a.shape == (5, 3, 32, 32) and torch.equal(a, b)
    best, scores = gan.cherry_pick(4, 20, torch.Generator().manual_seed(1), batch_size=8)
    assert best.shape == (4, 3, 32, 32) and torch.all(scores[:-1] >= scores[1:])
    gan.models.eval()  # cherry_pick scores in evaluation mode
    with torch.no_grad(): all_scores = gan.D(gan.sample(20, torch.Generator().manual_seed(1)))
    torch.testing.assert_close(scores, all_scores.topk(4).values)
    z0, z1 = torch.randn(16), torch.randn(16)
    path = slerp(z0, z1, torch.linspace(0, 1, 5))
    torch.testing.assert_close(path[0], z0); torch.testing.assert_close(path[-1], z1)
    with pytest.raises(GanimeError, match='cannot pick'): gan.cherry_pick(30, 20)


def test_bad_options_are_clear_errors():
    with pytest.raises(GanimeError, match='choose one of'): DCGAN(loss='bce')
    with pytest.raises(GanimeError, match='power of two'): DCGAN(size=48)
    with pytest.raises(GanimeError, match='unknown upsampling'): WGAN(upsample='bilinear')
    with pytest.raises(GanimeError, match='unknown normalisation'): WGANGP(d_norm='instance')
    with pytest.raises(GanimeError, match='n_critic'): ResGAN(n_critic=0)
    with pytest.raises(GanimeError, match='does not apply'): WGAN(label_smoothing=0.1)


TINY = ['--data', 'toy:128', '--size', '32', '--width', '8', '--epochs', '1', '--batch-size', '32', '--device', 'cpu', '--samples', '4']

@pytest.mark.parametrize('method, extra', [('dcgan', ['--loss', 'hinge', '--upsample', 'nearest']),
                                           ('wgan-gp', ['--n-critic', '2']), ('resgan', ['--loss', 'lsgan'])])
def test_cli_train_and_sample(ganime, method, extra):
    out = ganime('train', method, *TINY, *extra, '--out', 'run', check=0)
    assert '1 epochs done' in out.stdout and 'D(G(z))' in out.stdout
    run = ganime.cwd / 'run'
    assert (run / 'checkpoint.pt').is_file() and (run / 'samples' / 'epoch_001.png').is_file() and (run / 'losses.png').is_file()
    ganime('sample', 'run/checkpoint.pt', '-n', '9', '--out', 'grid.png', '--device', 'cpu', check=0)
    assert (ganime.cwd / 'grid.png').stat().st_size > 0


def test_cli_bad_options(capsys):
    from ganime_nb.cli import main
    assert main(['train', 'dcgan', *TINY, '--loss', 'wasserstein']) == 2
    assert 'unknown GAN loss' in capsys.readouterr().err
    assert main(['train', 'wgan', *TINY, '--upsample', 'bilinear']) == 2
    assert 'unknown upsampling' in capsys.readouterr().err


def test_benchmark_runs_on_cpu(tmp_path):
    cmd = [sys.executable, str(ROOT / 'bench' / 'bench_gan.py'), '--device', 'cpu', '--methods', 'dcgan', 'wgan-gp',
           '--batch-sizes', '8', '--steps', '2', '--size', '32', '--width', '8', '--ref-images', '32', '--distinct-images', '16']
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [l.split() for l in proc.stdout.splitlines() if l and not l.startswith('#')]
    assert [r[0] for r in rows] == ['method', 'reference', 'dcgan', 'wgan-gp'] and all(float(r[2].replace(',', '')) > 0 for r in rows[1:])
