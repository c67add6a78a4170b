"""The fast path: a deterministic student distilled from the Monte-Carlo ensemble.

After :meth:`TDRModel.fit <tdrdenoise.TDRModel.fit>` the teacher (the Self2Self
network) predicts its training image once with the full ensemble; a
:class:`~tdrdenoise.network.StudentUNet` then learns, on random crops of that image
with their eight flips/transposes, to map the noisy image to the ensemble mean and the
logarithm of the ensemble standard deviation. One student pass then stands for the
``n_predictions`` masked and dropout-randomised passes of the teacher.
"""
import time

import numpy as np
import torch

from ..prediction.ensemble import shuffled_ensemble
from ..prediction.normalization import replaced_pixels
from .loop import crop_positions, draw_batch, run
from .._progress import progress_bar
from .self2self import check_weights
from .network import StudentUNet

__all__ = []

#: Teacher passes whose mean and spread the student learns (as many as the default
#: ensemble's).
TEACHER_PASSES = 16
#: Images larger than this many pixels get their targets on :data:`TARGET_WINDOWS`
#: windows of :data:`TARGET_CORE` pixels (plus :data:`TARGET_MARGIN` of context on
#: each side) instead of whole: a 4096 x 4096 image would cost the teacher's full
#: ensemble over it (a quarter of an hour on two cores).
TARGET_BUDGET = 640 * 640
TARGET_WINDOWS = 4
TARGET_CORE = 256
TARGET_MARGIN = 64
#: Side of the student's training crops and crops per step.
STUDENT_PATCH = 128
STUDENT_BATCH = 4
#: Peak learning rate of the student's cosine schedule: 3e-3 gave +0.1 dB of
#: Noise2Noise gain on HST over 1e-3 at 500 steps (the teacher's rate), +0.8 dB on the
#: demo's 100 steps.
DISTIL_LEARNING_RATE = 3e-3
#: Weight of the log-std term in the student's loss (the mean term has weight 1).
STD_WEIGHT = 0.1
#: Floor of the teacher's std (in noise sigmas) before its logarithm is taken.
_STD_FLOOR = 1e-3


def teacher_targets(model, z, valid, *, n_predictions, seed, tile_size, progress=None):
    """The teacher ensemble's mean and std of a normalised image, in noise sigmas
    (float32), on the pixel-shuffled sub-images the teacher works on."""
    return shuffled_ensemble(model.network, z, valid, stride=model.stride,
                             n_predictions=n_predictions, seed=seed,
                             keep_prob=model.keep_prob, device=model.device,
                             tile_size=tile_size, progress=progress)


def _windowed_targets(model, z, valid, target, rng, *, n_predictions, tile_size,
                      progress):
    """Teacher targets over the whole image, or over a few windows of a large one:
    (mean, std, target, region), ``target`` cut down to ``region``, the windows'
    cores (everywhere for a whole image)."""
    seed = int(rng.integers(2**62))
    h, w = z.shape
    if h * w <= TARGET_BUDGET:
        mean, std = teacher_targets(model, z, valid, n_predictions=n_predictions,
                                    seed=seed, tile_size=tile_size, progress=progress)
        return mean, std, target, np.ones(z.shape, bool)
    c, m = TARGET_CORE, TARGET_MARGIN
    cells = [(y, x) for y in range(0, max(h - c, 0) + 1, c)
             for x in range(0, max(w - c, 0) + 1, c)]
    order = rng.permutation(len(cells))
    picked = [cells[i] for i in order
              if target[cells[i][0]:cells[i][0] + c, cells[i][1]:cells[i][1] + c].mean()
              >= 0.5][:TARGET_WINDOWS]
    if not picked:  # sparse valid pixels: the cells with the most of them
        picked = sorted(cells, key=lambda yx: -target[yx[0]:yx[0] + c,
                                                      yx[1]:yx[1] + c].sum())[:TARGET_WINDOWS]
    mean = np.zeros(z.shape, np.float32)
    std = np.ones(z.shape, np.float32)
    inside = np.zeros(z.shape, bool)
    for k, (y, x) in enumerate(picked):
        ya, xa, yb, xb = max(y - m, 0), max(x - m, 0), min(y + c + m, h), min(x + c + m, w)
        wm, ws = teacher_targets(model, z[ya:yb, xa:xb], valid[ya:yb, xa:xb],
                                 n_predictions=n_predictions, seed=(seed + 97 * k) % 2**62,
                                 tile_size=tile_size, progress=progress)
        core = (slice(y - ya, y - ya + c), slice(x - xa, x - xa + c))
        mean[y:y + c, x:x + c] = wm[core]
        std[y:y + c, x:x + c] = ws[core]
        inside[y:y + c, x:x + c] = True
    return mean, std, target & inside, inside


