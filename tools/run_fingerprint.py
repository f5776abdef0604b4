"""What each run is made of, as the command line and the lessons' `train` build it, one JSON line per run: the method's
options, the run's options, the callbacks, and hashes of the initial weights, of the random state when training starts
and of the first batch. For every method's toy defaults and with options given. A refactoring that must not change
behaviour leaves the output identical:

    python tools/run_fingerprint.py > before.jsonl   # on the old commit
    python tools/run_fingerprint.py | diff before.jsonl -   # on the new one
"""
import hashlib, json, sys, tempfile, warnings
import torch
warnings.filterwarnings('ignore')
from ganime_nb import learner as L
from ganime_nb.cli import build_parser, _method_name
from ganime_nb.learner import available_methods

class Stop(Exception): "Raised instead of training, once the run is fingerprinted."
records = []

def h(t): "A short hash of a tensor's values."; return hashlib.sha1(t.detach().float().cpu().contiguous().numpy().tobytes()).hexdigest()[:12]

def fake_fit(self, epochs):
    "Record what the run is made of instead of training it."
    w = hashlib.sha1(''.join(h(p) for m in self.method.models.values() for p in m.state_dict().values() if torch.is_tensor(p)).encode()).hexdigest()[:12]
    rng = hashlib.sha1(torch.random.get_rng_state().numpy().tobytes()).hexdigest()[:12]
    if hasattr(self.data, 'set_epoch'): self.data.set_epoch(0)
    b = next(iter(self.data))
    b = b if torch.is_tensor(b) else b[0]
    records.append(dict(config={k: repr(v) for k, v in self.method.config.items()}, run=self.run, epochs=epochs, weights=w, rng=rng, batch=h(b),
                        cbs=[(type(c).__name__, c.order) for c in self.cbs], changes=self.changes, device=str(self.device)))
    raise Stop
L.Learner.fit = fake_fit

def cli(argv):
    args = build_parser(_method_name(argv)).parse_args(argv)
    try: args.run(args)
    except Stop: pass
    return records.pop()

out = []
with tempfile.TemporaryDirectory() as tmp:
    for i, m in enumerate(available_methods()):
        out.append((m, 'toy defaults', cli(['train', m, '--out', f'{tmp}/{i}a'])))
        extra = ['--batch-size', '8', '--seed', '3', '--lr', '1e-3', '--limit', '64', '--epochs', '2', '--no-channels-last', '--minutes', '5']
        out.append((m, 'options', cli(['train', m, '--out', f'{tmp}/{i}b', *extra])))
    # the lessons' call: a built method, train() with run options
    from ganime_nb.run import train
    from ganime_nb.core import seed_everything
    from ganime_nb.dcgan import DCGAN
    from ganime_nb.cyclegan import CycleGAN
    for cls, data in ((DCGAN, 'toy:128'), (CycleGAN, None)):
        seed_everything(3); method = cls(size=32, width=8) if cls is DCGAN else cls(width=8, res_blocks=1)
        try: train(method, data=data, epochs=1, batch_size=8, seed=3, samples=4)
        except Stop: pass
        out.append((cls.__name__, 'train()', records.pop()))
for m, what, r in out: print(json.dumps(dict(method=m, what=what, **r), default=str, sort_keys=True))
