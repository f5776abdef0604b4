"DCGAN, WGAN, WGAN-GP and ResGAN: network shapes, the shared adversarial step, and the command line end to end."
import inspect, os, re, statistics, subprocess, sys
from pathlib import Path

import pytest
import torch
from torch import nn

from ganime_nb.core import GanimeError, seed_everything
from ganime_nb.data import Batches, toy_faces
from ganime_nb.dcgan import DCGAN, DCGANDiscriminator, DCGANGenerator
from ganime_nb.gan import GAN, PointsGAN, slerp
from ganime_nb.learner import Learner, get_method
from ganime_nb.cli import main, method_options
from fastcore.docments import docments
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


def test_hooks_follow_their_updates():
    "after_discriminator_update follows every D update; after_generator_update every G update, and not critic-only steps."
    seed_everything(0)
    gan = PointsGAN(hidden=8, n_critic=3)
    learn = Learner(gan, [torch.randn(16, 2) for _ in range(7)], cbs=[], device='cpu')
    events, update = [], learn.update
    def noted_update(loss, name): update(loss, name); events.append(name)
    learn.update = noted_update
    gan.after_discriminator_update = lambda: events.append('after D')
    gan.after_generator_update = lambda: events.append('after G')
    learn.fit(1)  # 7 steps: G updates after steps 3 and 6
    critic = ['discriminator', 'after D']
    assert events == (critic * 3 + ['generator', 'after G']) * 2 + critic
    assert events.count('after G') == events.count('generator') == 2


def test_after_generator_update_in_an_image_gan():
    seed_everything(0)
    gan = WGANGP(size=32, width=8, latent=16, n_critic=2)
    calls = []
    gan.after_generator_update = lambda: calls.append(learn.step)
    learn = tiny_learner(gan, n=96)  # 6 steps
    learn.fit(1)
    assert calls == [1, 3, 5]  # the step counter moves on after train_step returns

def _same_state(a:dict, b:dict) -> bool:
    "Two state dicts hold the same tensors (and the same extra state, such as an average's update count)."
    return a.keys() == b.keys() and all(torch.equal(x, b[k]) if torch.is_tensor(x) else x == b[k] for k, x in a.items())


def test_a_moving_average_of_the_generator_samples_and_resumes_exactly(tmp_path):
    "With ema on, the average follows G once per generator update, makes the samples, and a resumed run ends as a straight one."
    from ganime_nb.callbacks import CheckpointCB
    from ganime_nb.learner import Callback, load_method
    class Crash(Callback):
        def after_step(self, learn):
            if learn.step == 6: raise KeyboardInterrupt  # in epoch 2 of 3 (4 steps each)
    def run(folder, resume=False, crash=False):
        seed_everything(0)
        gan = DCGAN(size=32, width=4, latent=8, n_critic=2, ema=0.9)
        learn = Learner(gan, Batches(toy_faces(64, 32).images, 16), cbs=[CheckpointCB(folder / 'checkpoint.pt', resume=resume),
                        *([Crash()] if crash else [])], device='cpu', seed=0)
        try: learn.fit(3)
        except KeyboardInterrupt: assert learn.epochs_done == 1
        return gan
    straight = run(tmp_path / 'a')
    assert straight.models['generator_ema'].updates == 6  # 12 steps, a generator update every second one
    assert not _same_state(straight.G.state_dict(), straight.models['generator_ema'].average.state_dict())
    run(tmp_path / 'b', crash=True)
    resumed = run(tmp_path / 'b', resume=True)
    assert _same_state(straight.models.state_dict(), resumed.models.state_dict())
    z = straight.noise(4, torch.Generator().manual_seed(0))
    with torch.no_grad(): from_average = straight.models['generator_ema'].eval()(z)
    loaded = load_method(tmp_path / 'a' / 'checkpoint.pt', 'cpu')
    assert torch.equal(loaded.sample(4, torch.Generator().manual_seed(0)), from_average)  # `ganime sample` draws from the average


