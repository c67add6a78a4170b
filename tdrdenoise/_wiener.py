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
"""
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from astropy.stats import mad_std

from ._training import box_sums

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


def refine(z, zm, valid, stride=1, k=PATCH, held=None):
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

    Returns
    -------
    ndarray of float32
        The refined estimate; ``zm`` itself when the image is smaller than a window
        or, for ``stride`` > 1, too few windows measure the noise or it measures
        none. Pixels of ``held`` that could not be refined are NaN.
    """
    h, w = zm.shape
    held_mask = None if held is None else np.isfinite(held) & ~valid
    if held_mask is not None and held_mask.any():
        unrefined = np.where(held_mask, np.float32(np.nan), zm)
    else:
        held_mask, unrefined = None, zm
    if h < k or w < k:
        return unrefined
    pilot = np.asarray(zm, np.float32)
    obs = np.where(valid, z, pilot).astype(np.float32)
    if stride == 1:
        noise = np.ones((k, k))
    else:
        noise = noise_table(obs - pilot, valid, k)
        if noise is None or not noise.max() > 0:  # nothing measured: nothing to do
            return unrefined
        noise = np.maximum(noise, 1e-6 * noise.max())
    noise = noise.astype(np.float32)
    use = valid
    if held_mask is not None:
        obs = np.where(held_mask, held, obs).astype(np.float32)
        rough = hard_threshold(obs, noise, held_mask, k)
        pilot = np.where(held_mask, rough, pilot).astype(np.float32)
        use = valid | held_mask
    out = _filter(obs, (NOISE_FACTOR * noise).astype(np.float32), k, pilot=pilot)
    return np.where(use, out, zm)


def hard_threshold(obs, noise, where, k=PATCH):
    """The sliding-window DCT hard-threshold estimate of ``obs`` at the pixels
    ``where`` (float32; the observation elsewhere): every coefficient but the mean
    below :data:`HARD_THRESHOLD` times its noise sigma (``noise``: the per-coefficient
    variance table) set to zero, the windows averaged with BM3D's weights. Only the
    windows that cover a pixel of ``where`` are transformed."""
    rows = np.nonzero(where.any(axis=1))[0]
    out = _filter(obs, noise, k, rows=rows)
    return np.where(where, out, obs).astype(np.float32)


def _filter(obs, noise, k, pilot=None, rows=None):
    """Sliding ``k`` x ``k`` DCT windows of ``obs``, one pixel apart, each filtered
    and averaged with BM3D's weights: the Wiener gains of ``pilot``, or without one
    the hard threshold (:data:`HARD_THRESHOLD`); ``rows``: the image rows whose
    estimate is needed (all when None; elsewhere the result is undefined).
    ``noise``: the per-coefficient noise variance table."""
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
        weight = 1.0 / np.maximum((gain * gain * noise).sum(axis=(-2, -1)), floor)
        return r0, (b.T @ (gain * yc) @ b) * weight[..., None, None], weight

    num = np.zeros((h, w), np.float64)
    weights = np.zeros((h - k + 1, w - k + 1), np.float64)
    ncols = w - k + 1

    def add(r0, est, weight):  # overlap-add, in this thread
        nr = est.shape[0]
        weights[r0:r0 + nr] = weight
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
        return (num / den).astype(np.float32)
