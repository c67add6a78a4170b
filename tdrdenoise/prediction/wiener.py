"""Wiener refinement: the network's estimate as the pilot of an empirical Wiener filter.

The second step of BM3D (Dabov et al. 2007) without its block matching: every
``PATCH`` x ``PATCH`` window of the image (all of them, one pixel apart) goes to the
2-D DCT, where each coefficient of the observation is multiplied by
``P**2 / (P**2 + N)``, ``P`` the coefficient of the denoised estimate (the pilot) and
``N`` the noise variance of that coefficient; the windows are transformed back and
averaged with the weight ``1 / sum(W**2 N)`` of each (at most ``1 / mean(N)``).
Where the pilot holds structure well above the noise the observation comes back,
frequency by frequency, where it is flat the pilot stays: the network's smoothing of
fine structure is undone and its own residual noise averaged down.

The noise variance is that of the network input, which the normalisation scales to
one per pixel for white noise. With correlated noise (a pixel-shuffled model) it
differs from coefficient to coefficient and is measured on the image: the robust
variance of each coefficient of the residual (observation minus pilot) over
non-overlapping windows. Either is multiplied by :data:`NOISE_FACTOR`.

The bright pixels held out of the network (sunspots, stars, galaxy cores) have no
network estimate; given as ``held``, they are refined too, with the pilot there the
observation with every DCT coefficient below :data:`HARD_THRESHOLD` noise sigmas set
to zero (BM3D's first step without its block matching, :func:`hard_threshold`),
computed on the windows that cover them only.

With ``error=True`` :func:`refine` also returns the variance of the error of its
estimate, the ``uncertainty`` of ``tdr_denoise``: the Wiener filter's own error model.
In each window and coefficient the estimate ``G Y`` misses the signal the gain takes
away, ``(1 - G)**2 X**2``, and keeps the noise it lets through, ``G**2 N``. The
signal's power ``X**2`` is the pilot's times :data:`BIAS_FACTOR` (the pilot's power
underestimates what it smoothed), or, where the observation's coefficient is more
than :data:`STRONG_COEFFICIENT` noise variances and that is larger, the observation's
power less the noise (structure the pilot smoothed away); ``N`` is the noise table
times the local noise level (:func:`noise_profile`: noise that grows with the signal,
as Poisson noise does). A window's pixels share the mean over its coefficients, and
each pixel takes the weighted mean (the weights of the estimate) over the windows
that cover it, on a grid of every :data:`ERROR_STEP`-th window along each axis.
Measured against the truth in ``benchmarks/uncertainty.py``.
"""
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from astropy.stats import mad_std
from scipy import ndimage

from .noise import box_sums

__all__ = []

#: Side of the windows: 10-14 px gave the most on HST F555W, 16 px 0.03 dB more than
#: 12 on the synthetic frames (docs/benchmarks.rst, sixth round).
PATCH = 12
#: Factor on the noise variance in the Wiener gains. The pilot's coefficients hold
#: its own error besides the signal, so ``P**2`` overestimates the signal's power and
#: the gains let noise through; 1.25 measured best overall (HST F555W +0.07 dB,
#: synthetic sigma 0.1 +0.08 dB, correlated +0.08 dB, the MDI noise level 1.93 ->
#: 1.75 G; sigma 0.2 -0.09 dB and Poisson -0.04 dB, against 1.0).
NOISE_FACTOR = 1.25
#: Coefficients of the observation below this many noise sigmas are set to zero in
#: the pilot of held-out pixels (:func:`hard_threshold`; BM3D's first step uses 2.7).
HARD_THRESHOLD = 2.7
#: Windows a residual needs for a per-coefficient noise table (else no refinement).
MIN_WINDOWS = 64
#: Factor on the pilot's power as the power of the signal that the gains take away
#: (the error model of ``refine(..., error=True)``), for white noise and for a
#: noise table measured on the image (correlated noise): the values that make the
#: RMS error equal the RMS sigma on the synthetic frames (``benchmarks/uncertainty.py``;
#: docs/uncertainty.rst).
BIAS_FACTOR = 1.25
BIAS_FACTOR_CORRELATED = 3.0
#: A coefficient of the observation whose power exceeds this many times its noise
#: variance (4 sigmas) and the pilot's is structure the pilot smoothed away: the error
#: model takes its power less the noise as the signal's.
STRONG_COEFFICIENT = 16.0
#: The error model is computed on every ``ERROR_STEP``-th window along each axis
#: (1 in 9 windows; each pixel is still covered by at least 16): it is smooth on the
#: scale of a window, and the full grid would add half the refinement's time.
ERROR_STEP = 3
#: Level bins of :func:`noise_profile`.
PROFILE_BINS = 32
#: Pixels :func:`noise_profile` samples at most (about).
PROFILE_SAMPLE = 2 ** 20
#: Neighbour pairs a level bin of :func:`noise_profile` needs (else interpolated).
PROFILE_MIN_PAIRS = 20
#: Rows of window origins transformed at once (memory: about ``3 * 4 * ROWS * width *
#: PATCH**2`` bytes per strip, two strips per thread in flight).
ROWS = 16


