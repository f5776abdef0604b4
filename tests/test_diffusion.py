"The diffusion method: exact resume, the command line's --steps, and the samplers' determinism, on toy data on the CPU."
import torch

from ganime_nb.diffusion import DDPM, ddim_sample, noise_schedule, signal_kept, train_on_budget, snapshot_path
from ganime_nb.learner import read_checkpoint

TINY = ['--data', 'toy:48', '--size', '16', '--width', '4', '--batch-size', '8', '--samples', '4', '--device', 'cpu']


def test_a_resumed_run_is_the_uninterrupted_run(ganime):
    "Two epochs in one go, and one epoch then one more after --resume: the same U-Net, moving average and losses."
    constant = ['--decay-start', '1']  # a constant learning rate: a run planned for 1 epoch is then the first epoch of one planned for 2
    ganime('train', 'ddpm', *TINY, *constant, '--epochs', '2', '--out', 'straight', check=0)
    ganime('train', 'ddpm', *TINY, *constant, '--epochs', '1', '--out', 'split', check=0)
    ganime('train', 'ddpm', '--out', 'split', '--resume', '--epochs', '2', check=0)
    a, b = (read_checkpoint(ganime.cwd / d / 'checkpoint.pt') for d in ('straight', 'split'))
    assert a['step'] == b['step'] == 12 and a['history'] == b['history']
    assert set(a['models']) == {'unet', 'unet_ema'}
    for net in a['models']:
        for k, w in a['models'][net].items():
            assert torch.equal(w, b['models'][net][k]) if torch.is_tensor(w) else w == b['models'][net][k], f'{net}.{k}'


def test_sample_takes_steps_and_refuses_them_in_one_line(ganime):
    ganime('train', 'ddpm', *TINY, '--epochs', '1', '--timesteps', '50', '--out', 'run', check=0)
    ganime('sample', 'run/checkpoint.pt', '-n', '4', '--steps', '3', '--out', 'three.png', check=0)
    assert (ganime.cwd / 'three.png').is_file()
    too_many = ganime('sample', 'run/checkpoint.pt', '--steps', '51', '--out', 'bad.png', check=2).stderr
    assert too_many.strip() == 'ganime: error: sampling steps must be between 1 and 50; got 51'
    ganime('train', 'ae', '--data', 'toy:48', '--size', '16', '--width', '4', '--batch-size', '8', '--epochs', '1', '--samples', '4', '--device', 'cpu', '--out', 'ae', check=0)
    one_pass = ganime('sample', 'ae/checkpoint.pt', '--steps', '5', '--out', 'ae.png', check=2).stderr
    assert 'ganime: error: --steps is for methods that draw in steps, such as ddpm; ae draws in one pass' in one_pass
    assert not (ganime.cwd / 'bad.png').exists() and not (ganime.cwd / 'ae.png').exists()


def test_ddim_is_deterministic_and_its_steps_matter():
    torch.manual_seed(0)
    model = DDPM(size=16, width=4, timesteps=100)
    one = model.sample(3, torch.Generator().manual_seed(1), steps=10)
    assert torch.equal(one, model.sample(3, torch.Generator().manual_seed(1), steps=10))
    assert not torch.equal(one, model.sample(3, torch.Generator().manual_seed(1), steps=20))
    assert one.abs().max() <= 1


def test_one_ddim_step_predicts_the_clean_image_directly():
    "With one step DDIM returns x̂_0 = (x_T - √(1-ᾱ_T) ε̂) / √ᾱ_T, clamped: checked against that formula."
    abar = signal_kept(noise_schedule('linear', 100)).float()
    noise, guess = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    made = ddim_sample(lambda x, t: guess, noise, abar, steps=1)
    assert torch.allclose(made, ((noise - (1 - abar[-1]).sqrt() * guess) / abar[-1].sqrt()).clamp(-1, 1))


def test_train_on_budget_does_not_train_a_finished_run_again(tmp_path):
    images = (torch.rand(16, 3, 16, 16) * 255).to(torch.uint8)
    learn = train_on_budget('ae', dict(size=16, width=4, latent=8), images, tmp_path, minutes=(0.001, 0.002), batch_size=8, device='cpu')
    assert learn is not None and snapshot_path(tmp_path, 0.001).is_file() and snapshot_path(tmp_path, 0.002).is_file()
    assert read_checkpoint(snapshot_path(tmp_path, 0.002))['step'] >= read_checkpoint(snapshot_path(tmp_path, 0.001))['step'] >= 1
    assert train_on_budget('ae', dict(size=16, width=4, latent=8), images, tmp_path, minutes=(0.001, 0.002), device='cpu') is None
