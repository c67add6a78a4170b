"""The package's one noise estimator (used by the normalisation and by the metrics)."""
import numpy as np
from astropy.stats import mad_std

__all__ = ["difference_noise"]


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
    >>> from tdrdenoise._noise import difference_noise
    >>> noise = np.random.default_rng(0).normal(0, 2.0, (200, 200))
    >>> round(difference_noise(noise), 1)
    2.0
    """
    data = np.asarray(data)
    bad = ~np.isfinite(data)
    if invalid is not None:
        bad = bad | np.asarray(invalid, bool)
    diffs = []
    for axis in (0, 1):
        ok = ~(np.delete(bad, 0, axis=axis) | np.delete(bad, -1, axis=axis))
        with np.errstate(invalid="ignore", over="ignore"):
            d = np.diff(data.astype(np.float64, copy=False), axis=axis)
        diffs.append(d[ok])
    d = np.concatenate(diffs)
    if d.size == 0:
        return 0.0
    sigma = float(mad_std(d)) / np.sqrt(2.0)
    if not sigma > 0:
        sigma = float(np.std(d)) / np.sqrt(2.0)
    return float(sigma)