def dct_matrix(k):
    """The orthonormal DCT-II matrix ``B`` of size ``k`` (``B @ x`` transforms ``x``)."""
    n = np.arange(k)
    b = np.cos(np.pi * (2 * n[None, :] + 1) * n[:, None] / (2 * k)) * np.sqrt(2.0 / k)
    b[0] /= np.sqrt(2.0)
    return b


def _dct2(windows, b):
    """2-D DCT of ``windows`` (..., k, k) with the matrix ``b`` (its transpose inverts)."""
    return b @ windows @ b.T


def noise_table(residual, valid, k=PATCH):
    """Per-coefficient noise variance of ``residual`` on ``k`` x ``k`` windows: the
    squared `~astropy.stats.mad_std` of each DCT coefficient over the non-overlapping
    windows whose pixels are all valid, or None when there are fewer than
    :data:`MIN_WINDOWS` of them."""
    h, w = residual.shape
    ny, nx = h // k, w // k
    if ny == 0 or nx == 0:
        return None
    cut = (slice(0, ny * k), slice(0, nx * k))
    r = residual[cut].reshape(ny, k, nx, k).swapaxes(1, 2).reshape(-1, k, k)
    ok = valid[cut].reshape(ny, k, nx, k).swapaxes(1, 2).reshape(-1, k * k).all(1)
    if ok.sum() < MIN_WINDOWS:
        return None
    coef = _dct2(r[ok].astype(np.float64), dct_matrix(k)).reshape(-1, k * k)
    return (mad_std(coef, axis=0) ** 2).reshape(k, k)


