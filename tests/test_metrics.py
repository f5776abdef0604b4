"Tests of ganime_nb.metrics, probes and evaluate: the Fréchet distance, FID/KID, precision/recall, toy coverage, the detector, the callback and `ganime eval`."
import json, math, os
from pathlib import Path

import pytest
import torch

from ganime_nb.core import GanimeError, seed_everything
from ganime_nb.data import toy_faces, Batches
from ganime_nb.toy import TOY_ATTRIBUTES
from ganime_nb.learner import Learner
from ganime_nb.ae import Autoencoder
import ganime_nb.metrics as metrics
import ganime_nb.probes as probes
from ganime_nb.metrics import extract_features, feature_extractor, fid_kid, frechet_distance, gaussian_stats, precision_recall, rgb_uint8
from ganime_nb.probes import (COVERAGE_ATTRIBUTES, anime_face_detector, attribute_classifier, attribute_coverage, cascade_path,
                              detection_rate, predict_attributes)
from ganime_nb.evaluate import MetricsCB


@pytest.fixture(scope='module')
def tiny():
    return feature_extractor('tiny', 'cpu')


@pytest.fixture(scope='module')
def classifier_dir(tmp_path_factory):
    "A data folder holding the 64x64 toy-attribute classifier, trained once for this module."
    data_dir = tmp_path_factory.mktemp('data')
    attribute_classifier(64, data_dir=data_dir, device='cpu', verbose=False)
    return data_dir


# --- Fréchet distance, FID, KID -------------------------------------------------------------------------------------

@pytest.mark.parametrize('dim', [3, 16, 64])
def test_frechet_distance_matches_scipy_sqrtm(dim):
    scipy_linalg = pytest.importorskip('scipy.linalg')
    g = torch.Generator().manual_seed(dim)
    a = torch.randn(4 * dim + 10, dim, generator=g, dtype=torch.float64)
    b = torch.randn(4 * dim + 10, dim, generator=g, dtype=torch.float64) @ torch.randn(dim, dim, generator=g, dtype=torch.float64) + 0.5
    (m1, c1), (m2, c2) = gaussian_stats(a), gaussian_stats(b)
    root = scipy_linalg.sqrtm(c1.numpy() @ c2.numpy()).real
    expected = float((m1 - m2).square().sum()) + float(c1.trace() + c2.trace()) - 2 * root.trace()
    assert frechet_distance(m1, c1, m2, c2) == pytest.approx(expected, rel=1e-7)
    assert frechet_distance(m2, c2, m1, c1) == pytest.approx(expected, rel=1e-7)  # symmetric


def test_fid_of_a_set_against_itself_is_zero(tiny):
    feats = extract_features(toy_faces(64, size=32).images, tiny)  # fewer images than features: singular covariance
    assert fid_kid(feats, feats)['fid'] == pytest.approx(0, abs=1e-6)
    assert frechet_distance(*gaussian_stats(feats), *gaussian_stats(feats)) == pytest.approx(0, abs=1e-6)


def test_library_fid_agrees_with_ours_and_kid_sees_a_shift():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(400, 8, generator=g), torch.randn(400, 8, generator=g)
    same, shifted = fid_kid(a, b, kid_subset_size=100), fid_kid(a, b + 1, kid_subset_size=100)
    assert same['fid'] == pytest.approx(frechet_distance(*gaussian_stats(a), *gaussian_stats(b)), rel=1e-6)
    assert shifted['fid'] == pytest.approx(8, rel=0.1)  # mean shift of 1 in each of 8 dimensions
    assert abs(same['kid']) < 3 * same['kid_std'] + 1e-3 < shifted['kid']  # unbiased: near 0 for equal distributions
    assert math.isnan(fid_kid(a, b)['kid_std'])  # subsets as large as the sets are all alike: no spread to report


def test_rgb_uint8_rounds_and_makes_rgb():
    x = torch.tensor([-1.0, -0.999, 0.0, 0.999, 1.0]).view(1, 1, 1, 5)
    out = rgb_uint8(x)
    assert out.dtype == torch.uint8 and out.shape == (1, 3, 1, 5)
    assert out[0, 0, 0].tolist() == [0, 0, 128, 255, 255]
    with pytest.raises(GanimeError, match='expected images'): rgb_uint8(torch.zeros(2, 4, 8, 8))


def test_unknown_features_and_missing_inception_weights(monkeypatch, tmp_path):
    with pytest.raises(GanimeError, match='unknown features'): feature_extractor('vgg')
    pytest.importorskip('torch_fidelity')
    monkeypatch.setenv('GANIME_INCEPTION_WEIGHTS', str(tmp_path / 'absent.pth'))
    with pytest.raises(GanimeError, match='no Inception weights file'): feature_extractor('inception')


