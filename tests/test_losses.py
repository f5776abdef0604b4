"GAN losses against values computed by hand, and the gradient penalty against autograd on a linear critic."
import math

import pytest
import torch
from torch import nn

from ganime_nb.core import GanimeError
from ganime_nb.losses import LOSSES, dragan_points, get_loss, gradient_penalty, points_between


def log_sigmoid(x): return -math.log1p(math.exp(-x))
def log_one_minus_sigmoid(x): return -math.log1p(math.exp(x))

REAL, FAKE = [0.5, -1.0, 2.0], [-0.3, 1.5, 0.0]

def mean(values): return sum(values) / len(values)

# each loss written out from its paper's formula, over plain Python floats
BY_HAND = {
    'minimax': (lambda r, f: -mean([log_sigmoid(x) for x in r]) - mean([log_one_minus_sigmoid(x) for x in f]),
                lambda f: mean([log_one_minus_sigmoid(x) for x in f])),
    'ns': (lambda r, f: -mean([log_sigmoid(x) for x in r]) - mean([log_one_minus_sigmoid(x) for x in f]),
           lambda f: -mean([log_sigmoid(x) for x in f])),
    'lsgan': (lambda r, f: 0.5 * mean([(x - 1) ** 2 for x in r]) + 0.5 * mean([x ** 2 for x in f]),
              lambda f: 0.5 * mean([(x - 1) ** 2 for x in f])),
    'wgan': (lambda r, f: mean(f) - mean(r), lambda f: -mean(f)),
    'wgan-gp': (lambda r, f: mean(f) - mean(r), lambda f: -mean(f)),
    'hinge': (lambda r, f: mean([max(0, 1 - x) for x in r]) + mean([max(0, 1 + x) for x in f]), lambda f: -mean(f)),
    'dragan': (lambda r, f: -mean([log_sigmoid(x) for x in r]) - mean([log_one_minus_sigmoid(x) for x in f]),
               lambda f: -mean([log_sigmoid(x) for x in f])),
}


def test_every_loss_is_covered():
    assert set(BY_HAND) == set(LOSSES) >= {'minimax', 'ns', 'lsgan', 'wgan', 'wgan-gp', 'hinge', 'dragan'}


@pytest.mark.parametrize('name', list(BY_HAND))
def test_loss_matches_hand_computation(name):
    d_ref, g_ref = BY_HAND[name]
    loss = get_loss(name)
    assert loss.d_loss(torch.tensor(REAL), torch.tensor(FAKE)).item() == pytest.approx(d_ref(REAL, FAKE), rel=1e-5)
    assert loss.g_loss(torch.tensor(FAKE)).item() == pytest.approx(g_ref(FAKE), rel=1e-5)


def test_patch_scores_average_over_the_map():
    "A (N, 1, H, W) map of scores is the same as a flat list of them."
    r, f = torch.randn(2, 1, 3, 3), torch.randn(2, 1, 3, 3)
    for name in LOSSES:
        loss = get_loss(name)
        assert loss.d_loss(r, f).item() == pytest.approx(loss.d_loss(r.flatten(), f.flatten()).item(), rel=1e-6)


def test_one_sided_label_smoothing():
    s = 0.1
    bce_real = mean([-(1 - s) * log_sigmoid(x) - s * log_one_minus_sigmoid(x) for x in REAL])
    expected = bce_real - mean([log_one_minus_sigmoid(x) for x in FAKE])  # fakes keep target 0
    got = get_loss('ns', label_smoothing=s).d_loss(torch.tensor(REAL), torch.tensor(FAKE)).item()
    assert got == pytest.approx(expected, rel=1e-5)
    ls = get_loss('lsgan', label_smoothing=s).d_loss(torch.tensor(REAL), torch.tensor(FAKE)).item()
    assert ls == pytest.approx(0.5 * mean([(x - 0.9) ** 2 for x in REAL]) + 0.5 * mean([x ** 2 for x in FAKE]), rel=1e-5)
    # the generator's target is unchanged
    assert get_loss('ns', label_smoothing=s).g_loss(torch.tensor(FAKE)).item() == pytest.approx(BY_HAND['ns'][1](FAKE), rel=1e-5)


class LinearCritic(nn.Module):
    "f(x) = <w, x> + b: its gradient with respect to x is w at every point."
    def __init__(self, w):
        super().__init__()
        self.w, self.b = nn.Parameter(w.clone()), nn.Parameter(torch.tensor(-0.7))
    def forward(self, x): return (x * self.w).flatten(1).sum(1) + self.b


