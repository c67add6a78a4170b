"""Flux and restore: the net change of the pixel values, and the pixels given back."""
from collections import namedtuple

import numpy as np

from .._validate import threshold_value
from ._core import images, unchanged_fraction, with_unit

__all__ = ["residual_flux", "restored_fraction"]


#: What :func:`residual_flux` returns.
_ResidualFlux = namedtuple("ResidualFlux", ["mean", "mean_abs"])


def residual_flux(initial, denoised):
    """Mean and mean absolute value of the residual ``initial − denoised``.

    ``mean`` is the net flux the denoiser removed per pixel (the ``residual_mean``
    column of :func:`~tdrdenoise.metrics.evaluate`; in units of the noise σ it is
    the ``net_change_sigma`` of :func:`~tdrdenoise.metrics.large_scale_damage`): near
    zero when no net flux was removed. ``mean_abs`` says how much the pixels
    changed; it is :func:`~tdrdenoise.metrics.absolute_error` (the
    ``absolute_error`` column of :func:`~tdrdenoise.metrics.evaluate`).

    Parameters
    ----------
    initial, denoised : CCDData, NDData, sunpy Map, Quantity or array-like
        Two images of the same shape.

    Returns
    -------
    ResidualFlux
        A named tuple ``(mean, mean_abs)`` of floats or
        `~astropy.units.Quantity` in the image unit.

    Raises
    ------
    ValueError
        If the shapes differ or no pixel is valid in both.
    astropy.units.UnitsError
        If the units are incompatible.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.metrics import residual_flux
    >>> mean, mean_abs = residual_flux(np.array([[1.0, 2.0]]), np.array([[2.0, 2.0]]))
    >>> mean, mean_abs
    (-0.5, 0.5)
    """
    (a, d), valid, unit = images((initial, "initial"), (denoised, "denoised"))
    res = (a - d)[valid]
    return _ResidualFlux(with_unit(res.mean(), unit), with_unit(np.abs(res).mean(), unit))


def restored_fraction(initial, denoised, R=None):
    """Fraction of the valid pixels that the restore step gives back (or gave back).

    Parameters
    ----------
    initial, denoised : CCDData, NDData, sunpy Map, Quantity or array-like
        The noisy image and its denoised version.
    R : float or `~astropy.units.Quantity`, optional
        Restore threshold in the image unit: the fraction of pixels with
        ``|denoised − initial| > R``, which :func:`~tdrdenoise.restore` would restore.
        None: ``denoised`` is taken to be already restored, and the fraction of pixels
        equal to their initial value (compared at the lower of the two precisions)
        is returned.

    Returns
    -------
    float
        Between 0 and 1.

    Raises
    ------
    ValueError
        If the shapes differ, no pixel is valid in both, or ``R`` is negative.
    astropy.units.UnitsError
        If ``R`` cannot be converted to the image unit.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.metrics import restored_fraction
    >>> initial = np.array([[0.0, 1.0, 10.0, 4.0]])
    >>> restored_fraction(initial, np.array([[0.5, 1.0, 2.0, 4.0]]), R=1.0)
    0.25
    >>> restored_fraction(initial, np.array([[0.5, 1.0, 10.0, 4.0]]))
    0.75
    """
    (a, d), valid, unit = images((initial, "initial"), (denoised, "denoised"))
    if R is None:
        return unchanged_fraction(initial, denoised, a, d, valid)
    threshold = threshold_value(R, unit)
    with np.errstate(invalid="ignore"):
        return float((np.abs(d - a)[valid] > threshold).mean())