def refine(z, zm, valid, stride=1, k=PATCH, held=None, error=False):
    """The Wiener refinement of the pilot ``zm`` by the observation ``z`` (network units).

    Parameters
    ----------
    z, zm : ndarray
        The network input and the network's (calibrated) estimate of it.
    valid : ndarray of bool
        The pixels whose observation is used; elsewhere the pilot stands in for it,
        and the pilot is returned there.
    stride : int
        The model's pixel-shuffle stride: 1 takes white noise of unit variance,
        more measures a noise table (:func:`noise_table`).
    held : ndarray, optional
        The observations of the pixels held out of the network (bright structure:
        sunspots, stars), NaN elsewhere. They have no network estimate: their pilot
        is the observation with every DCT coefficient below :data:`HARD_THRESHOLD`
        noise sigmas set to zero (:func:`hard_threshold`, BM3D's first step without
        its block matching), and they are refined too.
    error : bool, optional
        Return the error variance of the refined estimate too (see the module
        docstring).

    Returns
    -------
    ndarray of float32
        The refined estimate; ``zm`` itself when the image is smaller than a window
        or, for ``stride`` > 1, too few windows measure the noise or it measures
        none. Pixels of ``held`` that could not be refined are NaN.
    variance : ndarray of float32
        Only with ``error``: the error variance of each refined pixel (network units
        squared), NaN where nothing was refined.
    """
    h, w = zm.shape
    held_mask = None if held is None else np.isfinite(held) & ~valid
    if held_mask is not None and held_mask.any():
        unrefined = np.where(held_mask, np.float32(np.nan), zm)
    else:
        held_mask, unrefined = None, zm
    nothing = ((unrefined, np.full(zm.shape, np.nan, np.float32)) if error
               else unrefined)
    if h < k or w < k:
        return nothing
    pilot = np.asarray(zm, np.float32)
    obs = np.where(valid, z, pilot).astype(np.float32)
    if stride == 1:
        noise = np.ones((k, k))
    else:
        noise = noise_table(obs - pilot, valid, k)
        if noise is None or not noise.max() > 0:  # nothing measured: nothing to do
            return nothing
        noise = np.maximum(noise, 1e-6 * noise.max())
    noise = noise.astype(np.float32)
    use = valid
    if held_mask is not None:
        obs = np.where(held_mask, held, obs).astype(np.float32)
        rough = hard_threshold(obs, noise, held_mask, k)
        pilot = np.where(held_mask, rough, pilot).astype(np.float32)
        use = valid | held_mask
    if not error:
        out = _filter(obs, (NOISE_FACTOR * noise).astype(np.float32), k, pilot=pilot)
        return np.where(use, out, zm)
    # the windows of the error model, and the noise level of each at its mean level
    grid = (_grid(h - k + 1), _grid(w - k + 1))
    level = np.ones((grid[0].size, grid[1].size), np.float32)
    profile = noise_profile(obs, pilot, use, absolute=stride == 1)
    if profile is not None:
        # the windows' mean levels (origin r covers r to r + k - 1: centre r + k / 2)
        means = ndimage.uniform_filter(pilot, k)[np.ix_(grid[0] + k // 2, grid[1] + k // 2)]
        level[:] = np.interp(means, *profile)
    factor = BIAS_FACTOR if stride == 1 else BIAS_FACTOR_CORRELATED
    out, var = _filter(obs, (NOISE_FACTOR * noise).astype(np.float32), k, pilot=pilot,
                       error=(noise, level, factor, grid))
    return np.where(use, out, zm), np.where(use, var, np.float32(np.nan))


def _grid(n):
    """Window origins of the error model along an axis of ``n`` origins: every
    :data:`ERROR_STEP`-th and the last (so that every pixel has one)."""
    grid = np.arange(0, n, ERROR_STEP)
    return grid if grid[-1] == n - 1 else np.append(grid, n - 1)


def noise_profile(obs, pilot, use, absolute=True):
    """The noise variance as a function of the pilot's level.

    The pixels of ``use`` fall in :data:`PROFILE_BINS` bins of equal counts of the
    pilot's value; in each the variance of the differences of horizontal and vertical
    neighbours of the residual ``obs - pilot`` that share the bin, halved, is the
    noise variance (on about :data:`PROFILE_SAMPLE` pixels: every few rows and
    columns of a large image). ``absolute``: in units of the variance of white noise
    of unit variance; otherwise relative to the median bin (a noise table measured on
    the image holds the level of the bulk).

    Returns
    -------
    levels, variances : ndarray or None
        The median pilot value of the bins with :data:`PROFILE_MIN_PAIRS` pairs or
        more, increasing, and their noise variances (``np.interp(level, levels,
        variances)`` for any level), or None when no bin has enough.
    """
    n = int(use.sum())
    if n < 4 * PROFILE_BINS:
        return None
    step = max(1, int(np.sqrt(n / PROFILE_SAMPLE)))
    values = pilot[use][::step * step]
    edges = np.unique(np.quantile(values, np.linspace(0, 1, PROFILE_BINS + 1)[1:-1]))
    r = obs - pilot
    sums = np.zeros(edges.size + 1)
    counts = np.zeros(edges.size + 1)
    for rows, cols, axis in ((slice(None, None, step), slice(None), 1),
                             (slice(None), slice(None, None, step), 0)):
        sub_use, sub_r = use[rows, cols], r[rows, cols]
        index = np.digitize(pilot[rows, cols], edges)
        index[~sub_use] = -1
        a, b = ((index[:, :-1], index[:, 1:]) if axis == 1 else (index[:-1], index[1:]))
        d = np.diff(sub_r, axis=axis).astype(np.float64)
        pair = (a == b) & (a >= 0)
        sums += np.bincount(a[pair], d[pair] ** 2, minlength=edges.size + 1)
        counts += np.bincount(a[pair], minlength=edges.size + 1)
    ok = counts >= PROFILE_MIN_PAIRS
    if not ok.any():
        return None
    var = sums[ok] / counts[ok] / 2.0
    if not absolute:
        var = var / max(float(np.median(var)), 1e-30)
    # each bin at its median level
    index = np.digitize(values, edges)
    levels = np.array([np.median(values[index == i]) for i in np.nonzero(ok)[0]])
    return levels, var


def hard_threshold(obs, noise, where, k=PATCH):
    """The sliding-window DCT hard-threshold estimate of ``obs`` at the pixels
    ``where`` (float32; the observation elsewhere): every coefficient but the mean
    below :data:`HARD_THRESHOLD` times its noise sigma (``noise``: the per-coefficient
    variance table) set to zero, the windows averaged with BM3D's weights. Only the
    windows that cover a pixel of ``where`` are transformed."""
    rows = np.nonzero(where.any(axis=1))[0]
    out = _filter(obs, noise, k, rows=rows)
    return np.where(where, out, obs).astype(np.float32)


def _filter(obs, noise, k, pilot=None, rows=None, error=None):
    """Sliding ``k`` x ``k`` DCT windows of ``obs``, one pixel apart, each filtered
    and averaged with BM3D's weights: the Wiener gains of ``pilot``, or without one
    the hard threshold (:data:`HARD_THRESHOLD`); ``rows``: the image rows whose
    estimate is needed (all when None; elsewhere the result is undefined).
    ``noise``: the per-coefficient noise variance table.

    ``error`` (with a ``pilot``): ``(table, level, factor)``, the noise variance table
    of the observation, the local noise level of each window (the shape of the window
    origins) and the factor on the pilot's power; the error variance of the estimate
    (the module docstring) is returned too."""
    h, w = obs.shape
    b = dct_matrix(k).astype(np.float32)
    floor = float(noise.mean())
    view_y = np.lib.stride_tricks.sliding_window_view(obs, (k, k))
    view_p = (None if pilot is None else
              np.lib.stride_tricks.sliding_window_view(pilot, (k, k)))
    if pilot is None:
        keep = np.float32(HARD_THRESHOLD) ** 2 * noise
        keep[0, 0] = 0.0  # the window mean always passes (the flux is kept)

    def strip(r0):
        """Weighted estimates (rows, columns, k, k) and weights of the windows whose
        origins lie in rows ``r0`` to ``r0 + ROWS``."""
        yc = _dct2(np.ascontiguousarray(view_y[r0:r0 + ROWS]), b)
        if pilot is None:
            gain = (yc * yc > keep).astype(np.float32)
        else:
            pc = _dct2(np.ascontiguousarray(view_p[r0:r0 + ROWS]), b)
            pc *= pc
            gain = pc / (pc + noise)
        # BM3D's aggregation weight, at most that of one coefficient passed whole
        passed = (gain * gain * noise).sum(axis=(-2, -1))
        weight = 1.0 / np.maximum(passed, floor)
        est = (b.T @ (gain * yc) @ b) * weight[..., None, None]
        var = None
        if error is not None:
            table, level, factor, (rows, cols) = error
            first, last = np.searchsorted(rows, [r0, r0 + est.shape[0]])
            if first == last:
                return r0, est, weight, None
            pick = np.ix_(rows[first:last] - r0, cols)
            lev = level[first:last]
            g, pc, yc = gain[pick], pc[pick], yc[pick]
            # the noise let through: sum(G**2 N) times the window's noise level
            through = passed[pick] * lev * np.float32(1.0 / NOISE_FACTOR)
            # the signal taken away: sum((1 - G)**2 X**2)
            pc *= np.float32(factor)
            yc *= yc
            yc /= table  # the observation's power in noise variances of the table
            strong = np.nonzero(yc > STRONG_COEFFICIENT * lev[..., None, None])
            if strong[0].size:
                excess = (yc[strong] - lev[strong[:2]]) * table[strong[2:]]
                pc[strong] = np.maximum(pc[strong], excess)
            g -= 1.0
            g *= g
            g *= pc
            w_grid = weight[pick]
            var = (first, (g.sum(axis=(-2, -1)) + through) * np.float32(1.0 / (k * k))
                   * w_grid, w_grid)
        return r0, est, weight, var

    num = np.zeros((h, w), np.float64)
    weights = np.zeros((h - k + 1, w - k + 1), np.float64)
    if error is not None:  # on the grid of the error model
        shape = (error[3][0].size, error[3][1].size)
        variances, grid_weights = np.zeros(shape), np.zeros(shape)
    ncols = w - k + 1

    def add(r0, est, weight, var):  # overlap-add, in this thread
        nr = est.shape[0]
        weights[r0:r0 + nr] = weight
        if var is not None:
            first, v, gw = var
            variances[first:first + v.shape[0]] = v
            grid_weights[first:first + v.shape[0]] = gw
        for a in range(k):
            for c in range(k):
                num[r0 + a:r0 + a + nr, c:c + ncols] += est[:, :, a, c]

    starts = range(0, h - k + 1, ROWS)
    if rows is not None:
        # the strips whose windows cover one of the rows (origins r - k + 1 to r)
        need = np.zeros(h - k + 1 + ROWS, bool)
        for r in rows:
            need[max(r - k + 1, 0):min(r, h - k) + 1] = True
        starts = [r0 for r0 in starts if need[r0:r0 + ROWS].any()]
    # the transforms (numpy releases the GIL) in as many threads as torch uses,
    # with at most two strips per thread in flight
    workers = max(1, torch.get_num_threads())
    with ThreadPoolExecutor(workers) as pool:
        pending = deque()
        for r0 in starts:
            pending.append(pool.submit(strip, r0))
            if len(pending) >= 2 * workers:
                add(*pending.popleft().result())
        while pending:
            add(*pending.popleft().result())
    # each pixel's normaliser: the weights of the windows that cover it, the box sums
    # of the window weights padded by k - 1 on every side
    den = box_sums(np.pad(weights, k - 1), k)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (num / den).astype(np.float32)
        if error is None:
            return out
        return out, _grid_mean(variances, grid_weights, *error[3], h, w, k)


def _grid_mean(values, weights, rows, cols, h, w, k):
    """For each pixel of an ``h`` x ``w`` image, the sum of ``values`` over the
    ``k`` x ``k`` windows of the grid ``rows`` x ``cols`` of window origins that cover
    it, divided by that of ``weights`` (float32; in blocks of rows, to bound memory)."""
    def rows_summed(a):  # per pixel row: sums over the covering grid rows (cumulative in x)
        csum = np.pad(a.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        pixels = np.arange(h)  # the windows covering pixel p have origins p - k + 1 to p
        return (csum[np.searchsorted(rows, pixels, side="right")]
                - csum[np.searchsorted(rows, pixels - k + 1)])

    num, den = rows_summed(values), rows_summed(weights)
    pixels = np.arange(w)
    hi, lo = np.searchsorted(cols, pixels, side="right"), np.searchsorted(cols, pixels - k + 1)
    out = np.empty((h, w), np.float32)
    for r in range(0, h, 256):
        part = slice(r, r + 256)
        out[part] = ((num[part][:, hi] - num[part][:, lo])
                     / (den[part][:, hi] - den[part][:, lo]))
    return out
