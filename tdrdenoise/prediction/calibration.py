"""Level calibration: give back part of the observation where the network is
measurably worse than the noise.

The network predicts each pixel mostly from its neighbours. Where the image holds
structure that is rare in the training crops (the peaks of stars, strong magnetic
fields) that prediction is pulled toward the bulk of the image: on HST NGC 1365 the
student lowers pixels 6-20 noise sigmas above the background by 0.6-1.4 sigma on
average, and there it is worse than the noisy image itself (``benchmarks/`` and
docs/benchmarks.rst, fourth round). BM3D, which uses the pixel itself, is not.

:func:`level_weights` measures this on the image being denoised, without any clean
reference. Pixels are grouped by their denoised level ``L`` (bins of
:data:`LEVEL_EDGES` noise sigmas on either side of the median). In each bin the
combination ``d + w (y - d)`` of the denoised value ``d`` and the observation ``y``
with the smallest expected squared error is

    w = max(0, 1 - s² / mean((y - d)²)),

where ``s²`` is the noise variance in the bin (the error of ``d`` and the noise are
independent, so ``mean((y - d)²)`` is ``s²`` plus the squared error of ``d``). ``s²``
is measured from the image: the variance of ``y - d`` in the bulk (``|L| < 1``, where
the network is good, so a slight overestimate), scaled by the ratio of the variance
of neighbour differences of ``y - d`` in the bin to that in the bulk. That
scaling follows noise that grows with the signal (Poisson) and keeps correlated
noise in its own units; the sharp residual of a biased peak raises it too, which
errs toward keeping the denoised value. Where the network is as good as elsewhere,
``w`` is zero and nothing changes.
"""
import numpy as np

__all__ = []

#: Bin edges of the denoised level, in noise sigmas from the median, mirrored for
#: negative values; the bulk (|L| < 1) is the reference and is never changed.
LEVEL_EDGES = (1, 2, 3, 4, 5, 6, 8, 10, 14, 20, 30, 50, 100, 200)

#: Pixels a level bin needs for its weight to be measured: sparser bins are merged
#: with the next one outward (the last with the one inward).
MIN_BIN_PIXELS = 50
#: Pairs of neighbours within a bin that its noise estimate needs; bins with fewer
#: keep the denoised values.
MIN_BIN_PAIRS = 20


def _merge_sparse_bins(index, use):
    """Relabel, in place, the level bins of ``index`` (where ``use``) so that each
    holds at least :data:`MIN_BIN_PIXELS` pixels."""
    n = len(LEVEL_EDGES)
    counts = np.bincount(index[use].astype(np.intp) + n, minlength=2 * n + 1)
    lut = np.arange(-n, n + 1, dtype=np.int8)
    for sign in (1, -1):
        group, total, last = None, 0, None
        for k in range(1, n + 1):
            if group is None:
                group, total = k, 0
            lut[sign * k + n] = sign * group
            total += counts[sign * k + n]
            if total >= MIN_BIN_PIXELS:
                last, group = group, None
        if group is not None and last is not None:  # a sparse tail joins the bin inside
            for k in range(group, n + 1):
                lut[sign * k + n] = sign * last
    index[use] = lut[index[use].astype(np.intp) + n]


#: The label of pixels that are not used (int8).
_UNUSED = np.int8(-128)


def _pair_differences(index, r, outer):
    """Labels and differences of the pairs of horizontal, then vertical, neighbours
    that share a level bin: all the bins' but the bulk's (``outer``), or the bulk's
    (the labels are then None: all zero)."""
    keys, diffs = [], []
    for a, b, ra, rb in ((index[:, :-1], index[:, 1:], r[:, :-1], r[:, 1:]),
                         (index[:-1], index[1:], r[:-1], r[1:])):
        pair = a == b
        pair &= (a != 0) & (a != _UNUSED) if outer else (a == 0)
        if outer:
            keys.append(a[pair])
        diffs.append(rb[pair] - ra[pair])
    return (np.concatenate(keys) if outer else None), np.concatenate(diffs)


def _spread(diffs):
    """Standard deviation of neighbour differences (NaN if too few).

    A variance, not a robust spread: the weights need the noise variance, and a robust
    spread such as the MAD misjudges noise that is not Gaussian (clipped at the ends
    of the range, for example) in proportion to the variance.
    """
    if diffs.size < MIN_BIN_PAIRS:
        return np.nan
    return float(np.std(diffs, dtype=np.float64))