def distil(model, z, valid, target=None, *, steps, seed, width,
           learning_rate=DISTIL_LEARNING_RATE,
           n_predictions=TEACHER_PASSES, tile_size=1024, progress=None):
    """Train a :class:`~tdrdenoise.network.StudentUNet` to reproduce ``model``'s
    ensemble on the normalised training image ``z``.

    ``valid`` flags the pixels both networks see; ``target`` those whose ensemble
    values the student learns (default ``valid``): the pixels whose values the
    network's output replaces. Crops are drawn where ``valid | target``.

    Returns
    -------
    student : StudentUNet
        In evaluation mode, on the model's device.
    record : dict
        The history record of the distillation.
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    target = valid if target is None else target
    mean, std, target, region = _windowed_targets(
        model, z, valid, target, rng, n_predictions=n_predictions, tile_size=tile_size,
        progress=progress)
    log_std = np.log(np.maximum(np.nan_to_num(std, nan=_STD_FLOOR), _STD_FLOOR))
    p = STUDENT_PATCH
    arrays = [np.where(valid, z, 0).astype(np.float32), valid, mean, log_std, target,
              (valid | target) & region]
    h, w = z.shape
    if h < p or w < p:  # small images: pad once with invalid pixels
        pad = ((0, max(p - h, 0)), (0, max(p - w, 0)))
        arrays = [np.pad(a, pad) for a in arrays]
    tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays[:5]]
    ys, xs = crop_positions(arrays[5], p)
    where = np.stack([np.zeros_like(ys), ys, xs], 1)
    device = model.device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(int(rng.integers(2**62)))
        student = StudentUNet(width).to(device)
    student.train()
    opt = torch.optim.Adam(student.parameters(), lr=learning_rate)
    losses = []
    bar = progress_bar(steps, "tdrdenoise distil", progress)

    def loss_of(batch):
        x, v, m, s, w = batch
        w = w.float()
        out = student(x, v.float())
        err = (out[:, :1] - m) ** 2 + STD_WEIGHT * (out[:, 1:] - s) ** 2
        return (err * w).sum() / w.sum().clamp(min=1)

    try:
        run(opt, loss_of, steps=steps, learning_rate=learning_rate, losses=losses,
            what="distillation", after_step=lambda done: bar.update(),
            draw=lambda: draw_batch(rng, [tensors], where, p, STUDENT_BATCH, device))
    finally:
        bar.close()
    check_weights(student, "the distilled student")
    student.eval()
    record = {"action": "distil", "steps": int(steps), "seed": seed,
              "learning_rate": learning_rate, "patch_size": p, "batch_size": STUDENT_BATCH,
              "teacher_passes": int(n_predictions), "width": int(width),
              "seconds": round(time.perf_counter() - t0, 3),
              "final_loss": float(np.mean(losses[-50:])) if losses else None}
    return student, record


def distil_model(model, z, seen, impulse, *, steps, seed, progress=None):
    """Distil ``model``'s student on the output of :meth:`TDRModel.network_input
    <tdrdenoise.TDRModel.network_input>` and attach it (:meth:`TDRModel.distil
    <tdrdenoise.TDRModel.distil>`); the record goes into the last ``fit`` record of
    the history, or is appended."""
    # the student learns the pixels whose values its output will replace (for pure
    # impulse noise the impulses alone, whose inpainting is then all that matters)
    target = replaced_pixels(model.normalization, seen, impulse)
    student, record = distil(model, z, seen, target, steps=steps, seed=seed,
                             width=model.student_width, progress=progress)
    model.student = student
    if model.history and model.history[-1].get("action") == "fit" \
            and "distil" not in model.history[-1]:
        model.history[-1]["distil"] = record
    else:
        model.history.append(record)
    return model
