"""Large-scale damage: does the denoiser change more than the white noise?"""
from collections import namedtuple

import numpy as np
from astropy.stats import sigma_clip as _astropy_sigma_clip
from scipy import ndimage

from ..io.containers import scalar_in_unit
from ._core import images, noise_sigma, single, with_unit

__all__ = ["large_scale_damage"]

#: What :func:`large_scale_damage` returns.
_Damage = namedtuple("LargeScaleDamage", ["ratio", "net_change", "sigma", "smoothing"])


def _smoothed_residual_z(residual, valid, sigma, smoothing):
    """The residual boxcar-averaged over valid pixels, in units of its white-noise RMS.

    Each pixel's mean over the valid pixels of its ``smoothing`` × ``smoothing``
    window is multiplied by √n / σ, n the number of those pixels: white noise of
    σ then gives unit variance whatever the coverage. Returns (z, usable): usable
    pixels are valid and have at least half their window valid.
    """
    w = valid.astype(np.float64)
    r = np.where(valid, residual, 0.0)
    size = (smoothing, smoothing)
    area = float(smoothing * smoothing)
    count = ndimage.uniform_filter(w, size, mode="constant") * area
    total = ndimage.uniform_filter(r, size, mode="constant") * area
    count = np.rint(count)  # the filter sums in floating point
    usable = valid & (count >= 0.5 * area)
    z = np.zeros_like(r)
    z[usable] = total[usable] / np.sqrt(count[usable]) / sigma
    return z, usable


