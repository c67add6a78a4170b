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


def refine(z, zm, valid, stride=1, k=PATCH):
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

    Returns
    -------
    ndarray of float32
        The refined estimate; ``zm`` itself when the image is smaller than a window
        or, for ``stride`` > 1, too few windows measure the noise or it measures
        none.
    """
    h, w = zm.shape
    if h < k or w < k:
        return zm
    pilot = np.asarray(zm, np.float32)
    obs = np.where(valid, z, pilot).astype(np.float32)
    if stride == 1:
        noise = np.ones((k, k))
    else:
        noise = noise_table(obs - pilot, valid, k)
        if noise is None or not noise.max() > 0:  # nothing measured: nothing to do
            return zm
        noise = np.maximum(noise, 1e-6 * noise.max())
    noise = (NOISE_FACTOR * noise).astype(np.float32)
    b = dct_matrix(k).astype(np.float32)
    floor = float(noise.mean())
    view_y = np.lib.stride_tricks.sliding_window_view(obs, (k, k))
    view_p = np.lib.stride_tricks.sliding_window_view(pilot, (k, k))

    def strip(r0):
        """Weighted estimates (rows, columns, k, k) and weights of the windows whose
        origins lie in rows ``r0`` to ``r0 + ROWS``."""
        yc = _dct2(np.ascontiguousarray(view_y[r0:r0 + ROWS]), b)
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

    # the transforms (numpy releases the GIL) in as many threads as torch uses,
    # with at most two strips per thread in flight
    workers = max(1, torch.get_num_threads())
    with ThreadPoolExecutor(workers) as pool:
        pending = deque()
        for r0 in range(0, h - k + 1, ROWS):
            pending.append(pool.submit(strip, r0))
            if len(pending) >= 2 * workers:
                add(*pending.popleft().result())
        while pending:
            add(*pending.popleft().result())
    # each pixel's normaliser: the weights of the windows that cover it, the box sums
    # of the window weights padded by k - 1 on every side
    den = box_sums(np.pad(weights, k - 1), k)
    out = (num / den).astype(np.float32)
    return np.where(valid, out, zm)
