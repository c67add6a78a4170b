"""The package's one noise estimator (used by the normalisation and by the metrics)."""
import numpy as np
from astropy.stats import mad_std

__all__ = ["difference_noise", "neighbour_correlation", "white_fraction", "box_sums"]


def difference_noise(data, invalid=None):
    """Robust per-pixel noise: the MAD of neighbour differences, as a Gaussian sigma.

    Differences of horizontally and vertically adjacent pixels, both valid, are pooled;
    their ``mad_std`` divided by sqrt(2) is the standard deviation of white noise.
    Smooth structure hardly changes it; correlated noise makes it smaller than the
    per-pixel standard deviation.

    Parameters
    ----------
    data : ndarray
        2-D image.
    invalid : ndarray of bool, optional
        Pixels to leave out (NaN and inf are always left out).

    Returns
    -------
    float
        The noise sigma in the unit of ``data``; 0.0 when no two adjacent pixels are
        valid. Images whose differences are mostly zero (integer images with flat
        stretches) fall back to the standard deviation of the differences.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.prediction.noise import difference_noise
    >>> noise = np.random.default_rng(0).normal(0, 2.0, (200, 200))
    >>> round(difference_noise(noise), 1)
    2.0
    """
    data, bad = _data_and_bad(data, invalid)
    d = _lag_differences(data, bad, 1)
    if d.size == 0:
        return 0.0
    sigma = float(mad_std(d) / np.sqrt(2.0))
    if not sigma > 0:
        sigma = float(np.std(d) / np.sqrt(2.0))
    return sigma


def _data_and_bad(data, invalid):
    """``data`` as an array and the pixels to leave out (non-finite or ``invalid``)."""
    data = np.asarray(data)
    bad = ~np.isfinite(data)
    if invalid is not None:
        bad = bad | np.asarray(invalid, bool)
    return data, bad


def _lag_spreads(data, invalid, far):
    """`~astropy.stats.mad_std` of the differences at lag 1 and at lag ``far``, or
    None when either lag has fewer than two valid pairs."""
    data, bad = _data_and_bad(data, invalid)
    near = _lag_differences(data, bad, 1)
    wide = _lag_differences(data, bad, far)
    if near.size < 2 or wide.size < 2:
        return None
    return float(mad_std(near)), float(mad_std(wide))


def _lag_differences(data, bad, lag):
    """Differences of valid pixel pairs ``lag`` apart along either axis, pooled."""
    diffs = []
    for axis in (0, 1):
        n = data.shape[axis]
        if n <= lag:
            continue
        a = np.take(data, np.arange(lag, n), axis=axis).astype(np.float64, copy=False)
        b = np.take(data, np.arange(0, n - lag), axis=axis)
        ok = ~(np.take(bad, np.arange(lag, n), axis=axis) |
               np.take(bad, np.arange(0, n - lag), axis=axis))
        with np.errstate(invalid="ignore", over="ignore"):
            diffs.append((a - b)[ok])
    return np.concatenate(diffs) if diffs else np.zeros(0)


def neighbour_correlation(data, invalid=None, far=3):
    """Correlation of the noise of neighbouring pixels, estimated from one image.

    White noise gives differences of the same spread at every lag; noise correlated
    between neighbours (from a reprojection, an interpolation, a PSF applied to
    the noise) gives smaller differences between neighbours than between pixels
    ``far`` apart. With ``s(k)`` the `~astropy.stats.mad_std` of the differences of
    pixels ``k`` apart (both axes pooled), the estimate is
    ``1 - (s(1) / s(far)) ** 2``: the lag-1 correlation coefficient of the noise
    when the noise at lag ``far`` is uncorrelated and the signal changes little over
    ``far`` pixels. Signal that varies on scales of a few pixels adds a small
    positive bias (about 0.1 on the granulation, HST and MDI images we test on).

    Parameters
    ----------
    data : ndarray
        2-D image.
    invalid : ndarray of bool, optional
        Pixels to leave out (NaN and inf are always left out).
    far : int, optional
        The lag taken as uncorrelated.

    Returns
    -------
    float
        The estimate, 0 for white noise, up to 1; 0.0 when it cannot be computed.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import ndimage
    >>> from tdrdenoise.prediction.noise import neighbour_correlation
    >>> white = np.random.default_rng(0).normal(size=(256, 256))
    >>> round(neighbour_correlation(white), 1)
    0.0
    >>> correlated = ndimage.gaussian_filter(white, 1.0)
    >>> neighbour_correlation(correlated) > 0.5
    True
    """
    spreads = _lag_spreads(data, invalid, int(far))
    if spreads is None or not spreads[1] > 0:
        return 0.0
    s_near, s_far = spreads
    return float(min(max(1.0 - (s_near / s_far) ** 2, 0.0), 1.0))


def white_fraction(data, invalid=None):
    """Share of the variance of neighbour differences that white noise explains.

    With white noise of sigma ``s`` on a signal that is smooth on the pixel scale,
    the variance of the differences of pixels ``k`` apart is ``2 s**2 + (g k)**2``
    (``g`` the signal's typical gradient). From the lags 1 and 2 (robust
    `~astropy.stats.mad_std`) the white share at lag 1, ``2 s**2 / var(1)``, is
    ``(4 - var(2) / var(1)) / 3``. A noise-free smooth signal gives about 0, white
    noise 1. Signal with sharp edges, whose differences grow less than linearly with
    the lag, looks whiter than it is.

    Parameters
    ----------
    data : ndarray
        2-D image.
    invalid : ndarray of bool, optional
        Pixels to leave out (NaN and inf are always left out).

    Returns
    -------
    float
        The share, from 0 to 1; 1.0 when it cannot be computed.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.prediction.noise import white_fraction
    >>> yy, xx = np.mgrid[:128, :128]
    >>> smooth = np.sin(xx / 5.0) * np.cos(yy / 7.0)
    >>> white_fraction(smooth) < 0.1
    True
    >>> noisy = smooth + np.random.default_rng(0).normal(0, 1.0, smooth.shape)
    >>> white_fraction(noisy) > 0.9
    True
    """
    spreads = _lag_spreads(data, invalid, 2)
    if spreads is None or not spreads[0] > 0:
        return 1.0
    v_near, v_wide = spreads[0] ** 2, spreads[1] ** 2
    return float(min(max((4.0 - v_wide / v_near) / 3.0, 0.0), 1.0))


def box_sums(a, p):
    """Sums of ``a`` over every ``p`` x ``p`` window, indexed by the window's top-left
    corner (shape ``(h - p + 1, w - p + 1)``), from one cumulative sum."""
    csum = np.pad(a.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    return csum[p:, p:] - csum[:-p, p:] - csum[p:, :-p] + csum[:-p, :-p]