def test_inception_features_from_a_local_weights_file(monkeypatch, tmp_path):
    fe = pytest.importorskip('torch_fidelity.feature_extractor_inceptionv3')
    # The real weights cannot be downloaded in tests: save randomly initialised weights of the same network instead.
    with monkeypatch.context() as m:
        m.setattr(fe, 'load_state_dict_from_url', lambda *a, **k: None)
        m.setattr(fe.FeatureExtractorInceptionV3, 'load_state_dict', lambda self, *a, **k: None)
        torch.manual_seed(0)
        random_net = fe.FeatureExtractorInceptionV3('inception-v3-compat', ['2048'])
    torch.save(random_net.state_dict(), tmp_path / 'inception.pth')
    monkeypatch.setenv('GANIME_INCEPTION_WEIGHTS', str(tmp_path / 'inception.pth'))
    images = toy_faces(1, size=32).images
    feats = extract_features(images, feature_extractor('inception', 'cpu'))
    assert feats.shape == (1, 2048) and torch.isfinite(feats).all() and feats.abs().max() > 0
    antialiased = extract_features(images, feature_extractor(metrics.InceptionFeatures(antialias=True), 'cpu'))
    assert antialiased.shape == (1, 2048)
    assert (antialiased - feats).abs().max() > 1e-3 * feats.abs().max()  # another resize, other features


# --- precision and recall -------------------------------------------------------------------------------------------

def test_precision_recall_by_hand():
    real, fake = torch.tensor([[0.], [1.], [2.], [3.]]), torch.tensor([[0.5], [10.]])
    assert precision_recall(real, fake, k=1) == (0.5, 1.0)


def test_precision_recall_identical_collapsed_and_disjoint():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(10, 2, generator=g) * 100
    def draw(modes): return (centres[modes, None] + torch.randn(len(modes), 100, 2, generator=g)).flatten(0, 1)
    real = draw(list(range(10)))  # 100 points around each of 10 well-separated centres
    assert precision_recall(real, real) == (1.0, 1.0)
    precision, recall = precision_recall(real, draw(list(range(10))))  # a fresh draw: both high
    assert precision > 0.9 and recall > 0.9
    precision, recall = precision_recall(real, draw([0]))  # all samples from one mode: mode collapse
    assert precision > 0.9 and 0.08 < recall <= 0.1
    assert precision_recall(real, real + 1000) == (0.0, 0.0)
    with pytest.raises(GanimeError, match='more than 3 images'): precision_recall(real, real[:3])


# --- toy coverage ---------------------------------------------------------------------------------------------------

def test_attribute_coverage_counts():
    names = ('eye_size', 'mouth')
    reference = {'eye_size': torch.tensor([0, 0, 1, 1, 1]), 'mouth': torch.tensor([0, 1, 0, 2, 2])}  # 4 combinations
    samples = {'eye_size': torch.tensor([0, 0, 0, 1, 1]), 'mouth': torch.tensor([0, 0, 1, 0, 1])}  # (1,1) is not in the reference
    cov = attribute_coverage(samples, reference, names)
    assert (cov['covered'], cov['combinations']) == (3, 4) and cov['coverage'] == 0.75
    assert cov['evenness'] == pytest.approx(0.75)  # counts 2, 1, 1 over 4 combinations: H = 1.5 bits of 2
    assert cov['outside'] == pytest.approx(0.2)
    collapsed = {'eye_size': torch.tensor([1, 1, 1]), 'mouth': torch.tensor([2, 2, 2])}
    assert attribute_coverage(collapsed, reference, names) == dict(coverage=0.25, evenness=0.0, covered=1, combinations=4, outside=0.0)
    with pytest.raises(GanimeError, match="unknown toy attribute 'hat'"): attribute_coverage(samples, reference, ('hat',))


def test_attribute_classifier_is_trained_once_and_reads_toy_faces(classifier_dir):
    cached = list((classifier_dir / 'models').glob('toy-attributes-anime-64-*.pt'))
    assert len(cached) == 1
    classifier = attribute_classifier(64, data_dir=classifier_dir, device='cpu')  # loads, does not train again
    faces = toy_faces(300, seed=123)
    predicted = predict_attributes(faces.images, classifier)
    for name in COVERAGE_ATTRIBUTES:
        assert (predicted[name] == faces.attrs[name]).float().mean() > 0.85, name
    real = attribute_coverage(predicted, toy_faces(300, seed=124).attrs)
    blonde = faces.attrs['hair_colour'] == TOY_ATTRIBUTES['hair_colour'].index('blonde')
    collapsed = attribute_coverage(predict_attributes(faces.images[blonde], classifier), toy_faces(300, seed=124).attrs)
    assert collapsed['coverage'] < 0.2 < 0.6 < real['coverage']


# --- anime-face detector --------------------------------------------------------------------------------------------