def test_standing_statistics_are_the_averages_own_and_leave_training_alone():
    "With standing_stats the average measures its batch-norm statistics before it samples, and sampling mid-run changes nothing in training."
    from ganime_nb.learner import Callback
    class SampleEveryStep(Callback):
        def after_step(self, learn): learn.method.sample(4, torch.Generator().manual_seed(1))  # a grid's fixed noise
    def run(standing_stats, sampling):
        seed_everything(0)
        gan = DCGAN(size=32, width=4, latent=8, ema=0.9, standing_stats=standing_stats)
        Learner(gan, Batches(toy_faces(64, 32).images, 16), cbs=[SampleEveryStep()] * sampling, device='cpu', seed=0).fit(2)
        return gan
    plain, measured = run(False, False), run(True, True)
    assert _same_state(plain.G.state_dict(), measured.G.state_dict())  # the measurement draws its own random numbers
    plain_stats, measured_stats = plain.models['generator_ema'].average, measured.models['generator_ema'].average
    assert all(torch.equal(a.weight, b.weight) for a, b in zip(plain_stats.modules(), measured_stats.modules()) if isinstance(a, nn.BatchNorm2d))
    norms = [m for m in measured_stats.modules() if isinstance(m, nn.BatchNorm2d)]
    assert not any(torch.allclose(m.running_mean, g.running_mean) for m, g in zip(norms, [m for m in measured.G.modules() if isinstance(m, nn.BatchNorm2d)]))
    noise = torch.Generator().manual_seed(0)  # the first layer's statistics: the average's over 8 batches of 256 latents of its own stream
    with torch.no_grad(): maps = [measured_stats[1](measured_stats[0](measured.noise(256, noise))) for _ in range(8)]
    assert torch.allclose(norms[0].running_mean, torch.stack([m.mean((0, 2, 3)) for m in maps]).mean(0), atol=1e-5)
    assert torch.allclose(norms[0].running_var, torch.stack([m.transpose(0, 1).flatten(1).var(1) for m in maps]).mean(0), atol=1e-4)
    with pytest.raises(GanimeError, match='it needs ema'): DCGAN(size=32, width=4, standing_stats=True)


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


OWN_DEFAULTS = {  # each method's own defaults: those it changes from GAN's (or DCGAN's), and the options only it has
    DCGAN: dict(upsample='transposed', d_norm='batch', latent=100, loss='ns', n_critic=1, lr=2e-4, lr_d=None, beta1=0.5, beta2=0.999),
    WGAN: dict(clip=0.01, upsample='transposed', d_norm='batch', latent=100, loss='wgan', n_critic=5, lr=5e-5, lr_d=None),
    WGANGP: dict(upsample='transposed', d_norm='layer', latent=100, loss='wgan-gp', n_critic=5, lr=1e-4, lr_d=None, beta1=0.0, beta2=0.9),
    ResGAN: dict(spectral_norm=True, latent=128, loss='hinge', n_critic=1, lr=1e-4, lr_d=4e-4, beta1=0.0, beta2=0.9)}
SHARED = dict(size=64, channels=3, width=64, label_smoothing=0.0, instance_noise=0.0)
NOT_THEIRS = {DCGAN: {'clip', 'spectral_norm'}, WGAN: {'beta1', 'beta2', 'spectral_norm'}, WGANGP: {'clip', 'spectral_norm'},
              ResGAN: {'upsample', 'd_norm', 'clip'}}


@pytest.mark.parametrize('cls', list(OWN_DEFAULTS))
def test_each_gan_has_its_own_defaults_and_a_doc_line_for_every_option(cls):
    defaults = cls.defaults_for(toy=False)
    assert {k: defaults[k] for k in {**OWN_DEFAULTS[cls], **SHARED}} == {**OWN_DEFAULTS[cls], **SHARED}
    assert not NOT_THEIRS[cls] & set(defaults)
    docs = docments(cls.__init__)
    names = [n for n in inspect.signature(cls.__init__).parameters if n != 'self']
    assert names and all(docs[n] for n in names), [n for n in names if not docs[n]]
    for name in set(GAN_DOCS) & set(names): assert docs[name] == GAN_DOCS[name]  # written once, in GAN
    seed_everything(0)
    config = cls(size=32, width=8).config  # what a checkpoint keeps: the method's own defaults
    assert {k: config[k] for k in OWN_DEFAULTS[cls]} == OWN_DEFAULTS[cls] and set(config) == set(names)


