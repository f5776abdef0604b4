"""How anime a selfie → anime CycleGAN's translations are: the four measures of the selfie → anime issue, for one checkpoint.

    python bench/bench_selfie2anime.py runs/cyclegan-cpu/checkpoint.pt --data data/selfie2anime-128.zip
    python bench/bench_selfie2anime.py CKPT --data ... --figure runs/astronaut.png   # also the portrait, photo | anime | back

Measured at 64×64 whatever size the model works at (smaller translations are upsampled), on selfie2anime's training
selfies (trainA) and anime faces (trainB):
- anime-face detector (nagadomi's cascade; GANIME_ANIME_CASCADE or --cascade names the file): the share of images in
  which it finds an anime face, for 1,000 selfies and 1,000 anime faces as they are, for every selfie's translation,
  and for 512 toy photos and their translations;
- FID on the course's offline features (`TinyFeatures`): translations and selfies as they are, against the anime faces;
- the round trip: mean |F(G(a)) − a| over the selfies, in [-1, 1] units;
- toy photos whose translation keeps their hair colour (the toy run's measure; chance 12%).
It prints one line per measure and appends them, with the command's checkpoint and date, to --record as a JSON line.
The figure shows only the public-domain portrait (scikit-image's `astronaut`), never a dataset image.
"""
import argparse, json, sys, time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from ganime_nb.core import from_uint8, machine_name, pick_device, to_uint8
from ganime_nb.cyclegan import load_cyclegan, unpaired_batches
from ganime_nb.data import save_images, toy_faces
from ganime_nb.learner import eval_mode
from ganime_nb.metrics import TinyFeatures, anime_face_detector, detection_rate, extract_features, fid_kid

JUDGED_AT = 64 # every measure looks at 64×64 images


def at_judged_size(images:torch.Tensor) -> torch.Tensor:
    "uint8 images at 64×64 (resized with antialiasing where they are another size)."
    images = to_uint8(images).cpu()
    return images if images.shape[-1] == JUDGED_AT else TF.resize(images, [JUDGED_AT, JUDGED_AT], antialias=True)


def astronaut_portrait(size:int) -> torch.Tensor:
    "NASA's public-domain portrait of Eileen Collins (scikit-image), her head and hair, as a float batch of one at `size`."
    from skimage.data import astronaut
    return from_uint8(TF.resize(torch.from_numpy(astronaut()).permute(2, 0, 1)[:, 0:220, 115:335], [size, size], antialias=True)[None])


def measure(model, data:str, detector) -> dict:
    "The issue's measures for a trained CycleGAN on the selfie2anime pairs in `data`."
    real = unpaired_batches(data, size=model.size, batch_size=16, device='cpu')
    selfies, anime = real.a.images, real.b.images
    translated = model.translate_batches(selfies, 'a2b', batch_size=100)
    one_way = 'g_ba' not in model.models  # CUT translates photos to anime only
    back = None if one_way else model.translate_batches(to_uint8(translated), 'b2a', batch_size=100)
    photos = toy_faces(512, model.size, 'photo', seed=99)
    truth, read = model.hair_colour_pairs(512)
    features = TinyFeatures(size=JUDGED_AT)
    anime_f = extract_features(at_judged_size(anime), features)
    return dict(
        detected_selfies=detection_rate(at_judged_size(selfies[:1000]), detector),
        detected_anime=detection_rate(at_judged_size(anime[:1000]), detector),
        detected_translations=detection_rate(at_judged_size(translated), detector),
        detected_toy_photos=detection_rate(at_judged_size(photos.images), detector),
        detected_toy_translations=detection_rate(at_judged_size(model.translate_batches(photos.images)), detector),
        fid_translations=fid_kid(anime_f, extract_features(at_judged_size(translated), features))['fid'],
        fid_selfies=fid_kid(anime_f, extract_features(at_judged_size(selfies), features))['fid'],
        round_trip=None if back is None else F.l1_loss(back.float().cpu(), from_uint8(selfies)).item(),
        toy_hair_kept=(read == truth).float().mean().item(),
        selfies=len(selfies))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('checkpoint')
    p.add_argument('--data', required=True, help='selfie2anime: a zip or folder with trainA/ and trainB/')
    p.add_argument('--cascade', help="the anime-face detector's cascade file (default: $GANIME_ANIME_CASCADE)")
    p.add_argument('--figure', help='also save the portrait, its translation and its round trip to this PNG')
    p.add_argument('--record', default='bench/results.jsonl', help='append the figures here as one JSON line')
    args = p.parse_args()
    if args.figure:
        try: import skimage  # noqa: F401 (the portrait ships inside scikit-image's wheel)
        except ImportError: raise SystemExit('the portrait needs scikit-image: pip install scikit-image')
    start = time.time()
    model = load_cyclegan(args.checkpoint, pick_device('cpu'))
    with torch.no_grad(), eval_mode(model.models):
        results = measure(model, args.data, anime_face_detector(args.cascade))
        if args.figure:
            photo = astronaut_portrait(model.size)
            anime = model.translate(photo, 'a2b')
            shown = (photo, anime) if 'g_ba' not in model.models else (photo, anime, model.translate(anime, 'b2a'))
            save_images([at_judged_size(x) for x in shown], args.figure, nrow=len(shown))
    print(f'{args.checkpoint}: {results["selfies"]:,} selfies, judged at {JUDGED_AT}×{JUDGED_AT} ({time.time() - start:.0f} s)')
    print(f'anime face found: selfies {results["detected_selfies"]:.1%}, anime faces {results["detected_anime"]:.1%}, '
          f'translations {results["detected_translations"]:.1%}; toy photos {results["detected_toy_photos"]:.1%}, '
          f'their translations {results["detected_toy_translations"]:.1%}')
    print(f'FID (offline features) against the anime faces: translations {results["fid_translations"]:.2f}, selfies {results["fid_selfies"]:.2f}')
    trip = 'none (one-way model)' if results['round_trip'] is None else f'{results["round_trip"]:.3f}'
    print(f'round trip |F(G(a)) - a|: {trip}; toy photos keeping their hair colour: {results["toy_hair_kept"]:.0%}')
    if args.record:
        with open(args.record, 'a') as f:
            f.write(json.dumps(dict(bench='selfie2anime', date=time.strftime('%Y-%m-%d'), machine=machine_name(),
                                    checkpoint=str(args.checkpoint), **{k: v if v is None else round(v, 4) for k, v in results.items()})) + '\n')


if __name__ == '__main__': main()
