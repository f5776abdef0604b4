"The autoencoder and VAE: shapes, the KL term against its closed form, learning on toy faces, the command line."
import math

import numpy as np
import pytest
import torch
from PIL import Image

from ganime_nb.ae import Autoencoder, Decoder, Encoder
from ganime_nb.core import GanimeError, seed_everything
from ganime_nb.data import Batches, image_grid, toy_faces
from ganime_nb.learner import Learner, load_method, read_checkpoint
from ganime_nb.vae import VAE, latent_path, kl_divergence, kl_weight, reconstruction_loss, reparameterize

TINY = ['--data', 'toy:256', '--size', '32', '--width', '8', '--latent', '16', '--batch-size', '32', '--samples', '16',
        '--device', 'cpu']


def test_network_shapes():
    assert Encoder(64, 3, 40, 8)(torch.randn(2, 3, 64, 64)).shape == (2, 40)
    assert Decoder(32, 1, 12, 8)(torch.randn(2, 12)).shape == (2, 1, 32, 32)
    vae = VAE(size=32, channels=1, latent=12, width=8)
    mu, logvar = vae.encode(torch.randn(5, 1, 32, 32))
    assert mu.shape == logvar.shape == (5, 12)
    assert vae.models['encoder'][-1].out_features == 24  # one mean and one log-variance per latent coordinate
    made = vae.sample(6, torch.Generator().manual_seed(0))
    assert made.shape == (6, 1, 32, 32) and made.min() >= -1 and made.max() <= 1


def test_kl_matches_closed_form_on_hand_computed_cases():
    # KL(N(mu, s2) || N(0, 1)) = (mu^2 + s2 - 1 - log s2) / 2 per coordinate, summed over coordinates:
    # mu=(1, 0), s2=(1, 4): (1 + 1 - 1 - 0)/2 + (0 + 4 - 1 - log 4)/2 = 2 - log 2;  mu=0.5, s2=0.25: (0.25 + 0.25 - 1 + log 4)/2
    mu = torch.tensor([[1.0, 0.0], [0.5, 0.0], [0.0, 0.0]])
    var = torch.tensor([[1.0, 4.0], [0.25, 1.0], [1.0, 1.0]])
    expected = torch.tensor([2 - math.log(2), (-0.5 + math.log(4)) / 2, 0.0])
    assert torch.allclose(kl_divergence(mu, var.log()), expected, atol=1e-6)


def test_kl_agrees_with_torch_distributions():
    mu, logvar = torch.randn(8, 32), torch.randn(8, 32)
    reference = torch.distributions.kl_divergence(torch.distributions.Normal(mu, (logvar / 2).exp()),
                                                  torch.distributions.Normal(0.0, 1.0)).sum(1)
    assert torch.allclose(kl_divergence(mu, logvar), reference, atol=1e-4)
    assert torch.allclose(kl_divergence(mu.bfloat16(), logvar.bfloat16()), kl_divergence(mu.bfloat16().float(), logvar.bfloat16().float()))


def test_reparameterize_has_the_right_moments_and_gradients():
    mu = torch.full((50_000, 1), 3.0, requires_grad=True)
    logvar = torch.full((50_000, 1), math.log(0.09), requires_grad=True)
    z = reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    assert abs(z.mean().item() - 3.0) < 0.01 and abs(z.std().item() - 0.3) < 0.01
    z.sum().backward()
    assert torch.equal(mu.grad, torch.ones_like(mu)) and logvar.grad.abs().sum() > 0
    same = reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    assert torch.equal(z, same)


def test_reconstruction_loss_sums_per_image():
    a, b = torch.zeros(3, 3, 8, 8), torch.full((3, 3, 8, 8), -0.5)
    assert torch.allclose(reconstruction_loss(a, b, 'mse'), torch.full((3,), 192 * 0.25))
    assert torch.allclose(reconstruction_loss(a, b, 'l1'), torch.full((3,), 192 * 0.5))
    with pytest.raises(GanimeError, match="unknown reconstruction loss 'huber'"): reconstruction_loss(a, b, 'huber')


def test_kl_warmup_and_interpolation():
    assert [kl_weight(s, 1.0, 10) for s in (0, 5, 10, 50)] == [0.0, 0.5, 1.0, 1.0]
    assert kl_weight(0, 3.0, 0) == 3.0
    walk = latent_path(torch.tensor([0.0, 2.0]), torch.tensor([4.0, 2.0]), 5)
    assert torch.equal(walk, torch.tensor([[0.0, 2.0], [1.0, 2.0], [2.0, 2.0], [3.0, 2.0], [4.0, 2.0]]))
    with pytest.raises(GanimeError, match='at least 2 steps'): latent_path(torch.zeros(2), torch.ones(2), 1)


