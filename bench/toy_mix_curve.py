"""How a GAN's hair-colour mix on toy faces moves during its toy run: the curve behind one number of the closing summary.

    python bench/toy_mix_curve.py dcgan                                  # its toy defaults, as `ganime train dcgan --data toy`
    python bench/toy_mix_curve.py dcgan --seed 1 --set epochs=100 loss=hinge   # other seeds, other options
    python bench/toy_mix_curve.py resgan --every 5 --set data=toy:8192 epochs=20  # more distinct toy faces

The run is `ganime train METHOD --data toy` with the options `--set` changes (method options, or the run options
data, epochs and batch_size), through the same `train`. Every `--every` epochs and after the last, 512 samples of G
and 512 of the moving average of its weights (the same fixed noise each time) are sorted into the eight toy hair
colours, and the total-variation distance of each mix from the real one is printed: the toy target is at most 0.15.
One closing number can be a lucky or unlucky moment of a curve that still moves; this shows which.
"""
import argparse, sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from ganime_nb.core import GanimeError, machine_name, seed_everything
from ganime_nb.learner import Callback, eval_mode, get_method
from ganime_nb.run import train
from ganime_nb.gan import GAN
from ganime_nb.cli import MIX_SAMPLES, method_options
from ganime_nb.run import method_config
from ganime_nb.probes import hair_colour_distance, hair_colours

RUN_OPTIONS = ('data', 'epochs', 'batch_size') # what --set may change besides the method's options


class HairColourMixCB(Callback):
    "Every `every` epochs and after the last: the mix distance of G's and its average's samples from fixed noise."
    order = 90
    def __init__(self, every:int): self.every, self.rows = every, []
    def after_epoch(self, learn):
        if not learn.epoch_is_due(self.every): return
        method = learn.method
        with torch.no_grad(), eval_mode(method.models):
            noise = method.noise(MIX_SAMPLES, torch.Generator().manual_seed(0))
            samples = {name: network(noise) for name, network in (('G', method.G), ('average', method.sampler))}
        row = {name: hair_colour_distance(hair_colours(images)) for name, images in samples.items()}  # read from the pixels
        self.rows.append((learn.epochs_done, row))
        print(f"mix after epoch {learn.epochs_done}: G {row['G']:.3f}, average {row['average']:.3f}", flush=True)


def parse_settings(pairs:list, cls) -> tuple: # (method options, run options)
    "NAME=VALUE pairs as typed values: the method's options (typed by its signature) and the run options."
    types = {name: typ for name, (typ, _, _) in method_options(cls).items()} | dict(data=str, epochs=int, batch_size=int)
    method, run = {}, {}
    for pair in pairs:
        name, sep, value = pair.partition('=')
        if not sep or name not in types: raise GanimeError(f'--set takes NAME=VALUE with NAME one of: {", ".join(types)}; got {pair!r}')
        try: typed = value.lower() in ('1', 'true', 'yes') if types[name] is bool else types[name](value)
        except ValueError: raise GanimeError(f'--set {name} needs a value of type {types[name].__name__}; got {value!r}') from None
        (run if name in RUN_OPTIONS else method)[name] = typed
    return method, run


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('method', help='a GAN: dcgan, wgan, wgan-gp or resgan')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--every', type=int, default=10, help='epochs between measurements (default: 10)')
    p.add_argument('--set', nargs='*', default=[], metavar='NAME=VALUE', help='options that differ from the toy defaults')
    args = p.parse_args(argv)
    try:
        cls = get_method(args.method)
        if not issubclass(cls, GAN): raise GanimeError(f'{args.method} is not a GAN: give dcgan, wgan, wgan-gp or resgan')
        given, run = parse_settings(args.set, cls)
    except GanimeError as e: p.error(str(e))
    print(f'{machine_name()}; {cls.name} toy defaults' + (f' with {" ".join(args.set)}' if args.set else '') + f', seed {args.seed}')
    seed_everything(args.seed)
    method = cls(**method_config(cls, run.get('data', 'toy'), given))
    train(method, seed=args.seed, cbs=[HairColourMixCB(args.every)], **{'data': 'toy', **run})


if __name__ == '__main__': main()