@pytest.mark.parametrize('scale', [0.05, 0.2, 1.0])
def test_gradient_penalty_on_a_linear_critic(scale):
    torch.manual_seed(0)
    w = torch.randn(3, 4, 4) * scale
    critic, norm = LinearCritic(w), w.norm().item()
    real, fake = torch.randn(6, 3, 4, 4), torch.randn(6, 3, 4, 4)
    gp = get_loss('wgan-gp').penalty(critic, real, fake)
    assert gp.item() == pytest.approx(10 * (norm - 1) ** 2, rel=1e-4)
    # its gradient with respect to the critic's weights, by hand: 2λ(‖w‖ − 1) w/‖w‖; none for the bias
    gp.backward()
    torch.testing.assert_close(critic.w.grad, 2 * 10 * (norm - 1) * w / norm, rtol=1e-4, atol=1e-6)
    assert critic.b.grad is None or critic.b.grad.abs().item() < 1e-8


def test_gradient_penalty_matches_autograd_per_sample():
    "On a non-linear critic, the penalty equals the per-sample gradient norms computed one sample at a time."
    torch.manual_seed(1)
    critic = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 5 * 5, 1))
    points = torch.randn(4, 3, 5, 5)
    norms = []
    for x in points:
        x = x[None].clone().requires_grad_(True)
        g, = torch.autograd.grad(critic(x).sum(), x)
        norms.append(g.norm().item())
    expected = 3.0 * mean([(n - 1) ** 2 for n in norms])
    assert gradient_penalty(critic, points, weight=3.0).item() == pytest.approx(expected, rel=1e-4)


def test_gradient_penalty_through_a_compiled_critic():
    "torch.compile cannot differentiate twice; the penalty runs the critic uncompiled and still trains it."
    torch.manual_seed(2)
    w = torch.randn(2, 3, 3)
    critic = LinearCritic(w)
    critic.compile()
    gp = gradient_penalty(critic, torch.randn(3, 2, 3, 3))
    gp.backward()
    assert gp.item() == pytest.approx(10 * (w.norm().item() - 1) ** 2, rel=1e-4)
    assert critic.w.grad is not None


def test_penalty_points():
    torch.manual_seed(3)
    real, fake = torch.zeros(8, 3, 2, 2), torch.ones(8, 3, 2, 2)
    mix = points_between(real, fake).flatten(1)  # 1 - eps per sample, constant over each sample
    assert torch.equal(mix.min(1).values, mix.max(1).values) and mix.min() >= 0 and mix.max() <= 1
    x = torch.randn(8, 3, 4, 4)
    near = dragan_points(x) - x
    assert near.min() >= 0 and near.max() <= 0.5 * x.std() + 1e-6
    with pytest.raises(GanimeError, match='differ in shape'): points_between(real, fake[:4])


def test_dragan_penalty_on_a_linear_critic():
    w = torch.full((3, 2, 2), 0.1)
    critic = LinearCritic(w)
    gp = get_loss('dragan', penalty_weight=2.0).penalty(critic, torch.randn(5, 3, 2, 2), None)
    assert gp.item() == pytest.approx(2.0 * (w.norm().item() - 1) ** 2, rel=1e-4)


def test_instance_noise_anneals():
    loss = get_loss('hinge', instance_noise=0.3)
    x = torch.zeros(20_000)
    assert loss.perturb(x, 0.0).std().item() == pytest.approx(0.3, rel=0.03)
    assert loss.perturb(x, 0.5).std().item() == pytest.approx(0.15, rel=0.03)
    assert torch.equal(loss.perturb(x, 1.0), x)


def test_bad_input_is_a_clear_error():
    with pytest.raises(GanimeError, match='use one of minimax, ns, lsgan'): get_loss('bce')
    with pytest.raises(GanimeError, match='unknown option'): get_loss('ns', smoothing=0.1)
    with pytest.raises(GanimeError, match=r'\[0, 1\)'): get_loss('ns', label_smoothing=-0.1)
    with pytest.raises(GanimeError, match='does not apply'): get_loss('hinge', label_smoothing=0.1)
    with pytest.raises(GanimeError, match='cannot be negative'): get_loss('ns', instance_noise=-1)