@pytest.mark.parametrize('kwargs, message', [
    (dict(recon='l3'), "unknown reconstruction loss 'l3': use one of mse, l1"),
    (dict(beta=-0.1), 'beta must be zero or positive'),
    (dict(warmup_steps=-5), 'warmup_steps must be zero or positive'),
    (dict(latent=0), 'latent must be at least 1'),
    (dict(size=48), 'image size must be a power of two'),
    (dict(width=0), 'width must be at least 1'),
])
def test_bad_options_are_clear_errors(kwargs, message):
    with pytest.raises(GanimeError, match=message): VAE(**kwargs)


@pytest.mark.parametrize('cls, loss', [(Autoencoder, 'mse'), (VAE, 'recon')])
def test_reconstruction_error_falls_on_toy_faces(cls, loss):
    seed_everything(0)
    model = cls(size=32, width=8, latent=16, lr=2e-3)
    learn = Learner(model, Batches(toy_faces(256, size=32).images, 16), cbs=[], device='cpu').fit(2)  # 32 steps
    history = learn.history[loss]
    assert len(history) == 32 and np.mean(history[-4:]) < 0.5 * np.mean(history[:4]), history


def test_vae_kl_rises_while_reconstruction_falls():
    seed_everything(0)
    vae = VAE(size=32, width=8, latent=16, lr=2e-3)
    history = Learner(vae, Batches(toy_faces(256, size=32).images, 16), cbs=[], device='cpu').fit(2).history
    assert np.mean(history['kl'][-4:]) > np.mean(history['kl'][:4])
    assert np.allclose(history['loss'], np.array(history['recon']) + np.array(history['kl']), rtol=1e-4)  # beta 1, no warm-up


def test_vae_applies_the_kl_warmup_by_training_step():
    seed_everything(0)
    vae = VAE(size=32, width=8, latent=16, warmup_steps=8)
    history = Learner(vae, Batches(toy_faces(160, size=32).images, 16), cbs=[], device='cpu').fit(1).history  # 10 steps
    weights = np.minimum(np.arange(10) / 8, 1.0)
    assert np.allclose(history['loss'], np.array(history['recon']) + weights * np.array(history['kl']), rtol=1e-4)


def _png(path) -> np.ndarray: return np.asarray(Image.open(path).convert('RGB'))


def test_cli_train_and_sample_autoencoder(ganime):
    run = ganime('train', 'ae', *TINY, '--epochs', '1', '--out', 'runs/ae', check=0)
    assert 'epoch 1/1  mse' in run.stdout
    method = load_method(ganime.cwd / 'runs/ae/checkpoint.pt', 'cpu')
    assert isinstance(method, Autoencoder) and method.latent == 16 and method.width == 8
    ganime('sample', 'runs/ae/checkpoint.pt', '-n', '4', '--out', 'ae.png', check=0)
    assert Image.open(ganime.cwd / 'ae.png').size == (2 * 34 + 2, 2 * 34 + 2)


def test_cli_train_and_sample_vae(ganime):
    run = ganime('train', 'vae', *TINY, '--epochs', '2', '--beta', '0.5', '--recon', 'l1', '--warmup-steps', '4',
                 '--out', 'runs/vae', check=0)
    assert 'epoch 2/2  loss' in run.stdout and ' recon ' in run.stdout and ' kl ' in run.stdout
    folder = ganime.cwd / 'runs' / 'vae'
    assert Image.open(folder / 'samples' / 'epoch_002.png').size == (4 * 34 + 2, 4 * 34 + 2)  # 4 pairs and 8 samples
    state = read_checkpoint(folder / 'checkpoint.pt')
    assert state['method'] == 'vae' and state['step'] == 16 and state['epochs_done'] == 2
    assert state['config'] == dict(size=32, channels=3, latent=16, width=8, lr=1e-3, beta=0.5, recon='l1', warmup_steps=4)
    out = ganime('sample', 'runs/vae/checkpoint.pt', '-n', '9', '--seed', '3', '--out', 'vae.png', check=0)
    assert 'wrote vae.png (9 images' in out.stdout
    written = _png(ganime.cwd / 'vae.png')
    assert written.shape == (3 * 34 + 2, 3 * 34 + 2, 3)
    # the checkpoint loads, and sampling it here with the same seed gives the same picture
    vae = load_method(folder / 'checkpoint.pt', 'cpu')
    assert isinstance(vae, VAE) and vae.beta == 0.5 and vae.recon == 'l1'
    with torch.no_grad(): grid = image_grid(vae.sample(9, torch.Generator().manual_seed(3)), 3)
    expected = grid.mul(255).add(0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.abs(written.astype(int) - expected.astype(int)).max() <= 1


def test_cli_rejects_bad_vae_options(tmp_path, monkeypatch, capsys):
    from ganime_nb.cli import main
    monkeypatch.chdir(tmp_path)
    assert main(['train', 'vae', '--recon', 'l3', '--device', 'cpu']) == 2
    err = capsys.readouterr().err
    assert "unknown reconstruction loss 'l3'" in err and 'Traceback' not in err
    assert main(['train', 'vae', '--beta', 'big']) == 2
    assert "argument --beta: invalid float value: 'big'" in capsys.readouterr().err