def large_scale_damage(initial, denoised, *, smoothing=8, noise=None, sigma_clip=None,
                       noise_sample=None):
    """How much a denoiser changed the large scales, in units of the noise.

    A denoiser that removes only white noise leaves a residual
    ``r = initial − denoised`` that is white noise too: averaged over
    ``smoothing`` × ``smoothing`` pixels, its RMS falls to σ / ``smoothing``. A
    denoiser that changes large scales (pulls bright features down, shifts the
    background, adds a gradient) leaves a residual that does not average away.
    Two numbers measure it (issue 12 of tdrdenoise; the goals there are a ratio
    ≤ 2 and a net change ≤ 0.05 σ):

    ``ratio``
        The RMS of the boxcar-smoothed residual divided by σ / ``smoothing``, the
        RMS white noise of the image's σ would give after the same smoothing.
        About 1 or below for a denoiser that removes only white noise (below 1
        when it removes only part of it, or only the small scales), ≫ 1 when it
        changes large scales. Masked, NaN and inf pixels are left out: each
        window averages its valid pixels, n of them, and is scaled by √n / σ
        instead of ``smoothing`` / σ; only valid pixels whose window is at least
        half valid enter the RMS (windows at the edge are partial too).
    ``net_change``
        ``mean(initial − denoised)`` over the valid pixels, in units of σ: the net
        flux the denoiser removed per pixel (positive: it darkened the image).

    σ is the per-pixel noise of ``initial``: ``noise`` when given, else the robust
    estimate from differences of neighbouring pixels
    (:func:`tdrdenoise.prediction.noise.difference_noise`). Correlated noise makes that
    estimate smaller than the per-pixel σ and the ratio larger; give ``noise``
    then, or ``noise_sample`` (below). The RMS is a plain one: bright sources
    whose residual is large enter it fully (they are part of the damage);
    ``sigma_clip`` leaves such outliers out.

    Correlated noise (reprojected or drizzled images, CEA magnetograms) does not
    average away as white noise does: removing exactly the noise then scores well
    above 1 (about 5 for noise of lag-1 correlation 0.75). Give ``noise_sample``, an
    image of noise alone with the same correlations, and the ratio is in units of
    what that noise leaves after the same smoothing: about 1 for a denoiser that
    removes only the noise, whatever its correlations. Without ``noise``, σ is then
    the per-pixel σ of that noise: the difference estimate of ``initial`` times the
    sample's ratio of standard deviation to its own difference estimate. The
    sample's amplitude does not matter, only its correlations do. Take the
    difference of two exposures divided by √2, or white noise passed through the
    same reprojection.

    Parameters
    ----------
    initial, denoised : CCDData, NDData, sunpy Map, Quantity or array-like
        The noisy image and its denoised version, of the same shape.
    smoothing : int, optional
        Side of the boxcar window, in pixels (1: no smoothing, the ratio is then
        RMS(r) / σ).
    noise : float or `~astropy.units.Quantity`, optional
        Noise standard deviation of ``initial``, in its unit.
    sigma_clip : float, optional
        If given, smoothed values further than this many standard deviations from
        their median are clipped (`~astropy.stats.sigma_clip`) before the RMS; the
        net change is not clipped.
    noise_sample : array-like, Quantity, CCDData, NDData or sunpy Map, optional
        Noise alone, of any shape and amplitude, whose correlations are those of the
        noise of ``initial`` (NaN and masked pixels are left out). The ratio is then
        in units of its smoothed RMS instead of white noise's.

    Returns
    -------
    LargeScaleDamage
        A named tuple ``(ratio, net_change, sigma, smoothing)``: ``ratio`` and
        ``net_change`` are dimensionless floats, ``sigma`` the σ used (a float or
        a `~astropy.units.Quantity` in the image unit), ``smoothing`` the window
        side in pixels.

    Raises
    ------
    ValueError
        If the shapes differ, no pixel is valid in both, ``smoothing`` is not a
        positive integer, ``noise`` is not positive, σ cannot be estimated (too few
        adjacent valid pixels, a constant image), or no window is half valid (in
        ``initial`` or in ``noise_sample``).
    astropy.units.UnitsError
        If the units are incompatible.

    Examples
    --------
    A denoiser that removes white noise only (here: it returns the truth) scores a
    ratio near 1 and no net change; one that also shifts the background by half a
    σ scores a large ratio and a net change of 0.5 σ:

    >>> import numpy as np
    >>> from tdrdenoise.metrics import large_scale_damage
    >>> rng = np.random.default_rng(0)
    >>> truth = np.zeros((256, 256))
    >>> noisy = truth + rng.normal(0, 2.0, truth.shape)
    >>> good = large_scale_damage(noisy, truth)
    >>> round(good.ratio, 1), round(good.net_change, 2)
    (1.0, 0.0)
    >>> bad = large_scale_damage(noisy, truth - 1.0, noise=2.0)
    >>> round(bad.ratio), round(bad.net_change, 2)
    (4, 0.5)

    Noise correlated between neighbours (white noise through a Gaussian kernel)
    averages away more slowly: removing exactly that noise scores far above 1 in
    white-noise units, and about 1 against a sample of the same noise:

    >>> from scipy import ndimage
    >>> def correlated(seed):
    ...     white = np.random.default_rng(seed).normal(0, 2.0, truth.shape)
    ...     return ndimage.gaussian_filter(white, 1.0)
    >>> noisy = truth + correlated(1)
    >>> round(large_scale_damage(noisy, truth).ratio) > 3
    True
    >>> round(large_scale_damage(noisy, truth, noise_sample=correlated(2)).ratio, 1)
    1.0
    """
    if isinstance(smoothing, bool) or int(smoothing) != smoothing or smoothing < 1:
        raise ValueError(f"smoothing must be a positive integer (pixels); got {smoothing}")
    smoothing = int(smoothing)
    (a, d), valid, unit = images((initial, "initial"), (denoised, "denoised"))
    reference, per_pixel = 1.0, 1.0
    if noise_sample is not None:
        reference, per_pixel = _sample_statistics(noise_sample, smoothing, noise is None)
    if noise is None:
        sigma = noise_sigma(a, valid) * per_pixel
    else:
        sigma = scalar_in_unit(noise, unit, "noise")
        if not (np.isfinite(sigma) and sigma > 0):
            raise ValueError(f"noise must be positive and finite; got {noise}")
    residual = a - d
    z, usable = _smoothed_residual_z(residual, valid, sigma, smoothing)
    if not usable.any():
        raise ValueError(f"no {smoothing} x {smoothing} window is half valid; use a "
                         "smaller smoothing")
    values = z[usable] / reference
    if sigma_clip is not None:
        clipped = _astropy_sigma_clip(values, sigma=float(sigma_clip), maxiters=10,
                                      masked=True)
        values = clipped.compressed()
    ratio = float(np.sqrt(np.mean(values ** 2)))
    net = float(np.mean(residual[valid]) / sigma)
    return _Damage(ratio, net, with_unit(sigma, unit), smoothing)


def _sample_statistics(sample, smoothing, per_pixel=True):
    """(reference, per_pixel) of a noise sample: the RMS of the sample smoothed as
    :func:`_smoothed_residual_z` smooths the residual, in units of white noise of
    the sample's standard deviation; and the ratio of that standard deviation to
    the sample's neighbour-difference estimate (about 1 for white noise; 1 without
    computing it unless ``per_pixel``)."""
    data, valid, _ = single(sample, "noise_sample")
    data = data - np.mean(data[valid])
    sigma = float(np.std(data[valid]))
    if not sigma > 0:
        raise ValueError("noise_sample is constant; it must hold noise")
    z, usable = _smoothed_residual_z(data, valid, sigma, smoothing)
    if not usable.any():
        raise ValueError(f"no {smoothing} x {smoothing} window of noise_sample is half "
                         "valid; pass a larger sample or a smaller smoothing")
    reference = float(np.sqrt(np.mean(z[usable] ** 2)))
    if not per_pixel:
        return reference, 1.0
    return reference, sigma / noise_sigma(data, valid, "noise_sample")
