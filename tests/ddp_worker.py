"""Train a small batch-norm-free autoencoder under torchrun (or alone) and save each process's final weights.

    torchrun --standalone --nproc_per_node=2 tests/ddp_worker.py OUT    # two processes, gloo on the CPU
    python tests/ddp_worker.py OUT                                      # one process, same global batch
    torchrun --standalone --nproc_per_node=2 tests/ddp_worker.py OUT wgan-gp   # a GAN: n_critic steps, penalty

Batch norm is left out on purpose: with it, each process normalises over its own slice of the batch, which is a
real (documented) difference from one process; SyncBatchNorm, which removes it, needs CUDA.
"""
import sys
from pathlib import Path

import torch
from torch import nn
import torch.nn.functional as F

from ganime_nb.data import Batches, toy_faces
from ganime_nb.core import seed_everything
from ganime_nb.learner import Learner, Method
from ganime_nb.callbacks import CheckpointCB


class PlainAutoencoder(Method):
    "A tiny autoencoder without batch norm."
    name = 'plain-ae'
    def __init__(self, size:int=16, latent:int=16):
        super().__init__()
        self.size, self.latent = size, latent
        self.models['encoder'] = nn.Sequential(nn.Conv2d(3, 8, 4, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * (size // 2) ** 2, latent))
        self.models['decoder'] = nn.Sequential(nn.Linear(latent, 3 * size * size), nn.Unflatten(1, (3, size, size)), nn.Tanh())

    def configure_optimizers(self): return {'ae': torch.optim.Adam(self.models.parameters(), 1e-2)}

    def train_step(self, x, learn):
        loss = F.mse_loss(self.models['decoder'](self.models['encoder'](x)), x)
        learn.update(loss, 'ae')
        return {'mse': loss}


def make_method(name: str) -> Method:
    "The method to train: the plain autoencoder, or a tiny WGAN-GP (several critic calls and a double backward per step)."
    if name == 'plain-ae': return PlainAutoencoder()
    from ganime_nb.wgan import WGANGP
    return WGANGP(size=16, width=8, latent=8, n_critic=2)


def main(out: Path, name: str = 'plain-ae', epochs: int = 3):
    seed_everything(0)
    method = make_method(name)
    data = Batches(toy_faces(96, size=16).images, batch_size=16, seed=0)
    learn = Learner(method, data, cbs=[CheckpointCB(out / 'run' / 'checkpoint.pt')], device='cpu').fit(epochs)
    torch.save({'rank': learn.rank, 'world_size': learn.world_size, 'steps': learn.step,
                'weights': method.models.state_dict()}, out / f'weights-{learn.world_size}-{learn.rank}.pt')


if __name__ == '__main__':
    main(Path(sys.argv[1]), *sys.argv[2:3])