def test_cascade_errors_are_clear(monkeypatch, tmp_path):
    monkeypatch.setenv('GANIME_ANIME_CASCADE', str(tmp_path / 'absent.xml'))
    with pytest.raises(GanimeError, match='no anime-face cascade file'): cascade_path()
    monkeypatch.delenv('GANIME_ANIME_CASCADE')
    monkeypatch.setenv('GANIME_DATA', str(tmp_path))
    monkeypatch.setattr(probes, 'CASCADE_URL', 'http://127.0.0.1:9/lbpcascade_animeface.xml')  # nothing listens there
    with pytest.raises(GanimeError, match='could not download the anime-face cascade'): cascade_path()
    assert list(tmp_path.rglob('*.xml*')) == []  # no half-written file left behind
    served = tmp_path / 'served.cascade'
    served.write_text('<opencv_storage/>')
    monkeypatch.setattr(probes, 'CASCADE_URL', served.as_uri())  # a download that works
    assert cascade_path().read_text() == '<opencv_storage/>' and cascade_path().parent == tmp_path / 'models'
    assert [p.name for p in (tmp_path / 'models').iterdir()] == ['lbpcascade_animeface.xml']  # no temporary file left


def test_detection_rate_on_toy_faces_and_noise():
    pytest.importorskip('cv2')
    path = os.environ.get('GANIME_ANIME_CASCADE')
    if not path or not Path(path).is_file(): pytest.skip('set GANIME_ANIME_CASCADE to lbpcascade_animeface.xml to test the detector')
    detector = anime_face_detector()
    noise = torch.randint(0, 256, (50, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert detection_rate(toy_faces(50).images, detector) > 0.6
    assert detection_rate(noise, detector) < 0.05


# --- the callback and the command line ------------------------------------------------------------------------------

def _fit_ae(cbs, epochs=3):
    seed_everything(0)
    ae = Autoencoder(size=32, width=8, latent=16)
    return Learner(ae, Batches(toy_faces(96, size=32).images, 32), cbs=cbs, device='cpu').fit(epochs)


def test_metrics_callback_measures_on_schedule_without_changing_training(tmp_path):
    cb = MetricsCB(toy_faces(64, size=32, seed=1).images, n=48, every=2, features='tiny', folder=tmp_path, kid_subsets=10)
    learn = _fit_ae([cb])
    assert [r['epoch'] for r in cb.records] == [2, 3]  # every 2 epochs, and after the last
    for r in cb.records:
        assert (r['samples'], r['reference']) == (48, 64)
        assert r['fid'] > 0 and 0 <= r['precision'] <= 1 and 0 <= r['recall'] <= 1
    lines = [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
    assert [l['epoch'] for l in lines] == [2, 3] and lines[-1]['fid'] == pytest.approx(cb.records[-1]['fid'])
    assert learn.history == _fit_ae([]).history  # measuring draws no random numbers from the training run


def test_ganime_eval_on_an_autoencoder_checkpoint(ganime, classifier_dir):
    env = {'GANIME_DATA': str(classifier_dir)}  # holds the trained attribute classifier
    ganime('train', 'ae', '--data', 'toy:256', '--epochs', '1', '--width', '8', '--latent', '32', '--batch-size', '32',
           '--samples', '4', '--device', 'cpu', '--out', 'run', env=env, check=0)
    proc = ganime('eval', 'run/checkpoint.pt', '--features', 'tiny', '-n', '200', '--device', 'cpu', '--json', 'm.json', env=env, check=0)
    lines = proc.stdout.splitlines()  # the first use of a classifier size adds a line of its own before these
    title = lines.index('run/checkpoint.pt (ae, 1 epoch): 200 samples vs 200 real images from toy:256; tiny features')
    header = lines[title + 1].split()
    assert header == ['FID', 'KID', 'precision', 'recall', 'coverage', 'evenness']
    saved = json.loads((ganime.cwd / 'm.json').read_text())
    assert (saved['samples'], saved['reference'], saved['data']) == (200, 200, 'toy:256')
    assert saved['fid'] > 0 and 0 < saved['combinations'] <= 192 and 0 <= saved['coverage'] <= 1


def test_ganime_eval_bad_input(capsys, tmp_path, monkeypatch):
    from ganime_nb.cli import main
    monkeypatch.chdir(tmp_path)
    for args, message in [(('eval', 'missing.pt', '--features', 'tiny'), 'no checkpoint at missing.pt'),
                          (('eval', 'missing.pt', '--features', 'vgg'), "invalid choice: 'vgg'"),
                          (('eval', 'missing.pt', '-n', '1'), '-n and --reference must be at least 2')]:
        assert main(args) == 2
        err = capsys.readouterr().err
        assert message in err and err.count('\n') == 1, err


def test_coverage_needs_toy_faces_with_attributes():
    from ganime_nb.evaluate import Evaluator
    images = toy_faces(8, size=32).images
    with pytest.raises(GanimeError, match='coverage needs a reference of toy faces'): Evaluator(images, 'tiny', coverage=True, device='cpu')
    assert not Evaluator(images, 'tiny', device='cpu').coverage  # plain images: no coverage by default
    assert Evaluator(toy_faces(8, size=32), 'tiny', device='cpu').coverage  # toy faces know their attributes
