"""The one training loop of tdrdenoise: Self2Self training and the student's distillation.

Both train a network on random crops of plain arrays (a crop and one of its eight
flips/transposes per batch entry), with Adam and, by default, a cosine learning-rate
schedule down to :data:`LR_FLOOR` of the peak, and stop on a non-finite loss. What
differs, the loss, is handed in: :func:`run` draws the batches and steps the
optimizer, the caller's ``loss_of(batch)`` computes the loss.
"""
import math

import numpy as np
import torch

from ..prediction.ensemble import dihedral
from ..prediction.noise import box_sums

__all__ = ["LR_FLOOR", "crop_positions", "cosine_rate", "draw_batch", "run"]

#: Final learning rate of the cosine schedule, as a fraction of the peak.
LR_FLOOR = 0.01


def crop_positions(valid, p):
    """Top-left corners of crops with at least half of their pixels valid."""
    counts = box_sums(valid.astype(np.int64), p)
    ys, xs = np.nonzero(counts >= 0.5 * p * p)
    if ys.size == 0:
        ys, xs = np.nonzero(counts == counts.max())
    return ys, xs


def cosine_rate(peak, step, steps):
    """The learning rate of ``step`` (0-based) of ``steps``: a cosine from ``peak``
    down to ``LR_FLOOR * peak`` at the last step."""
    frac = step / max(steps - 1, 1)
    return peak * (LR_FLOOR + (1 - LR_FLOOR) * 0.5 * (1 + math.cos(math.pi * frac)))


def draw_batch(rng, images, where, p, batch_size, device):
    """A batch of random crops: for each of ``batch_size`` rows of ``where`` drawn at
    random (``(image index, y, x)``), the ``p`` x ``p`` crop at ``(y, x)`` of every
    tensor of ``images[index]``, under one random flip/transpose. Returns one
    ``(batch, 1, p, p)`` tensor per tensor of an image, on ``device``."""
    parts = [[] for _ in images[0]]
    for i in rng.integers(len(where), size=batch_size):
        k, y0, x0 = where[i]
        t = int(rng.integers(8))
        for part, a in zip(parts, images[k]):
            part.append(dihedral(a[y0:y0 + p, x0:x0 + p], t))
    return [torch.stack(part)[:, None].to(device) for part in parts]


def run(opt, loss_of, *, steps, start=0, learning_rate, schedule=True, draw, losses,
        what, hint="", after_step=None):
    """Train from ``start`` to ``steps``: per step, the cosine rate (with
    ``schedule``), a batch from ``draw()``, ``loss_of(batch)``, a check that the loss
    is finite, and an optimizer step; the loss values are appended to ``losses``.

    ``after_step(done)`` is called after each step with the number of steps done.

    Raises
    ------
    FloatingPointError
        If a loss is not finite, naming ``what`` (the loss), the step and ``hint``.
    """
    for step in range(start, steps):
        if schedule:
            lr = cosine_rate(learning_rate, step, steps)
            for group in opt.param_groups:
                group["lr"] = lr
        loss = loss_of(draw())
        value = float(loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(f"the {what} loss is {value} at step {step + 1} of "
                                     f"{steps}{hint}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(value)
        if after_step is not None:
            after_step(step + 1)
