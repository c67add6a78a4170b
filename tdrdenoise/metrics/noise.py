"""The paper's noise level: σ of a Gaussian fitted to the pixel histogram."""
from ._core import noise_fit, noise_window, single, with_unit

__all__ = ["noise_level"]


def noise_level(image, range=None, *, center=0, bins=None):
    """Noise level by the paper's method: σ of a Gaussian fitted to the pixel histogram.

    The histogram of the valid pixels within ``center ± range`` is fitted with an
    `~astropy.modeling.functional_models.Gaussian1D` (amplitude, mean and width free)
    by `~astropy.modeling.fitting.TRFLSQFitter`. Strong signal outside the window
    (sunspots, stars) does not enter. The method measures the width of the
    distribution of pixels that are pure noise around a constant level (quiet-Sun
    magnetograms, sky background); on images filled with structure (granulation) it
    measures the width of that structure instead.

    Parameters
    ----------
    image : CCDData, NDData, sunpy Map, Quantity or array-like
        The 2-D image.
    range : float or `~astropy.units.Quantity`, optional
        Half-width of the histogram window, in the image unit (the paper uses 20 G
        for HMI magnetograms). None: five robust standard deviations
        (`~astropy.stats.mad_std` of all valid pixels).
        Images that are compared must be fitted over one window, as the paper
        does: :func:`~tdrdenoise.metrics.evaluate`, :func:`~tdrdenoise.metrics.r_sweep`
        and :func:`~tdrdenoise.visualization.plot_histograms` take the initial
        image's for all.
    center : float, `~astropy.units.Quantity` or None, optional
        Centre of the window, in the image unit: 0 (default, as for magnetograms) or
        None for the median of the valid pixels (images with a background level).
    bins : int, optional
        Number of histogram bins; by default about five per robust σ, from 20 to 400.

    Returns
    -------
    sigma : float or `~astropy.units.Quantity`
        The fitted standard deviation, in the image unit when it has one.
    model : `~astropy.modeling.functional_models.Gaussian1D`
        The fitted Gaussian: ``model.mean`` and ``model.stddev`` in the image unit
        (plain numbers), ``model.amplitude`` in pixels per bin.

    Raises
    ------
    ValueError
        If ``range`` is not positive, or fewer than 10 valid pixels (or 1 % of them)
        fall in the window (with ``center=0`` for an image whose level is far from 0,
        pass ``center=None``).
    astropy.units.UnitsError
        If ``range`` or ``center`` cannot be converted to the image unit.

    Warns
    -----
    TDRUserWarning
        If the fitter reports that the fit may be unsuccessful.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy import units as u
    >>> from tdrdenoise.metrics import noise_level
    >>> image = np.random.default_rng(0).normal(0, 8.0, (200, 200)) * u.G
    >>> sigma, model = noise_level(image, range=20 * u.G)
    >>> sigma.unit, round(sigma.value)
    (Unit("G"), 8)
    """
    data, valid, unit = single(image)
    window = noise_window(data, valid, unit, range, center)
    hint = "; pass center=None to centre it on the median" if center is not None else ""
    sigma, model, _, _ = noise_fit(data, valid, window, bins, hint)
    return with_unit(sigma, unit), model