def level_weights(y, d, use, scale=1.0):
    """Per-pixel weights ``w`` of the observation and the noise ``s`` of each bin.

    Parameters
    ----------
    y, d : ndarray
        The observation and the denoised image (same unit, same shape).
    use : ndarray of bool
        Pixels whose denoised values replace the observation: the only ones
        measured and changed.
    scale : float, optional
        The noise sigma in the unit of ``y`` that defines the level bins.

    Returns
    -------
    w, s : ndarray
        ``w`` in [0, 1] (zero outside ``use`` and wherever nothing was measured) and
        the noise sigma of each pixel's bin (zero where ``w`` is zero), float32.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.prediction.calibration import level_weights
    >>> rng = np.random.default_rng(0)
    >>> truth = np.zeros((200, 200)); truth[50:150, 50:150] = 8.0
    >>> y = truth + rng.normal(size=truth.shape)
    >>> d = np.where(truth > 0, 6.0, 0.0)  # a denoiser that pulls the plateau down
    >>> w, s = level_weights(y, d, np.ones(y.shape, bool))
    >>> round(float(w[100, 100]), 1), float(w[10, 10])
    (0.8, 0.0)
    """
    y = np.asarray(y, np.float32)
    d = np.asarray(d, np.float32)
    with np.errstate(invalid="ignore"):
        use = np.asarray(use, bool) & np.isfinite(y) & np.isfinite(d)
    nothing = (np.zeros(y.shape, np.float32), np.zeros(y.shape, np.float32))
    if use.sum() < MIN_BIN_PIXELS or not scale > 0:
        return nothing
    with np.errstate(invalid="ignore"):
        level = (d - np.float32(np.median(d[use]))) / np.float32(scale)
        # bin 0 is the bulk; bins 1.. count outward on the positive side, -1.. negative
        size = np.abs(level)
        index = np.zeros(level.shape, np.int8)
        for edge in LEVEL_EDGES:  # the number of edges at or below |level|
            index += size >= edge
        del size
        index *= np.sign(level).astype(np.int8)
    del level
    _merge_sparse_bins(index, use)
    index[~use] = _UNUSED
    r = np.where(use, y - d, np.float32(0))
    bulk = index == 0
    if bulk.sum() < MIN_BIN_PIXELS:
        return nothing
    bulk_var = float(np.mean(np.square(r[bulk], dtype=np.float64)))
    del bulk
    bulk_spread = _spread(_pair_differences(index, r, outer=False)[1])
    if not (bulk_spread > 0 and bulk_var > 0):
        return nothing
    # the other bins hold few pixels: gather them (and their pairs) once
    outer = use & (index != 0)
    labels, values = index[outer], r[outer]
    del outer
    keys, diffs = _pair_differences(index, r, outer=True)
    weight = np.zeros(256, np.float32)  # by the label's byte (int8 viewed as uint8)
    noise = np.zeros(256, np.float32)
    for k in np.unique(labels):
        mine = values[labels == k]
        if mine.size < MIN_BIN_PIXELS:
            continue
        spread = _spread(diffs[keys == k])
        if not np.isfinite(spread):
            continue
        noise_var = bulk_var * (spread / bulk_spread) ** 2
        mean_sq = float(np.mean(np.square(mine, dtype=np.float64)))
        if mean_sq <= noise_var:
            continue
        byte = int(k) & 0xFF
        weight[byte], noise[byte] = 1.0 - noise_var / mean_sq, np.sqrt(noise_var)
    if not weight.any():
        return nothing
    code = index.view(np.uint8)
    return weight[code], noise[code]


def calibrate(y, mean, std, use, scale=1.0):
    """``mean`` and ``std`` after level calibration (:func:`level_weights`).

    The calibrated value is ``mean + w (y - mean)``; its uncertainty combines the
    two: ``sqrt(((1 - w) std)² + (w s)²)``. New arrays of the dtypes of ``mean``
    and ``std`` are returned; the inputs are not changed.
    """
    w, s = level_weights(y, mean, use, scale)
    mean, std = np.array(mean, copy=True), np.array(std, copy=True)
    changed = w > 0
    if changed.any():
        wc = w[changed].astype(np.float64)
        m = mean[changed].astype(np.float64)
        mean[changed] = m + wc * (np.asarray(y)[changed] - m)
        std[changed] = np.hypot((1.0 - wc) * std[changed], wc * s[changed])
    return mean, std
