"""How anime a selfie → anime model's translations are: the four measures of the selfie → anime issue, for one checkpoint.

    python bench/bench_selfie2anime.py runs/selfie2anime-cpu/checkpoint.pt --data data/selfie2anime-128.zip
    python bench/bench_selfie2anime.py CKPT --data ... --name candC --what 'learning rate 5e-4'   # a row of a search
    python bench/bench_selfie2anime.py --panel nbs/images/selfie2anime_search.png CKPT...         # the portrait through each
    python bench/bench_selfie2anime.py --table                                                    # the recorded rows as a table

The measures are `ganime_nb.cyclegan.translation_measures`, judged at 64×64 whatever size the model works at (smaller
translations are upsampled; the anime faces are read at 64×64), on selfie2anime's training selfies (trainA) and anime faces (trainB):
- anime-face detector (nagadomi's cascade; GANIME_ANIME_CASCADE or --cascade names the file): the share of images in
  which it finds an anime face, for 1,000 selfies and 1,000 anime faces as they are, for every selfie's translation,
  and for 512 toy photos and their translations;
- FID on the course's offline features (`TinyFeatures`): translations and selfies as they are, against the anime faces;
- the round trip: mean |F(G(a)) − a| over the selfies, in [-1, 1] units;
- toy photos whose translation keeps their hair colour (the toy run's measure; chance 12%).
It prints one line per measure and appends them to --record as a JSON line, with the checkpoint, the date, the
machine, and the run's epochs, steps and minutes of training (from the log.jsonl beside the checkpoint).
The figures show only the public-domain portrait (scikit-image's `astronaut`), never a dataset image.
"""
import argparse, json, sys, time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from ganime_nb.callbacks import training_minutes
from ganime_nb.core import machine_name, pick_device
from ganime_nb.cyclegan import astronaut_portrait, at_judged_size, load_cyclegan, translation_measures, unpaired_batches
from ganime_nb.data import save_images
from ganime_nb.learner import eval_mode, read_checkpoint
from ganime_nb.probes import anime_face_detector


def run_facts(checkpoint:Path) -> dict:
    "Epochs, steps and minutes of training of the run that wrote `checkpoint` (minutes: the sum of its epochs' times in log.jsonl)."
    state, minutes = read_checkpoint(checkpoint), training_minutes(checkpoint.parent)
    return dict(epochs=state['epochs_done'], steps=state['step'], minutes=round(minutes, 1) if minutes else None)


def portrait_panel(checkpoints:list, out:str):
    "The portrait, then its translation by each checkpoint, in one row at 64×64."
    models = [load_cyclegan(c, pick_device('cpu')) for c in checkpoints]
    photo = astronaut_portrait(64)
    translations = [m.translate(astronaut_portrait(m.size), 'a2b') for m in models]
    save_images([at_judged_size(x) for x in [photo, *translations]], out, nrow=1 + len(models))
    print(f'{out}: the portrait, then ' + ', '.join(str(c) for c in checkpoints))


def results_table(record:str) -> str:
    "The selfie2anime rows of the JSON-lines file `record` as a Markdown table, in the order they were recorded."
    rows = [r for r in map(json.loads, Path(record).read_text().splitlines()) if r.get('bench') == 'selfie2anime']
    trip = lambda r: f"{r['round_trip']:.3f}" if 'round_trip' in r else '–'
    return '\n'.join(['| candidate | what changes | epochs | minutes | anime face found | FID to anime | round trip | toy hair kept |',
                      '|---|---|---|---|---|---|---|---|',
                      *(f"| {r['name']} | {r['what']} | {r['epochs']} | {r['minutes']:.0f} | {r['detected_translations']:.1%} | "
                        f"{r['fid_translations']:.2f} | {trip(r)} | {r['toy_hair_kept']:.0%} |" for r in rows)])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('checkpoint', nargs='*')
    p.add_argument('--data', help='selfie2anime: a zip or folder with trainA/ and trainB/ (needed unless --panel)')
    p.add_argument('--cascade', help="the anime-face detector's cascade file (default: $GANIME_ANIME_CASCADE)")
    p.add_argument('--figure', help='also save the portrait, its translation and its round trip to this PNG')
    p.add_argument('--panel', help='only draw the portrait through every checkpoint given, into this PNG')
    p.add_argument('--table', action='store_true', help="print --record's rows as a Markdown table, and nothing else")
    p.add_argument('--name', help="the run's name in a search table (default: its folder's name)")
    p.add_argument('--what', help='what the run changes, for the search table')
    p.add_argument('--record', default='bench/results.jsonl', help='append the figures here as one JSON line')
    args = p.parse_args()
    if args.table: return print(results_table(args.record))
    if args.panel: return portrait_panel(args.checkpoint, args.panel)
    if len(args.checkpoint) != 1 or not args.data: p.error('measuring takes one checkpoint and --data')
    checkpoint = Path(args.checkpoint[0])
    start = time.time()
    model = load_cyclegan(checkpoint, pick_device('cpu'))
    with torch.no_grad(), eval_mode(model.models):
        real = unpaired_batches(args.data, size=model.size, batch_size=16, device='cpu')
        anime = real.b.images if model.size == 64 else unpaired_batches(args.data, size=64, batch_size=16, device='cpu').b.images
        results = translation_measures(model, real, anime_face_detector(args.cascade), anime)
        if args.figure:
            photo = astronaut_portrait(model.size)
            anime = model.translate(photo, 'a2b')
            shown = (photo, anime) if 'g_ba' not in model.models else (photo, anime, model.translate(anime, 'b2a'))
            save_images([at_judged_size(x) for x in shown], args.figure, nrow=len(shown))
    print(f'{checkpoint}: {results["photos"]:,} selfies, judged at 64×64 ({time.time() - start:.0f} s)')
    print(f'anime face found: selfies {results["detected_photos"]:.1%}, anime faces {results["detected_anime"]:.1%}, '
          f'translations {results["detected_translations"]:.1%}; toy photos {results["detected_toy_photos"]:.1%}, '
          f'their translations {results["detected_toy_translations"]:.1%}')
    print(f'FID (offline features) against the anime faces: translations {results["fid_translations"]:.2f}, selfies {results["fid_photos"]:.2f}')
    trip = f'{results["round_trip"]:.3f}' if 'round_trip' in results else 'none (one-way model)'
    print(f'round trip |F(G(a)) - a|: {trip}; toy photos keeping their hair colour: {results["toy_hair_kept"]:.0%}')
    if args.record:
        record = dict(bench='selfie2anime', date=time.strftime('%Y-%m-%d'), machine=machine_name(), checkpoint=str(checkpoint),
                      name=args.name or checkpoint.parent.name, what=args.what, **run_facts(checkpoint),
                      **{k: round(v, 4) for k, v in results.items()})
        with open(args.record, 'a') as f: f.write(json.dumps(record) + '\n')


if __name__ == '__main__': main()
