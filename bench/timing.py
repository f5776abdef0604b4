"What the benchmark scripts share: timing training steps through the `Learner`, and enough images to time them on."
import math, time

import torch

from ganime_nb.learner import Callback, CancelFit


class StepTimer(Callback):
    "Time `steps` training steps after `warmup` steps (compilation, cuDNN autotuning), then stop the fit."
    order = 100
    def __init__(self, warmup:int, steps:int): self.warmup, self.steps, self.seconds = warmup, steps, None
    def _sync(self, learn):
        if learn.device.type == 'cuda': torch.cuda.synchronize(learn.device)
    def before_step(self, learn):
        if learn.step == self.warmup: self._sync(learn); self.start = time.perf_counter()
    def after_step(self, learn):
        if learn.step == self.warmup + self.steps:
            self._sync(learn)
            self.seconds = time.perf_counter() - self.start
            raise CancelFit


def tile(images:torch.Tensor, n:int) -> torch.Tensor:
    "`n` images, repeating `images` as often as needed (the content does not matter for speed)."
    return images.repeat(math.ceil(n / len(images)), 1, 1, 1)[:n]