GAN_DOCS = docments(GAN.__init__)


@pytest.mark.parametrize('cls', [WGAN, WGANGP, ResGAN])
def test_cli_help_shows_each_gans_defaults_and_docs(cls, capsys):
    with pytest.raises(SystemExit): main(['train', cls.name, '--help'])
    shown = ''.join(capsys.readouterr().out.split())  # argparse wraps lines, even inside words with hyphens
    defaults, toy, docs = cls.defaults_for(toy=False), cls.defaults_for(toy=True), docments(cls.__init__)
    for name, (typ, _, doc) in method_options(cls).items():
        assert doc == docs[name] and doc, name
        on_toy = f'; on toy data: {toy[name]}' if toy[name] != defaults[name] else ''  # the toy defaults, beside the paper's
        line = f'{doc} (default: {defaults[name]}{on_toy})' if defaults[name] is not None else doc
        assert ''.join(line.split()) in shown, name
    for name in NOT_THEIRS[cls]: assert '--' + name.replace('_', '-') not in shown

def test_bad_options_are_clear_errors():
    with pytest.raises(GanimeError, match='unknown GAN loss'): DCGAN(loss='bce')
    with pytest.raises(GanimeError, match='power of two'): DCGAN(size=48)
    with pytest.raises(GanimeError, match='unknown upsampling'): WGAN(upsample='bilinear')
    with pytest.raises(GanimeError, match='unknown normalisation'): WGANGP(d_norm='instance')
    with pytest.raises(GanimeError, match='n_critic'): ResGAN(n_critic=0)
    with pytest.raises(GanimeError, match='does not apply'): WGAN(label_smoothing=0.1)


TINY = ['--data', 'toy:128', '--size', '32', '--width', '8', '--epochs', '1', '--batch-size', '32', '--device', 'cpu', '--samples', '4']

@pytest.mark.parametrize('method, extra', [('dcgan', ['--loss', 'hinge', '--upsample', 'nearest']),
                                           ('wgan-gp', ['--n-critic', '2']), ('resgan', ['--loss', 'lsgan']), ('dcgan', ['--ema', '0.99'])])
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
    assert main(['train', 'dcgan', *TINY, '--r1', '-1']) == 2
    assert 'r1 must be zero or positive; got -1.0' in capsys.readouterr().err
    assert main(['train', 'dcgan', *TINY, '--r1', '1', '--r1-every', '0']) == 2
    assert 'r1_every must be at least 1' in capsys.readouterr().err


def test_r1_penalty_is_logged_and_changes_the_discriminator_step():
    faces = toy_faces(64, 32).images
    runs = {}
    for r1 in (0.0, 1.0):
        seed_everything(0)
        gan = DCGAN(size=32, width=8, r1=r1)
        runs[r1] = gan, Learner(gan, Batches(faces, 32), cbs=[], device='cpu').fit(1)
    (plain, plain_learn), (penalised, penalised_learn) = runs.values()
    assert 'r1' not in plain_learn.history and len(penalised_learn.history['r1']) == 2
    assert all(0 < v < float('inf') for v in penalised_learn.history['r1'])
    assert any(not torch.equal(a, b) for a, b in zip(plain.D.parameters(), penalised.D.parameters()))  # the penalty moved D


