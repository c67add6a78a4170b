"""The Monte-Carlo dropout ensemble, tiled so that any image fits in memory.

Every pass draws a new Bernoulli input mask over the whole image and new dropout
masks, and looks at the image in one of the eight flips/transposes; the mean of the
passes is the denoised image and their spread the per-pixel uncertainty.

Large images are cut into tiles whose cores do not overlap but which carry a margin
of context wider than half the network's receptive field, with tile origins on the
network's pooling grid. Each output pixel is then computed from exactly the input an
untiled pass would use, so tiles leave no seams and need no blending.
"""
import contextlib

import numpy as np
import torch

from .._progress import progress_bar

__all__ = []

#: Pooling grid of the network (2 ** number of max-pools).
GRID = 32
#: Half of the receptive field of the network (286 pixels), rounded up to the grid.
RECEPTIVE_MARGIN = 160


def _round_up(n, k=GRID):
    return -(-n // k) * k


def dihedral(x, k):
    """The k-th of the eight flips/transposes of the last two axes of ``x``."""
    if k & 4:
        x = x.transpose(-1, -2)
    if k & 1:
        x = x.flip(-1)
    if k & 2:
        x = x.flip(-2)
    return x


def dihedral_inverse(x, k):
    """Undo :func:`dihedral`."""
    if k & 2:
        x = x.flip(-2)
    if k & 1:
        x = x.flip(-1)
    if k & 4:
        x = x.transpose(-1, -2)
    return x


def pad_to_grid(z, valid):
    """Reflect-pad a 2-D image (and its valid mask) to multiples of :data:`GRID`.

    Returns the padded tensors and the slices that take the original back.
    """
    h, w = z.shape
    ph, pw = _round_up(h) - h, _round_up(w) - w
    if ph or pw:
        mode = "reflect" if (ph < h and pw < w) else "replicate"
        z = torch.nn.functional.pad(z[None, None], (0, pw, 0, ph), mode=mode)[0, 0]
        valid = torch.nn.functional.pad(valid[None, None].float(), (0, pw, 0, ph),
                                        mode=mode)[0, 0] > 0.5
    return z, valid, (slice(0, h), slice(0, w))


def tiled_apply(fn, z, m, tile_size, margin=RECEPTIVE_MARGIN, channels=None):
    """Apply ``fn(x, mask)`` to (H, W) tensors tile by tile.

    H and W must be multiples of :data:`GRID`; ``tile_size`` and ``margin`` are
    rounded up to it. With ``margin`` at least half the receptive field the result
    equals ``fn(z, m)`` up to floating-point rounding. ``fn`` returns (1, C, h, w);
    the result is (H, W) for ``channels=None`` (C = 1), else (C, H, W).
    """
    h, w = z.shape
    tile = _round_up(max(int(tile_size), GRID))
    margin = _round_up(int(margin)) if margin else 0
    if h <= tile + 2 * margin and w <= tile + 2 * margin:
        res = fn(z[None, None], m[None, None])[0]
        return res if channels else res[0]
    out = torch.empty((channels or 1, h, w), dtype=z.dtype)
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            ya, xa = max(y0 - margin, 0), max(x0 - margin, 0)
            yb, xb = min(y1 + margin, h), min(x1 + margin, w)
            res = fn(z[None, None, ya:yb, xa:xb], m[None, None, ya:yb, xa:xb])
            out[:, y0:y1, x0:x1] = res[0, :, y0 - ya:y1 - ya, x0 - xa:x1 - xa]
    return out if channels else out[0]


@contextlib.contextmanager
def inference_layout(net, device):
    """Hold ``net``'s parameters channels-last within the block on a CPU.

    oneDNN convolves channels-last tensors about twice as fast, with no reordered
    copies of the activations (measured in benchmarks/); the parameters go back to
    the contiguous layout after the block.
    """
    channels_last = torch.device(device).type == "cpu"
    if channels_last:
        net.to(memory_format=torch.channels_last)
    try:
        yield net
    finally:
        if channels_last:
            net.to(memory_format=torch.contiguous_format)


def mc_ensemble(net, z, valid, *, n_predictions, keep_prob, generator, device,
                tile_size, tta=True, progress=None):
    """Mean and standard deviation of ``n_predictions`` dropout passes.

    Parameters
    ----------
    net : SelfToSelfUNet
    z : ndarray
        Normalised image; values at invalid pixels are ignored.
    valid : ndarray of bool
        Pixels the network may see.
    generator : torch.Generator
        Source of the Bernoulli input masks (dropout uses the torch global RNG,
        which the caller seeds).

    Returns
    -------
    mean, std : ndarray (float32)
        ``std`` is NaN everywhere when ``n_predictions`` is 1.
    """
    zt = torch.from_numpy(np.where(valid, z, 0).astype(np.float32))
    vt = torch.from_numpy(np.asarray(valid))
    zt, vt, crop = pad_to_grid(zt, vt)
    total = torch.zeros(zt.shape, dtype=torch.float64)
    total_sq = torch.zeros(zt.shape, dtype=torch.float64)

    def fn(x, mask):
        out = net(x.to(device), mask.to(device))
        return out.float().cpu()

    was_training = net.training
    net.train()  # dropout on: the ensemble is over dropout masks
    bar = progress_bar(n_predictions, "tdrdenoise predict", progress)
    try:
        with inference_layout(net, device), torch.inference_mode():
            for k in range(n_predictions):
                keep = torch.rand(zt.shape, generator=generator) < keep_prob
                mask = (keep & vt).float()
                t = k % 8 if tta else 0
                pred = tiled_apply(fn, dihedral(zt, t), dihedral(mask, t), tile_size)
                pred = dihedral_inverse(pred, t).double()
                total.add_(pred)
                total_sq.addcmul_(pred, pred)
                del pred
                bar.update()
    finally:
        bar.close()
        net.train(was_training)
    mean = total / n_predictions
    if n_predictions > 1:
        var = (total_sq - n_predictions * mean * mean) / (n_predictions - 1)
        std = var.clamp(min=0).sqrt()
    else:
        std = torch.full_like(mean, float("nan"))
    return (mean[crop].numpy().astype(np.float32),
            std[crop].numpy().astype(np.float32))


def shuffle_split(a, stride):
    """The ``stride**2`` pixel-shuffled sub-images of a 2-D array (a list; ``[a]`` for
    stride 1): sub-image ``(i, j)`` holds the pixels ``a[i::stride, j::stride]``."""
    if stride == 1:
        return [a]
    return [np.ascontiguousarray(a[i::stride, j::stride])
            for i in range(stride) for j in range(stride)]


def shuffle_merge(parts, shape, stride, dtype=np.float64):
    """Undo :func:`shuffle_split`."""
    if stride == 1:
        return parts[0]
    out = np.empty(shape, dtype)
    for k, part in enumerate(parts):
        i, j = divmod(k, stride)
        out[i::stride, j::stride] = part
    return out


def seeded_ensemble(net, z, valid, *, n_predictions, seed, keep_prob, device, tile_size,
                    progress=None):
    """:func:`mc_ensemble` with its masks and dropout drawn from ``seed``, leaving the
    global torch random state as it was."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        return mc_ensemble(net, z, valid, n_predictions=n_predictions, keep_prob=keep_prob,
                           generator=gen, device=device, tile_size=tile_size,
                           progress=progress)


def shuffled_ensemble(net, z, valid, *, stride, n_predictions, seed, keep_prob, device,
                      tile_size, progress=None):
    """:func:`seeded_ensemble` over the ``stride**2`` pixel-shuffled sub-images of a
    normalised image (sub-image ``k`` seeded ``seed + k``), merged back: (mean, std)
    in noise sigmas (float32)."""
    means, stds = [], []
    for k, (zk, vk) in enumerate(zip(shuffle_split(z, stride), shuffle_split(valid, stride))):
        m, sd = seeded_ensemble(net, zk, vk, n_predictions=n_predictions,
                                seed=(seed + k) % 2**63, keep_prob=keep_prob, device=device,
                                tile_size=tile_size, progress=progress)
        means.append(m)
        stds.append(sd)
    return (shuffle_merge(means, z.shape, stride, np.float32),
            shuffle_merge(stds, z.shape, stride, np.float32))


def new_seed():
    """A random seed (recorded in the history, so that a run can be repeated)."""
    return int(np.random.SeedSequence().entropy % 2**32)
