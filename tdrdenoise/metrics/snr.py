"""Per-pixel signal-to-noise ratio of a denoised image."""
import numpy as np
from astropy import units as u

from ..io.containers import scalar_in_unit, unpack
from ._core import images, noise_sigma, same_values

__all__ = ["snr_map"]

_METHODS = ("residual", "global")


def snr_map(initial, denoised, *, noise=None, method=None):
    """Per-pixel signal-to-noise ratio of the denoised image.

    Two definitions of the noise σ in ``|denoised| / σ``:

    - ``method="residual"`` (the default unless ``noise`` is given; as in Fig. 1 of
      Liu, Quan et al. 2025): σ is
      the per-pixel residual ``|initial − denoised|``, what the denoiser removed
      from that pixel. Pixels where the denoised value equals the initial one
      (restored pixels, compared at the lower precision of the two inputs) have no
      residual: they are left out (NaN), as in the paper. Each pixel's σ is one
      draw of the noise, so the map is noisy and heavy-tailed; it shows where the
      denoiser changed little compared with the signal it kept.
    - ``method="global"`` (the default when ``noise`` is given): σ is the noise of
      the *initial* image: the ``noise``
      argument when given; else the input's own uncertainty (a CCDData/NDData
      ``StdDevUncertainty``); else a robust estimate from the initial image alone,
      the MAD-based standard deviation of differences between neighbouring pixels
      divided by √2 (:func:`tdrdenoise.prediction.noise.difference_noise`). The map gives the
      denoised signal in units of the raw per-pixel noise and does not depend on
      how (or whether) the denoised image was restored.

    Parameters
    ----------
    initial, denoised : CCDData, NDData, sunpy Map, Quantity or array-like
        The noisy image and its denoised version.
    noise : float, array or `~astropy.units.Quantity`, optional
        Noise standard deviation of ``initial`` (scalar or per pixel), in its unit;
        ``method="global"`` only.
    method : {'residual', 'global'}, optional
        The definition of σ, see above; None (default): ``'global'`` when ``noise``
        is given, else ``'residual'``.

    Returns
    -------
    ndarray
        Dimensionless, NaN where a pixel is invalid in either image (and, for
        ``method="residual"``, where the two images are equal).

    Raises
    ------
    ValueError
        If the shapes differ, no pixel is valid in both, ``method`` is unknown,
        ``noise`` is given with ``method="residual"``, the noise is not positive, or
        (global method) too few adjacent pixels are valid to estimate it.
    astropy.units.UnitsError
        If ``noise`` cannot be converted to the image unit.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.metrics import snr_map
    >>> initial = np.array([[10.0, 12.0], [9.0, 4.0]])
    >>> snr_map(initial, np.array([[9.0, 10.0], [6.0, 4.0]]))
    array([[ 9.,  5.],
           [ 2., nan]])
    >>> snr_map(np.full((2, 2), 10.0), np.full((2, 2), 9.0), noise=3.0)
    array([[3., 3.],
           [3., 3.]])
    """
    if method is None:
        method = "residual" if noise is None else "global"
    if method not in _METHODS:
        raise ValueError(f"method must be 'residual' or 'global'; got {method!r}")
    (a, d), valid, unit = images((initial, "initial"), (denoised, "denoised"))
    if method == "residual":
        if noise is not None:
            raise ValueError("noise= is used by method='global' only; pass "
                             "method='global' to divide by a given noise")
        left_out = ~valid | same_values(initial, denoised, a, d)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(left_out, np.nan, np.abs(d) / np.abs(a - d))
    if noise is None:
        sigma = unpack(initial, "initial").std_uncertainty
        if sigma is None:
            sigma = noise_sigma(a, valid)
    elif isinstance(noise, u.Quantity) and noise.ndim > 0:
        sigma = noise.to_value(unit) if unit is not None else noise.value
    elif np.ndim(noise) > 0:
        sigma = np.asarray(noise, float)
    else:
        sigma = scalar_in_unit(noise, unit, "noise")
    sigma = np.broadcast_to(np.asarray(sigma, float), a.shape)
    if not np.all(sigma[valid] > 0):
        raise ValueError("the noise must be positive at every valid pixel")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid, np.abs(d) / sigma, np.nan)