def test_benchmark_runs_on_cpu(tmp_path):
    cmd = [sys.executable, str(ROOT / 'bench' / 'bench_gan.py'), '--device', 'cpu', '--methods', 'dcgan', 'wgan-gp',
           '--batch-sizes', '8', '--steps', '2', '--size', '32', '--width', '8', '--ref-images', '32', '--distinct-images', '16']
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [l.split() for l in proc.stdout.splitlines() if l and not l.startswith('#')]
    assert [r[0] for r in rows] == ['method', 'reference', 'dcgan', 'wgan-gp'] and all(float(r[2].replace(',', '')) > 0 for r in rows[1:])


def test_cpu_benchmark_prints_a_ratio_per_variant(tmp_path):
    cmd = [sys.executable, str(ROOT / 'bench' / 'bench_cpu.py'), '--variants', 'nchw', 'channels-last', 'channels-last+bf16',
           '--steps', '2', '--warmup', '1', '--rounds', '1', '--width', '8']
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [[cell.strip() for cell in l.strip('|').split('|')] for l in proc.stdout.splitlines() if l.startswith('| ') and 'variant' not in l]
    assert [r[0] for r in rows] == ['nchw', 'channels-last', 'channels-last+bf16'] and rows[0][3] == '1.00×'
    assert all(float(r[2]) > 0 and float(r[3].rstrip('×')) > 0 for r in rows)
    limit = re.search(r'step is ([\d.]+) GFLOP per batch of 64\. .* at (\d+) GFLOP/s in float32 .* more than ([\d.]+)× as fast', proc.stdout)
    step_gflop, fp32_rate, ceiling = float(limit[1]), float(limit[2]), float(limit[3])
    assert 0.2 < step_gflop < 1  # width 8 at 32x32: about 0.5 GFLOP counted, convolutions forward and backward
    for r in rows:  # images/s times the arithmetic per image, and its share of the matrix product's rate
        assert float(r[4]) == pytest.approx(float(r[2]) * step_gflop / 64, abs=1.5)
    assert int(rows[0][5].rstrip('%')) == pytest.approx(100 * float(rows[0][4]) / fp32_rate, abs=2)
    printed = float(rows[0][4])  # GFLOP/s printed to the unit: tiny and rounded on a slow or busy CPU
    assert fp32_rate / (printed + 0.5) * 0.99 <= ceiling <= fp32_rate / max(printed - 0.5, 0.01) * 1.01


