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
the network is good, so a slight overestimate), scaled by the squared ratio of the
neighbour-difference spread of ``y - d`` in the bin to that in the bulk. That
scaling follows noise that grows with the signal (Poisson) and keeps correlated
noise in its own units; the sharp residual of a biased peak raises it too, which
errs toward keeping the denoised value. Where the network is as good as elsewhere,
``w`` is zero and nothing changes.
"""
import numpy as np
from astropy.stats import mad_std

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


def _difference_spread(r, pairs_x, pairs_y):
    """Neighbour-difference spread of ``r`` over the given pairs (NaN if too few)."""
    d = np.concatenate([r[:, 1:][pairs_x] - r[:, :-1][pairs_x],
                        r[1:][pairs_y] - r[:-1][pairs_y]])
    if d.size < MIN_BIN_PAIRS:
        return np.nan
    return float(mad_std(d))


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
    >>> from tdrdenoise._calibration import level_weights
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
    w = np.zeros(y.shape, np.float32)
    s = np.zeros(y.shape, np.float32)
    if use.sum() < MIN_BIN_PIXELS or not scale > 0:
        return w, s
    level = (d - np.float32(np.median(d[use]))) / np.float32(scale)
    r = np.where(use, y - d, np.float32(0))
    # bin 0 is the bulk; bins 1.. count outward on the positive side, -1.. negative
    index = np.digitize(np.abs(level), np.asarray(LEVEL_EDGES, np.float32)).astype(np.int8)
    index *= np.sign(level).astype(np.int8)
    del level
    _merge_sparse_bins(index, use)
    index[~use] = np.iinfo(np.int8).min
    same_x = (index[:, 1:] == index[:, :-1])
    same_y = (index[1:] == index[:-1])

    def pairs(k):
        return same_x & (index[:, :-1] == k), same_y & (index[:-1] == k)

    bulk = index == 0
    if bulk.sum() < MIN_BIN_PIXELS:
        return w, s
    bulk_var = float(np.mean(np.square(r[bulk], dtype=np.float64)))
    bulk_spread = _difference_spread(r, *pairs(0))
    if not (bulk_spread > 0 and bulk_var > 0):
        return w, s
    for k in np.unique(index[use]):
        if k == 0:
            continue
        where = index == k
        if where.sum() < MIN_BIN_PIXELS:
            continue
        spread = _difference_spread(r, *pairs(k))
        if not np.isfinite(spread):
            continue
        noise_var = bulk_var * (spread / bulk_spread) ** 2
        mean_sq = float(np.mean(np.square(r[where], dtype=np.float64)))
        if mean_sq <= noise_var:
            continue
        w[where] = 1.0 - noise_var / mean_sq
        s[where] = np.sqrt(noise_var)
    return w, s


def calibrate(y, mean, std, use, scale=1.0):
    """``mean`` and ``std`` after level calibration (:func:`level_weights`).

    The calibrated value is ``mean + w (y - mean)``; its uncertainty combines the
    two: ``sqrt(((1 - w) std)² + (w s)²)``. Arrays come back as new float64 arrays.
    """
    w, s = level_weights(y, mean, use, scale)
    w64 = w.astype(np.float64)
    mean = np.asarray(mean, np.float64)
    out = mean + w64 * (np.where(w > 0, y, mean) - mean)
    std = np.asarray(std, np.float64)
    std = np.where(w > 0, np.hypot((1.0 - w64) * std, w64 * s), std)
    return out, std
