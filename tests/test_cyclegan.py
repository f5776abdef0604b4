"CycleGAN: networks, image pool, cycle loss, two-domain data, resume, and the `ganime translate` command."
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn
from PIL import Image
from torchvision.transforms.v2.functional import pil_to_tensor

from ganime_nb.core import GanimeError, seed_everything
from ganime_nb.data import DataError, toy_faces
from ganime_nb.toy import toy_face
from ganime_nb.callbacks import decay_factor
from ganime_nb.learner import Callback, Learner
from ganime_nb.callbacks import CheckpointCB
from ganime_nb.cyclegan import (CycleGAN, EmbeddingDiscriminator, ImagePool, PatchDiscriminator, ResnetGenerator,
                                conv_norm_relu, domain_sources, noisy_real, translate_folder, unpaired_batches)
from ganime_nb import cli

TINY = dict(size=32, width=4, res_blocks=2, disc_width=4, disc_layers=2)


def tiny(**kw) -> CycleGAN:
    seed_everything(0)
    return CycleGAN(**{**TINY, **kw})


# ---------------------------------------------------------------- networks
@pytest.mark.parametrize('size,kernel', [(32, 3), (64, 5), (128, 3)])
def test_generator_shapes(size, kernel):
    g = ResnetGenerator(3, 4, res_blocks=3, kernel=kernel)
    x = torch.randn(2, 3, size, size)
    y = g(x)
    assert y.shape == x.shape
    assert y.abs().max() <= 1  # tanh output, images in [-1, 1]
    assert g.encode(x).shape == (2, 16, size // 4, size // 4)
    assert torch.allclose(g.decode(g.encode(x)), y)


def test_generator_grey_and_batch_of_one():
    g = ResnetGenerator(1, 4, res_blocks=1)
    assert g(torch.randn(1, 1, 32, 32)).shape == (1, 1, 32, 32)  # instance norm works on a batch of one


def test_patch_discriminator_shapes():
    assert PatchDiscriminator(3, 4, layers=3)(torch.randn(2, 3, 128, 128)).shape == (2, 1, 14, 14)
    assert PatchDiscriminator(3, 4, layers=3)(torch.randn(2, 3, 64, 64)).shape == (2, 1, 6, 6)
    assert PatchDiscriminator(1, 4, layers=2)(torch.randn(1, 1, 32, 32)).shape == (1, 1, 6, 6)
    assert EmbeddingDiscriminator(16)(torch.randn(2, 16, 8, 8)).shape == (2, 1)


def test_instance_norm_cannot_see_a_colour_cast_and_layer_norm_can():
    "A uniform colour cast shifts each channel after the stem's convolution by a constant: instance norm removes it, layer norm does not."
    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    cast = x + torch.tensor([0.3, -0.2, 0.1]).view(1, 3, 1, 1)
    for norm, blind in (('instance', True), ('layer', False)):
        stem = conv_norm_relu(3, 8, 7, norm=norm)
        assert torch.allclose(stem(x), stem(cast), atol=1e-5) == blind, norm
    layer = tiny(norm='layer')
    kinds = {type(m) for net in layer.models.values() for m in net.modules()}
    assert nn.GroupNorm in kinds and nn.InstanceNorm2d not in kinds  # all four networks
    assert CycleGAN.toy_defaults['norm'] == 'layer' and CycleGAN.defaults_for(toy=False)['norm'] == 'instance'


def test_bad_options():
    with pytest.raises(GanimeError, match="unknown normalisation 'batch'"): CycleGAN(**{**TINY, 'norm': 'batch'})
    assert cli.main(['train', 'cyclegan', '--data', 'toy:8', '--epochs', '1', '--norm', 'group']) == 2
    with pytest.raises(GanimeError, match='odd'): CycleGAN(**{**TINY, 'gen_kernel': 4})
    with pytest.raises(GanimeError, match='discriminator layers'): CycleGAN(**{**TINY, 'disc_layers': 4})
    with pytest.raises(GanimeError, match='divisible by 4'): CycleGAN(**{**TINY, 'size': 30})
    with pytest.raises(GanimeError, match='unknown GAN loss'): CycleGAN(**{**TINY, 'loss': 'nope'})
    with pytest.raises(GanimeError, match='no real/fake targets'): CycleGAN(**{**TINY, 'loss': 'wgan-gp', 'label_noise': 0.2})


# ---------------------------------------------------------------- losses
class Copy(nn.Identity):
    "A generator that returns its input."
    def encode(self, x): return x
    def decode(self, x): return x


def test_cycle_loss_is_zero_for_identity_generators():
    m = tiny()
    a, b = torch.rand(3, 3, 32, 32) * 2 - 1, torch.rand(3, 3, 32, 32) * 2 - 1
    _, parts, _, _ = m.generator_loss(a, b)
    assert parts['cycle'] > 0.05 and parts['identity'] > 0.05  # random generators do not return their input
    m.models['g_ab'], m.models['g_ba'] = Copy(), Copy()
    total, parts, (fake_b, fake_a), _ = m.generator_loss(a, b)
    assert parts['cycle'].item() == 0 and parts['identity'].item() == 0
    assert torch.equal(fake_b, a) and torch.equal(fake_a, b)
    assert torch.isclose(total, parts['g_adv'])  # only the adversarial term is left


def test_cycle_loss_weights():
    "The weights scale the unweighted parts into the total."
    m = tiny(cycle_weight=3.0, identity_weight=0.5, embed_weight=2.0)
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    total, p, _, _ = m.generator_loss(a, b)
    assert set(p) == {'g_adv', 'cycle', 'identity', 'g_embed'}
    expected = p['g_adv'] + 3 * p['cycle'] + 0.5 * p['identity'] + 2 * p['g_embed']
    assert torch.isclose(total, expected)
    assert 'identity' not in tiny(identity_weight=0).generator_loss(a, b)[1]


def test_label_noise_shifts_real_targets():
    "With label noise, least squares pulls real scores to targets in [1 - noise, 1]: the loss of a score of 1 is no longer 0."
    m = tiny(label_noise=0.2)
    torch.manual_seed(0)
    ones, zeros = torch.ones(10000), torch.zeros(10000)
    loss = m.gan_loss.d_loss(noisy_real(ones, 0.2), zeros)
    # E[(u)^2]/2 for u ~ U(0, 0.2) is 0.2²/6
    assert abs(loss.item() - 0.2 ** 2 / 6) < 2e-3


# ---------------------------------------------------------------- image pool
def numbered(i, n=2):
    "A batch of n one-pixel images whose values identify them: i*10 + j."
    return torch.tensor([i * 10.0 + j for j in range(n)]).view(n, 1, 1, 1)


def test_image_pool_off_and_filling():
    x = torch.randn(4, 3, 8, 8)
    assert torch.equal(ImagePool(0)(x), x)
    pool = ImagePool(6)
    assert torch.equal(pool(numbered(0)), numbered(0)) and torch.equal(pool(numbered(1)), numbered(1))
    assert pool.count == 4
    assert torch.equal(pool(numbered(2, 3)), numbered(2, 3))  # 2 more fill it; the third passes through or swaps
    assert pool.count == 6


def test_image_pool_returns_the_expected_mix():
    torch.manual_seed(0)
    pool, seen, old, returned_old = ImagePool(10), set(), 0, []
    for i in range(5):  # fill it: 10 images, all passed through
        assert torch.equal(pool(numbered(i)), numbered(i))
        seen |= set(numbered(i).flatten().tolist())
    total = 0
    for i in range(5, 1005):
        batch = numbered(i)
        out = pool(batch)
        for got, new in zip(out.flatten().tolist(), batch.flatten().tolist()):
            total += 1
            if got != new:
                old += 1
                assert got in seen  # history: an image given to the pool earlier
                returned_old.append(got)
        seen |= set(batch.flatten().tolist())
    assert abs(old / total - 0.5) < 0.04, old / total  # half new, half history
    assert len(returned_old) == len(set(returned_old))  # a stored image leaves the pool when it is returned
    assert sorted(pool.images.flatten().tolist()) != sorted(range(10))  # the pool's contents changed


def test_image_pool_state_round_trip():
    torch.manual_seed(1)
    pool = ImagePool(4)
    for i in range(6): pool(numbered(i))
    copy = ImagePool(4)
    copy.load_state_dict(pool.state_dict())
    rng = torch.get_rng_state()
    a = [pool(numbered(i)) for i in range(6, 20)]
    torch.set_rng_state(rng)
    b = [copy(numbered(i)) for i in range(6, 20)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    with pytest.raises(GanimeError, match='holds 4 images'): ImagePool(5).load_state_dict(pool.state_dict())


# ---------------------------------------------------------------- data
def save_toy(folder, domain, n, size=40):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n): toy_face(i, domain, size)[0].save(folder / f'{domain}{i}.png')


def test_domain_sources(tmp_path):
    assert domain_sources('toy') == ('toy-photo', 'toy')
    assert domain_sources('toy:50') == ('toy-photo:50', 'toy:50')
    assert domain_sources('huggan/selfie2anime') == ('huggan/selfie2anime:imageA', 'huggan/selfie2anime:imageB')
    assert domain_sources('hf:huggan/selfie2anime') == ('huggan/selfie2anime:imageA', 'huggan/selfie2anime:imageB')
    assert domain_sources('toy-photo:10,toy:20') == ('toy-photo:10', 'toy:20')
    save_toy(tmp_path / 'set' / 'trainA', 'photo', 2)
    save_toy(tmp_path / 'set' / 'trainB', 'anime', 2)
    assert domain_sources(str(tmp_path / 'set')) == (str(tmp_path / 'set/trainA'), str(tmp_path / 'set/trainB'))
    assert domain_sources(str(tmp_path)) == (str(tmp_path / 'set/trainA'), str(tmp_path / 'set/trainB'))  # one level down
    with zipfile.ZipFile(tmp_path / 'pair.zip', 'w') as z:
        for p in (tmp_path / 'set').rglob('*.png'): z.write(p, f'selfie2anime/{p.parent.name}/{p.name}')
    zp = str(tmp_path / 'pair.zip')
    assert domain_sources(zp) == (f'{zp}:trainA', f'{zp}:trainB')
    with pytest.raises(DataError, match='CycleGAN needs two'): domain_sources(str(tmp_path / 'set' / 'trainA'))
    with pytest.raises(DataError, match='CycleGAN needs two'): domain_sources('toy-photo')
    with pytest.raises(DataError, match='no such folder'): domain_sources(str(tmp_path / 'missing'))
    with pytest.raises(DataError, match='exactly two'): domain_sources('toy,toy,toy')
    (tmp_path / 'notes.txt').write_text('hi')
    with pytest.raises(DataError, match='not a zip'): domain_sources(str(tmp_path / 'notes.txt'))


def test_unpaired_batches_from_a_zip(tmp_path):
    save_toy(tmp_path / 'trainA', 'photo', 12)
    save_toy(tmp_path / 'trainB', 'anime', 20)
    with zipfile.ZipFile(tmp_path / 'pair.zip', 'w') as z:
        for p in tmp_path.rglob('*.png'): z.write(p, f'{p.parent.name}/{p.name}')
    data = unpaired_batches(str(tmp_path / 'pair.zip'), size=32, batch_size=4)
    assert len(data) == 3  # the smaller domain (12 images) sets the epoch
    batches = list(data)
    assert len(batches) == 3 and all(a.shape == b.shape == (4, 3, 32, 32) for a, b in batches)
    a, b = data.fixed_batch(5)
    assert a.shape == b.shape == (5, 3, 32, 32)
    assert (a.mean((1, 2, 3)) != b.mean((1, 2, 3))).all()  # two different domains
    first = torch.cat([a for a, _ in data])
    data.set_epoch(1)
    assert not torch.equal(first, torch.cat([a for a, _ in data]))  # each epoch reshuffles


# ---------------------------------------------------------------- training: decay, resume
def test_learning_rate_decays_in_the_second_half():
    class Record(Callback):
        order = 5
        def __init__(self): self.lrs = []
        def before_step(self, learn): self.lrs.append([g['lr'] for o in learn.opts.values() for g in o.param_groups])
    m, rec = tiny(lr=1e-3), Record()
    Learner(m, unpaired_batches('toy:16', 32, 4), cbs=[rec], device='cpu').fit(4)  # 16 steps
    lrs = [l[0] for l in rec.lrs]
    assert all(len(set(l)) == 1 for l in rec.lrs)  # generators and discriminators share the schedule
    assert lrs[:8] == [1e-3] * 8
    assert all(x > y for x, y in zip(lrs[8:], lrs[9:])) and 0 < lrs[-1] < 2e-4
    assert decay_factor(75, 100) == 0.5 and decay_factor(10, 100, start=0.0) == 0.9


def test_resume_continues_identically(tmp_path):
    "A run interrupted in its second epoch and resumed ends like a run that never stopped: weights, image pools, lr decay."
    class Crash(Callback):
        def after_step(self, learn):
            if learn.step == 6: raise KeyboardInterrupt  # in the middle of epoch 2 of 3 (4 steps each)
    def run(folder, resume=False, crash=False):
        m = tiny(pool_size=6, label_noise=0.1, embed_weight=1.0, ema=0.9)
        cbs = [CheckpointCB(folder / 'checkpoint.pt', resume=resume), *([Crash()] if crash else [])]
        learn = Learner(m, unpaired_batches('toy:16', 32, 4), cbs=cbs, device='cpu', seed=3)
        try: learn.fit(3)
        except KeyboardInterrupt: assert learn.epochs_done == 1
        return m
    straight = run(tmp_path / 'a')
    run(tmp_path / 'b', crash=True)
    resumed = run(tmp_path / 'b', resume=True)
    for (k, p), q in zip(straight.models.state_dict().items(), resumed.models.state_dict().values()):
        assert torch.equal(p, q) if torch.is_tensor(p) else p == q, k  # weights, and the averages' update counts
    assert straight.models['g_ab_ema'].updates == 12
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad(): assert torch.equal(straight.translate(x), straight.models['g_ab_ema'].eval()(x))  # translations come from the average
    for k in ('a', 'b'):
        assert straight.pools[k].count == resumed.pools[k].count == 6
        assert torch.equal(straight.pools[k].images, resumed.pools[k].images)



def test_wgan_loss_clips_both_critics_with_the_shared_clipping(monkeypatch):
    "With the plain Wasserstein loss, each step clips d_a and d_b (not the embedding discriminator) with gan.clip_weights."
    from ganime_nb import cyclegan, gan
    clipped = []
    def recording_clip(module, clip=gan.WGAN_CLIP):
        clipped.append(module)
        gan.clip_weights(module, clip)
    monkeypatch.setattr(cyclegan, 'clip_weights', recording_clip)
    m = tiny(loss='wgan', lr=1e-2, embed_weight=1.0)
    Learner(m, unpaired_batches('toy:8', 32, 4), cbs=[], device='cpu').fit(1)  # 2 steps
    assert clipped == [m.models['d_a'], m.models['d_b']] * 2
    for k in ('d_a', 'd_b'):
        weights = torch.cat([p.detach().flatten() for p in m.models[k].parameters()])
        assert weights.abs().max() <= gan.WGAN_CLIP + 1e-7 and (weights.abs() > 0.0099).any()
    assert max(p.detach().abs().max() for p in m.models['d_embed'].parameters()) > gan.WGAN_CLIP
    assert list(m.configure_optimizers()) == ['generator', 'discriminator']  # the GANs' names

def test_diffaugment_reaches_every_discriminator_input_and_rejects_unknown_names(monkeypatch):
    "With augment on, both discriminators see augmented images (translations in the generators' update; reals and pooled translations in theirs)."
    from ganime_nb import cyclegan
    seen = []
    original = cyclegan.diff_augment
    monkeypatch.setattr(cyclegan, 'diff_augment', lambda x, spec: seen.append((x.requires_grad, spec)) or original(x, spec))
    m = tiny(augment='color,translation')
    Learner(m, unpaired_batches('toy:8', 32, 4), cbs=[], device='cpu').fit(1)  # 2 steps
    spec = 'color,translation'
    assert seen == [(True, spec), (True, spec), (False, spec), (False, spec), (False, spec), (False, spec)] * 2
    seen.clear()
    Learner(tiny(), unpaired_batches('toy:8', 32, 4), cbs=[], device='cpu').fit(1)
    assert seen and all(spec == '' for _, spec in seen)  # off by default: an empty spec, which changes nothing
    with pytest.raises(GanimeError, match="unknown augmentation 'mirror'"): tiny(augment='mirror')
    assert cli.main(['train', 'cyclegan', '--data', 'toy:8', '--epochs', '1', '--augment', 'zoom']) == 2

# ---------------------------------------------------------------- command line
def image_folder(folder):
    "Toy photos of several sizes and modes, a corrupt JPEG, an empty PNG, a text file, and a subfolder."
    folder.mkdir()
    toy_face(0, 'photo', 64)[0].save(folder / 'photo1.jpg')
    toy_face(1, 'photo', 64)[0].resize((90, 50)).save(folder / 'wide.png')
    toy_face(2, 'photo', 64)[0].convert('L').save(folder / 'grey.jpg')
    toy_face(3, 'photo', 64)[0].convert('RGBA').save(folder / 'alpha.png')
    (folder / 'sub').mkdir()
    toy_face(4, 'photo', 64)[0].save(folder / 'sub' / 'deep.webp')
    (folder / 'broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 this is not really a jpeg')
    (folder / 'empty.png').write_bytes(b'')
    (folder / 'notes.txt').write_text('not an image')


def test_train_and_translate_from_the_command_line(ganime):
    save_toy(ganime.cwd / 'photos', 'photo', 8)
    save_toy(ganime.cwd / 'anime', 'anime', 8)
    ganime('train', 'cyclegan', '--data', 'photos,anime', '--size', '32', '--width', '4', '--res-blocks', '1',
           '--disc-width', '4', '--disc-layers', '2', '--epochs', '1', '--batch-size', '4', '--samples', '16',
           '--out', 'run', '--device', 'cpu', check=0)
    assert (ganime.cwd / 'run' / 'checkpoint.pt').is_file() and (ganime.cwd / 'run' / 'samples' / 'epoch_001.png').is_file()
    image_folder(ganime.cwd / 'in')
    proc = ganime('translate', 'run/checkpoint.pt', '--input', 'in', '--out', 'out', '--device', 'cpu', check=0)
    out = ganime.cwd / 'out'
    assert sorted(str(p.relative_to(out)) for p in out.rglob('*.png')) == ['alpha.png', 'grey.png', 'photo1.png', 'sub/deep.png', 'wide.png']
    for p in out.rglob('*.png'):
        with Image.open(p) as img: assert img.size == (32, 32) and img.mode == 'RGB'
    assert 'translated 5 images (a2b)' in proc.stdout
    assert 'skipped 2 unreadable' in proc.stdout and 'broken.jpg (unreadable)' in proc.stdout and 'empty.png (empty)' in proc.stdout
    assert 'ignored 1 file' in proc.stdout
    # b2a of one file, in-process, gives a different picture than a2b
    report = translate_folder(ganime.cwd / 'run/checkpoint.pt', ganime.cwd / 'in/photo1.jpg',
                              ganime.cwd / 'back', direction='b2a', device='cpu')
    assert [p.name for p in report.written] == ['photo1.png']
    a2b, b2a = (pil_to_tensor(Image.open(p)).float() for p in (out / 'photo1.png', ganime.cwd / 'back/photo1.png'))
    assert (a2b - b2a).abs().mean() > 1


def test_translate_errors(tmp_path, capsys):
    m = tiny()
    ckpt = tmp_path / 'cg.pt'
    Learner(m, unpaired_batches('toy:8', 32, 4), cbs=[CheckpointCB(ckpt)], device='cpu').fit(1)
    def run(*args):
        code = cli.main(['translate', *map(str, args)])
        return code, capsys.readouterr().err
    code, err = run(ckpt, '--input', tmp_path / 'nothing', '--out', tmp_path / 'o')
    assert code == 2 and 'no such folder or file' in err
    (tmp_path / 'bad').mkdir()
    (tmp_path / 'bad' / 'x.jpg').write_bytes(b'garbage')
    code, err = run(ckpt, '--input', tmp_path / 'bad', '--out', tmp_path / 'o')
    assert code == 2 and 'no readable images' in err and '1 unreadable' in err
    (tmp_path / 'text').mkdir()
    (tmp_path / 'text' / 'a.txt').write_text('x')
    code, err = run(ckpt, '--input', tmp_path / 'text', '--out', tmp_path / 'o')
    assert code == 2 and 'no readable images' in err and '.png' in err
    code, err = run(tmp_path / 'missing.pt', '--input', tmp_path / 'bad', '--out', tmp_path / 'o')
    assert code == 2 and 'no checkpoint' in err
    code, err = run(ckpt, '--input', tmp_path / 'bad', '--out', tmp_path / 'o', '--direction', 'sideways')
    assert code == 2 and 'invalid choice' in err
    # a checkpoint of another method
    from ganime_nb.ae import Autoencoder
    from ganime_nb.data import Batches
    seed_everything(0)
    Learner(Autoencoder(size=32, latent=8, width=4), Batches(toy_faces(8, 32).images, 4), cbs=[CheckpointCB(tmp_path / 'ae.pt')], device='cpu').fit(1)
    code, err = run(tmp_path / 'ae.pt', '--input', tmp_path / 'bad', '--out', tmp_path / 'o')
    assert code == 2 and 'holds a ae model, not a CycleGAN' in err
    # sampling from noise is not what a CycleGAN does
    code = cli.main(['sample', str(ckpt), '--out', str(tmp_path / 's.png')])
    assert code == 2 and 'ganime translate' in capsys.readouterr().err


def test_translate_batches_matches_one_batch_in_any_chunking():
    "Many uint8 images translate in chunks to what one batch gives (eval mode: no batch statistics), as floats on the CPU."
    seed_everything(0)
    m = tiny()
    photos = toy_faces(10, 32, 'photo').images
    whole = m.translate(photos.float() / 127.5 - 1, 'a2b')
    for batch_size in (3, 10, 64):
        chunked = m.translate_batches(photos, 'a2b', batch_size)
        assert chunked.shape == (10, 3, 32, 32) and chunked.dtype == torch.float32 and chunked.device.type == 'cpu'
        torch.testing.assert_close(chunked, whole)
    assert not torch.allclose(m.translate_batches(photos, 'b2a'), whole)  # the other generator
    with pytest.raises(GanimeError, match='direction must be a2b or b2a'): m.translate_batches(photos, 'x')


# ---------------------------------------------------------------- U-GAT-IT's additions
def test_attention_networks_and_the_weighted_losses():
    "With attention, all four networks are U-GAT-IT's, the attention classifier's loss joins with its weight, and the discriminators score its logits too."
    from ganime_nb.cyclegan import AttentionDiscriminator, AttentionGenerator, attention_loss
    m = tiny(attention=True, cam_weight=7.0, identity_weight=0)
    assert [type(m.models[k]) for k in ('g_ab', 'g_ba', 'd_a', 'd_b')] == [AttentionGenerator] * 2 + [AttentionDiscriminator] * 2
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    total, p, (fake_b, fake_a), _ = m.generator_loss(a, b)
    assert set(p) == {'g_adv', 'cycle', 'identity', 'cam'} and fake_b.shape == a.shape  # the identity pass runs for the classifier
    assert torch.isclose(total, p['g_adv'] + 10 * p['cycle'] + 7 * p['cam'])  # identity weight 0: logged, not added
    own, other = m.models['g_ab'](a, with_logits=True)[1], m.models['g_ab'](b, with_logits=True)[1]
    g_ba_own, g_ba_other = m.models['g_ba'](b, with_logits=True)[1], m.models['g_ba'](a, with_logits=True)[1]
    assert torch.isclose(p['cam'], attention_loss(own, other) + attention_loss(g_ba_own, g_ba_other))
    confident = torch.tensor([[20., 20.]])
    assert attention_loss(confident, -confident) < 1e-6  # sure, and right
    assert abs(attention_loss(-confident, confident).item() - 40) < 1e-3  # sure and wrong: about 20 nats for each domain's mean
    _, d_parts = m.discriminator_loss(a, b, fake_a, fake_b)
    d_b = m.models['d_b']
    (real_scores, real_logits), (fake_scores, fake_logits) = d_b(b), d_b(fake_b.detach())
    lsgan = m.gan_loss
    expected = 0.5 * lsgan.d_loss(real_scores, fake_scores) + 0.5 * lsgan.d_loss(real_logits, fake_logits)
    assert torch.isclose(d_parts['d_b'], expected)
    with pytest.raises(GanimeError, match='attention scores its logits'): tiny(attention=True, loss='wgan-gp')


def test_a_global_discriminator_sees_the_whole_image_and_joins_both_losses():
    from ganime_nb.cyclegan import patch_size
    m = tiny(global_disc=True)
    assert m.global_layers == 3 and patch_size(m.global_layers) >= 32  # 32×32 images
    assert m.judges('a') == [m.models['d_a'], m.models['d_a_global']] and m.judges('b') == [m.models['d_b'], m.models['d_b_global']]
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    _, p, (fake_b, fake_a), _ = m.generator_loss(a, b)
    g = m.gan_loss.g_loss
    expected = sum(g(m.models[k](x)) for k, x in (('d_b', fake_b), ('d_b_global', fake_b), ('d_a', fake_a), ('d_a_global', fake_a)))
    assert torch.isclose(p['g_adv'], expected)
    learn = Learner(m, unpaired_batches('toy:8', 32, 4), cbs=[], device='cpu').fit(1)
    assert all(torch.isfinite(torch.tensor(v)).all() for v in learn.history['d_a'])


def test_attention_run_resumes_identically(tmp_path):
    "U-GAT-IT's options with a kill in epoch 2 and a resume end like a run that never stopped."
    class Crash(Callback):
        def after_step(self, learn):
            if learn.step == 6: raise KeyboardInterrupt
    def run(folder, resume=False, crash=False):
        m = tiny(attention=True, global_disc=True, ema=0.9)
        learn = Learner(m, unpaired_batches('toy:16', 32, 4), cbs=[CheckpointCB(folder / 'checkpoint.pt', resume=resume), *([Crash()] if crash else [])], device='cpu', seed=3)
        try: learn.fit(3)
        except KeyboardInterrupt: pass
        return m
    straight = run(tmp_path / 'a')
    run(tmp_path / 'b', crash=True)
    resumed = run(tmp_path / 'b', resume=True)
    for (k, p), q in zip(straight.models.state_dict().items(), resumed.models.state_dict().values()):
        assert torch.equal(p, q) if torch.is_tensor(p) else p == q, k


# ---------------------------------------------------------------- CUT
def test_cut_trains_one_way_from_the_command_line_and_resumes_identically(ganime, tmp_path):
    "CUT: one generator and one discriminator, photo -> anime only; a kill in epoch 2 and a resume end like a straight run."
    from ganime_nb.cyclegan import CUT, load_cyclegan
    common = ['train', 'cut', '--data', 'toy:16', '--size', '32', '--width', '4', '--res-blocks', '2', '--disc-width', '4',
              '--disc-layers', '2', '--patches', '32', '--batch-size', '4', '--device', 'cpu', '--samples', '4',
              '--decay-start', '1']  # a constant learning rate: a run planned for 1 epoch is then the first epoch of one planned for 2
    ganime(*common, '--epochs', '2', '--out', 'straight', check=0)
    ganime(*common, '--epochs', '1', '--out', 'split', check=0)
    ganime('train', 'cut', '--epochs', '2', '--resume', '--out', 'split', '--device', 'cpu', '--samples', '4', check=0)
    a, b = (load_cyclegan(ganime.cwd / d / 'checkpoint.pt', 'cpu') for d in ('straight', 'split'))
    assert isinstance(a, CUT) and set(a.models) == {'g_ab', 'd_b', 'nce_heads', 'g_ab_ema'}  # toy defaults average the weights
    for (k, p), q in zip(a.models.state_dict().items(), b.models.state_dict().values()):
        assert torch.equal(p, q) if torch.is_tensor(p) else p == q, k
    back = ganime('translate', 'straight/checkpoint.pt', '--input', 'straight/samples', '--out', 'x', '--direction', 'b2a', check=2)
    assert 'translates one way' in back.stderr


def test_the_selfie2anime_table_is_made_from_the_recorded_rows(tmp_path):
    "bench_selfie2anime.py --table prints one Markdown row per selfie2anime record, in order, and skips other benchmarks' rows."
    import json, subprocess, sys
    from pathlib import Path
    record = tmp_path / 'results.jsonl'
    rows = [dict(bench='selfie2anime', name='old', what='64×64', epochs=10, minutes=15.2, detected_translations=0.576,
                 fid_translations=5.0739, round_trip=0.1597, toy_hair_kept=0.375),
            dict(bench='gan', name='not this one'),
            dict(bench='selfie2anime', name='CUT', what='one way', epochs=10, minutes=14, detected_translations=0.726,
                 fid_translations=10.08, toy_hair_kept=0.32)]
    record.write_text(''.join(json.dumps(r) + '\n' for r in rows))
    script = Path(__file__).resolve().parents[1] / 'bench' / 'bench_selfie2anime.py'
    out = subprocess.run([sys.executable, str(script), '--table', '--record', str(record)], capture_output=True, text=True, check=True).stdout
    lines = out.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith('| candidate | what changes |')
    assert lines[2] == '| old | 64×64 | 10 | 15 | 57.6% | 5.07 | 0.160 | 38% |'
    assert lines[3] == '| CUT | one way | 10 | 14 | 72.6% | 10.08 | – | 32% |'  # a one-way model has no round trip
