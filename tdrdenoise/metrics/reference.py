"""Scores against a clean reference: PSNR and SSIM."""
import numpy as np
from scipy import ndimage

from ._core import data_range_of, images

__all__ = ["psnr", "ssim"]


def _ssim_map(x, y, valid, data_range, sigma, K1, K2):
    """SSIM map (Wang et al. 2004) with masked Gaussian windows; NaN outside."""
    w = valid.astype(np.float64)
    x = np.where(valid, x, 0.0)
    y = np.where(valid, y, 0.0)

    def smooth(a):
        return ndimage.gaussian_filter(a, sigma, mode="reflect", truncate=3.5)

    weight = smooth(w)
    with np.errstate(divide="ignore", invalid="ignore"):
        mx, my = smooth(w * x) / weight, smooth(w * y) / weight
        vx = smooth(w * x * x) / weight - mx ** 2
        vy = smooth(w * y * y) / weight - my ** 2
        cxy = smooth(w * x * y) / weight - mx * my
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    ssim = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    ssim[~valid | ~(weight > 1e-8)] = np.nan
    return ssim


def psnr(image, reference, data_range=None):
    """Peak signal-to-noise ratio of ``image`` against a clean ``reference``, in dB.

    ``10 log10(data_range² / MSE)`` over the pixels valid in both.

    Parameters
    ----------
    image, reference : CCDData, NDData, sunpy Map, Quantity or array-like
        The image to score and the truth, of the same shape.
    data_range : float or `~astropy.units.Quantity`, optional
        Peak-to-peak range of the signal, in the image unit; default
        ``max − min`` of the valid reference pixels (use 1 for images normalised to
        [0, 1], as the paper does for the synthetic set).

    Returns
    -------
    float
        In dB; inf when the images are equal.

    Raises
    ------
    ValueError
        If the shapes differ, no pixel is valid in both, or ``data_range`` is not
        positive.
    astropy.units.UnitsError
        If the units are incompatible.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.metrics import psnr
    >>> reference = np.zeros((4, 4))
    >>> psnr(reference + 0.1, reference, data_range=1.0)  # doctest: +FLOAT_CMP
    20.0
    """
    (x, ref), valid, unit = images((image, "image"), (reference, "reference"))
    rng = data_range_of(data_range, ref, valid, unit)
    mse = np.mean(((x - ref) ** 2)[valid])
    with np.errstate(divide="ignore"):
        return float(10 * np.log10(rng ** 2 / mse))


def ssim(image, reference, data_range=None, *, sigma=1.5, K1=0.01, K2=0.03):
    """Structural similarity index of ``image`` against a clean ``reference``.

    The SSIM of Wang et al. (2004) with Gaussian windows (σ = 1.5 pixels, truncated
    at 3.5 σ) and their constants, computed with `scipy.ndimage` (scikit-image is
    not needed; the result equals ``skimage.metrics.structural_similarity`` with
    ``gaussian_weights=True, use_sample_covariance=False``). Invalid pixels are
    left out of every window (masked, normalised convolution) and of the mean; as in
    scikit-image, a border of the window radius is left out of the mean.

    Parameters
    ----------
    image, reference : CCDData, NDData, sunpy Map, Quantity or array-like
        The image to score and the truth, of the same shape.
    data_range : float or `~astropy.units.Quantity`, optional
        Peak-to-peak range, in the image unit; default ``max − min`` of the reference.
    sigma : float, optional
        Width of the Gaussian window, in pixels.
    K1, K2 : float, optional
        Stabilising constants of Wang et al.

    Returns
    -------
    float
        1 for identical images.

    Raises
    ------
    ValueError
        If the shapes differ, no pixel is valid in both, the images are too small for
        the window, or ``data_range`` is not positive.
    astropy.units.UnitsError
        If the units are incompatible.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.metrics import ssim
    >>> reference = np.random.default_rng(0).normal(size=(32, 32))
    >>> ssim(reference, reference)
    1.0
    """
    (x, ref), valid, unit = images((image, "image"), (reference, "reference"))
    rng = data_range_of(data_range, ref, valid, unit)
    pad = int(3.5 * sigma + 0.5)
    if min(x.shape) <= 2 * pad:
        raise ValueError(f"the images ({x.shape}) are too small for an SSIM window of "
                         f"sigma={sigma} pixels")
    smap = _ssim_map(x, ref, valid, rng, sigma, K1, K2)[pad:-pad, pad:-pad]
    return float(np.nanmean(smap))