def test_fid_benchmark_times_the_new_settings_to_the_old_runs_quality(tmp_path):
    cmd = [sys.executable, str(ROOT / 'bench' / 'bench_cpu_fid.py'), '--data', 'toy:256', '--epochs', '2', '--every', '2', '--n', '128', '--window', '3']
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    measured = [line.split() for line in proc.stdout.splitlines() if line.strip().startswith('step ')]
    old = measured[:4]  # 256 faces in batches of 64: 8 steps in 2 epochs, measured after steps 2, 4, 6 and 8
    new = measured[4:]
    assert [int(m[1]) for m in old] == [2, 4, 6, 8] and 3 <= len(new) <= 4
    old_fids = [float(m[7]) for m in old]  # 'step S  T s of training  FID F  median of the last W M'
    assert [float(m[-1]) for m in old] == pytest.approx([statistics.median(old_fids[max(0, i - 2):i + 1]) for i in range(4)], abs=1e-3)
    row = [cell.strip() for cell in proc.stdout.splitlines()[-1].strip('|').split('|')]
    target = float(row[1])
    assert target == pytest.approx(statistics.median(old_fids[-3:]), abs=1e-3)  # the old run's quality at its end
    reached = float(new[-1][-1]) <= target
    assert row[4].endswith('×') == reached and (len(new) == 4 or reached)  # the new run stops once its quality gets there
    if reached:
        assert row[3] == f'step {int(new[-1][1]):,}, {float(new[-1][2]):.1f} s'
        old_s, new_s = float(row[2].split(', ')[1][:-2]), float(new[-1][2])  # both printed to 0.1 s
        assert (old_s - 0.05) / (new_s + 0.05) - 0.01 <= float(row[4][:-1]) <= (old_s + 0.05) / max(new_s - 0.05, 0.01) + 0.01
    assert row[5].startswith(f'{old_fids[-1]:.3f}, ')  # the single-measurement rule's target: the old run's last FID
    bad = subprocess.run([*cmd[:3], 'toy:64', *cmd[4:]], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert bad.returncode != 0 and 'fewer than --n 128' in bad.stderr
    short = subprocess.run([*cmd[:-1], '5'], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert short.returncode != 0 and 'measures FID 4 times, fewer than --window 5' in short.stderr
    alone = subprocess.run([*cmd, '--new', 'standing-stats'], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert alone.returncode != 0 and "statistics: add ema" in alone.stderr


def test_toy_mix_curve_measures_g_and_its_average_every_few_epochs(tmp_path):
    cmd = [sys.executable, str(ROOT / 'bench' / 'toy_mix_curve.py'), 'dcgan', '--every', '2', '--set', 'epochs=3', 'data=toy:128', 'width=4']
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300, env={**os.environ, 'GANIME_DATA': str(tmp_path / 'data')})
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith('mix after epoch')]
    assert [row.split(':')[0] for row in rows] == ['mix after epoch 2', 'mix after epoch 3']  # every 2nd epoch, and the last
    assert all(0 <= float(part.split()[-1]) <= 1 for row in rows for part in row.split(':')[1].split(','))  # total variation
    for bad, message in ((['vae'], 'vae is not a GAN'), (['dcgan', '--set', 'width=wide'], 'width needs a value of type int'),
                         (['dcgan', '--set', 'colour=red'], 'NAME one of')):
        proc = subprocess.run([*cmd[:2], *bad], capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert proc.returncode == 2 and message in proc.stderr


def test_diffaugment_reaches_both_updates_and_rejects_unknown_names(monkeypatch):
    "With augment on, every image D sees (real and fake, in both updates) goes through diff_augment; bad names fail early."
    from ganime_nb import gan as gan_module
    seen = []
    original = gan_module.diff_augment
    monkeypatch.setattr(gan_module, 'diff_augment', lambda x, spec: seen.append((x.requires_grad, spec)) or original(x, spec))
    seed_everything(0)
    tiny_learner(DCGAN(size=32, width=4, latent=8, augment='translation,cutout'), n=32).fit(1)  # 2 steps
    assert seen == [(False, 'translation,cutout'), (False, 'translation,cutout'), (True, 'translation,cutout')] * 2
    with pytest.raises(GanimeError, match="unknown augmentation 'mirror'"): DCGAN(augment='color,mirror')
    images = torch.randn(2, 3, 8, 8)
    assert original(images, '') is images  # an empty spec: no augmentation at all
    assert main(['train', 'dcgan', *TINY, '--augment', 'zoom']) == 2


def test_toy_benchmark_passes_options_to_every_run(tmp_path):
    cmd = [sys.executable, str(ROOT / 'bench' / 'bench_toy.py'), '--methods', 'dcgan', '--data', 'toy:64', '--seeds', '0', '1',
           '--options=--epochs 2 --width 4']
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [[cell.strip() for cell in l.strip('|').split('|')] for l in proc.stdout.splitlines() if l.startswith('| dcgan')]
    assert [(r[1], r[2]) for r in rows] == [('0', '2'), ('1', '2')]  # each seed trained the 2 epochs the options asked for
    assert all(r[5].endswith(' of 8') and 0 <= float(r[6]) <= 1 for r in rows)


def test_lazy_r1_penalises_every_nth_step_with_n_times_the_weight():
    faces = toy_faces(128, 32).images
    seed_everything(0)
    learn = Learner(DCGAN(size=32, width=8, r1=1.0, r1_every=2), Batches(faces, 32), cbs=[], device='cpu').fit(1)
    r1 = learn.history['r1']  # steps 0 and 2 penalised, 1 and 3 not: the epoch's mean is the penalty's average
    assert len(r1) == 4 and r1[1] == r1[3] == 0 and min(r1[0], r1[2]) > 0
