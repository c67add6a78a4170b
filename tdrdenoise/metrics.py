"""How good is a denoised image? The evaluation of Liu, Quan et al. (2025) as functions.

Every function takes the images as a CCDData, NDData, sunpy Map, Quantity, masked
array or ndarray. Invalid pixels (NaN, inf, masked) are left out, and a pixel invalid
in either image of a pair is left out of every paired metric. Results carry the
image unit when there is one (noise levels and errors in the unit, squared errors in
the unit squared); dimensionless results (correlations, slopes, fractions, PSNR,
SSIM) are plain floats.

- Against the noisy image alone: :func:`noise_level`, :func:`absolute_error`,
  :func:`mean_squared_error`, :func:`pearson_cc`, :func:`linear_coefficient`,
  :func:`residual_flux`, :func:`restored_fraction`, :func:`power_spectrum`,
  :func:`deviation_frequency`, :func:`snr_map`.
- Against a clean reference: :func:`psnr`, :func:`ssim`.
- All of them in one table: :func:`evaluate`; choosing R: :func:`r_sweep`;
  faint sources: :func:`detect_sources`.
"""
import warnings

import numpy as np
from astropy import units as u
from astropy.modeling import fitting, models
from astropy.stats import mad_std, sigma_clip
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning
from scipy import ndimage

from ._containers import scalar_in_unit, unpack
from .restore import _threshold, restore
from .utils import TDRUserWarning

__all__ = ["noise_level", "absolute_error", "mean_squared_error", "pearson_cc",
           "linear_coefficient", "residual_flux", "restored_fraction", "power_spectrum",
           "deviation_frequency", "snr_map", "psnr", "ssim", "evaluate", "r_sweep",
           "detect_sources"]

# pytest-doctestplus: this example needs photutils
__doctest_requires__ = {("detect_sources",): ["photutils"]}

#: Unit of spatial frequencies.
FREQUENCY_UNIT = u.pix ** -1
#: Deviation frequency reported when two spectra never differ (the Nyquist frequency).
NYQUIST = 0.5


# ---------------------------------------------------------------------- helpers
def _with_unit(value, unit, power=1):
    """``value`` as a Quantity in ``unit ** power``, or a float when there is no unit."""
    if unit is None:
        return float(value) if np.ndim(value) == 0 else np.asarray(value)
    return u.Quantity(value, unit ** power)


def _single(image, name="image"):
    """(float64 data, valid mask, unit) of one image; at least one valid pixel."""
    img = unpack(image, name)
    valid = ~img.invalid
    if not valid.any():
        raise ValueError(f"{name} has no valid pixels (all NaN, inf or masked)")
    return img.data.astype(np.float64, copy=False), valid, img.unit


def _images(*named):
    """Unpack several images of one shape into float64 arrays in one unit.

    ``named`` are (image, name) pairs. Returns (list of arrays, valid, unit) where
    ``unit`` is the first unit found (images with another unit are converted to it,
    images without one are taken to be in it) and ``valid`` is True where every image
    is valid.
    """
    imgs = [unpack(image, name) for image, name in named]
    first = imgs[0]
    unit = next((img.unit for img in imgs if img.unit is not None), None)
    arrays = []
    valid = np.ones(first.data.shape, bool)
    for img, (_, name) in zip(imgs, named):
        if img.data.shape != first.data.shape:
            raise ValueError(f"{name} has shape {img.data.shape} but {named[0][1]} has "
                             f"{first.data.shape}; the images must be of the same shape")
        data = img.data.astype(np.float64, copy=False)
        if img.unit is not None and unit is not None and img.unit != unit:
            try:
                data = data * img.unit.to(unit)
            except u.UnitConversionError as exc:
                raise u.UnitsError(f"{name} is in '{img.unit}', which cannot be converted "
                                   f"to '{unit}'") from exc
        arrays.append(data)
        valid &= ~img.invalid
    if not valid.any():
        names = " and ".join(name for _, name in named)
        raise ValueError(f"{names} have no pixel valid in all of them")
    return arrays, valid, unit


def _filled(data, valid):
    """Copy of ``data`` with invalid pixels set to the median of the valid ones."""
    out = np.array(data, dtype=np.float64)
    out[~valid] = np.median(data[valid])
    return out


def _difference_noise(data, valid):
    """Robust per-pixel noise: MAD of neighbour differences as a Gaussian sigma."""
    diffs = []
    for axis in (0, 1):
        ok = np.delete(valid, 0, axis=axis) & np.delete(valid, -1, axis=axis)
        diffs.append(np.diff(data, axis=axis)[ok])
    d = np.concatenate(diffs)
    if d.size < 2:
        raise ValueError("too few adjacent valid pixels to estimate the noise; pass noise=")
    return float(mad_std(d)) / np.sqrt(2.0)


def _linear_fit(x, y):
    """Least-squares slope and intercept of ``y = slope * x + intercept``.

    The closed form of the ordinary least-squares fit (what ``np.polyfit(x, y, 1)``
    solves): it gives exactly 1 when ``y`` is ``x``.
    """
    dx = x - x.mean()
    dy = y - y.mean()
    sxx = np.dot(dx, dx)
    if not sxx > 0:
        raise ValueError("initial is constant over the valid pixels: no slope can be fitted")
    slope = np.dot(dx, dy) / sxx
    return float(slope), float(y.mean() - slope * x.mean())


def _noise_fit(data, valid, unit, range, center, bins):
    """The histogram and Gaussian fit behind :func:`noise_level`.

    Returns (sigma, model, counts, edges), all plain numbers in the image unit.
    """
    values = data[valid]
    c = float(np.median(values)) if center is None else scalar_in_unit(center, unit, "center")
    if range is None:
        half = 5.0 * float(mad_std(values))
        if not half > 0:
            raise ValueError("the image is constant over most pixels; give range=")
    else:
        half = scalar_in_unit(range, unit, "range")
        if not (np.isfinite(half) and half > 0):
            raise ValueError(f"range must be a positive, finite half-width; got {range}")
    inside = values[np.abs(values - c) <= half]
    if inside.size < max(10, 0.01 * values.size):
        hint = ("; pass center=None to centre it on the median" if center is not None
                else "")
        raise ValueError(f"only {inside.size} of {values.size} valid pixels lie within "
                         f"{c:g} +/- {half:g}: too few for a histogram fit; widen "
                         f"range{hint}")
    spread = float(mad_std(inside)) or float(np.std(inside))
    if not spread > 0:
        raise ValueError("the pixels within the window are all equal: no noise to measure")
    if bins is None:
        bins = int(np.clip(2 * half / (0.2 * spread), 20, 400))
    counts, edges = np.histogram(inside, bins=bins, range=(c - half, c + half))
    centers = 0.5 * (edges[1:] + edges[:-1])
    start = models.Gaussian1D(amplitude=counts.max(), mean=float(np.median(inside)),
                              stddev=spread)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AstropyUserWarning)
        model = fitting.TRFLSQFitter()(start, centers, counts)
    if caught:
        warnings.warn(f"noise_level: the Gaussian fit of the histogram within {c:g} +/- "
                      f"{half:g} may be unreliable ({caught[0].message}); check range "
                      "and center", TDRUserWarning)
    model.stddev.value = abs(model.stddev.value)
    return float(model.stddev.value), model, counts, edges


def _unchanged_fraction(initial, denoised, a, d, valid):
    """Fraction of valid pixels where ``d`` equals ``a`` at the lower input precision."""
    dtypes = [unpack(img, "image").data.dtype for img in (initial, denoised)]
    low = min(dtypes, key=lambda dt: dt.itemsize)
    return float((a.astype(low) == d.astype(low))[valid].mean())


def _spectrum(data, window=None):
    """Azimuthally averaged power of a filled 2-D array: (frequency, power) arrays."""
    ny, nx = data.shape
    x = data - data.mean()
    if window is None:
        norm = x.size
    elif window == "hann":
        w = np.outer(np.hanning(ny), np.hanning(nx))
        x = x * w
        norm = float(np.sum(w ** 2))
    else:
        raise ValueError(f"window must be None or 'hann'; got {window!r}")
    power = np.abs(np.fft.fft2(x)) ** 2 / norm
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(ny), np.fft.fftfreq(nx), indexing="ij"))
    dk = 1.0 / min(ny, nx)
    ring = np.rint(k / dk).astype(int)
    nmax = int(np.floor(NYQUIST / dk + 1e-9))
    use = (ring >= 1) & (ring <= nmax)
    sums = np.bincount(ring[use], power[use], minlength=nmax + 1)[1:]
    counts = np.bincount(ring[use], minlength=nmax + 1)[1:]
    return np.arange(1, nmax + 1) * dk, sums / counts


def _deviation(p_initial, p_other, freq, tolerance, n_bins):
    """First frequency from which ``n_bins`` consecutive bins differ by > tolerance dex."""
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = np.abs(np.log10(p_other / p_initial))
    exceed = ~(dev <= tolerance)  # NaN (0/0) counts as a difference
    for i in np.flatnonzero(exceed):
        if exceed[i:i + n_bins].all():
            return float(freq[i])
    return NYQUIST


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


# ---------------------------------------------------------------------- noise
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
    data, valid, unit = _single(image)
    sigma, model, _, _ = _noise_fit(data, valid, unit, range, center, bins)
    return _with_unit(sigma, unit), model


# ---------------------------------------------------------------------- paired metrics
def absolute_error(initial, denoised):
    """Mean absolute difference of two images, ``mean(|initial − denoised|)``.

    Against the noisy input it measures how much the denoiser changed; against a
    clean reference (pass it as ``initial``) it is the mean absolute error.

    Parameters
    ----------
    initial, denoised : CCDData, NDData, sunpy Map, Quantity or array-like
        Two images of the same shape (``denoised`` is converted to the unit of
        ``initial`` when both have one).

    Returns
    -------
    float or `~astropy.units.Quantity`
        In the image unit.

    Raises
    ------
    ValueError
        If the shapes differ or no pixel is valid in both.
    astropy.units.UnitsError
        If the units are incompatible.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.metrics import absolute_error
    >>> absolute_error(np.array([[0.0, 1.0]]), np.array([[1.0, -1.0]]))
    1.5
    """
    (a, d), valid, unit = _images((initial, "initial"), (denoised, "denoised"))
    return _with_unit(np.mean(np.abs(a - d)[valid]), unit)


def mean_squared_error(initial, denoised):
    """Mean squared difference of two images, mean((initial − denoised)²).

    Parameters
    ----------
    initial, denoised : CCDData, NDData, sunpy Map, Quantity or array-like
        Two images of the same shape.

    Returns
    -------
    float or `~astropy.units.Quantity`
        In the image unit squared.

    Raises
    ------
    ValueError
        If the shapes differ or no pixel is valid in both.
    astropy.units.UnitsError
        If the units are incompatible.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy import units as u
    >>> from tdrdenoise.metrics import mean_squared_error
    >>> mean_squared_error(np.array([[0.0, 1.0]]) * u.G, np.array([[1.0, -1.0]]) * u.G)
    <Quantity 2.5 G2>
    """
    (a, d), valid, unit = _images((initial, "initial"), (denoised, "denoised"))
    return _with_unit(np.mean(((a - d) ** 2)[valid]), unit, 2)


def pearson_cc(initial, denoised):
    """Pearson correlation coefficient of the valid pixels of two images.

    Parameters
    ----------
    initial, denoised : CCDData, NDData, sunpy Map, Quantity or array-like
        Two images of the same shape.

    Returns
    -------
    float
        Between −1 and 1; NaN when either image is constant.

    Raises
    ------
    ValueError
        If the shapes differ or no pixel is valid in both.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.metrics import pearson_cc
    >>> pearson_cc(np.array([[1.0, 2.0, 3.0]]), np.array([[2.0, 4.0, 6.5]]))  # doctest: +FLOAT_CMP
    0.9979487157886733
    """
    (a, d), valid, _ = _images((initial, "initial"), (denoised, "denoised"))
    x, y = a[valid] - a[valid].mean(), d[valid] - d[valid].mean()
    denom = np.sqrt(np.dot(x, x) * np.dot(y, y))
    return float(np.dot(x, y) / denom) if denom > 0 else float("nan")


def linear_coefficient(initial, denoised):
    """Slope of the least-squares line ``denoised = a · initial + b``.

    The paper's linear coefficient: 1 when the denoiser keeps the amplitude of the
    signal, below 1 when it smooths strong features away.

    Parameters
    ----------
    initial, denoised : CCDData, NDData, sunpy Map, Quantity or array-like
        Two images of the same shape.

    Returns
    -------
    float
        The slope ``a`` (exactly 1 when ``denoised`` equals ``initial``).

    Raises
    ------
    ValueError
        If the shapes differ, no pixel is valid in both, or ``initial`` is constant.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.metrics import linear_coefficient
    >>> x = np.arange(12.0).reshape(3, 4)
    >>> linear_coefficient(x, 0.5 * x + 3)
    0.5
    """
    (a, d), valid, _ = _images((initial, "initial"), (denoised, "denoised"))
    return _linear_fit(a[valid], d[valid])[0]


def residual_flux(initial, denoised):
    """Mean and mean absolute value of the residual ``initial − denoised``.

    A mean near zero says the denoiser removed no net flux; the mean absolute value
    says how much it changed the pixels.

    Parameters
    ----------
    initial, denoised : CCDData, NDData, sunpy Map, Quantity or array-like
        Two images of the same shape.

    Returns
    -------
    mean, mean_abs : float or `~astropy.units.Quantity`
        In the image unit.

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
    >>> residual_flux(np.array([[1.0, 2.0]]), np.array([[2.0, 2.0]]))
    (-0.5, 0.5)
    """
    (a, d), valid, unit = _images((initial, "initial"), (denoised, "denoised"))
    res = (a - d)[valid]
    return _with_unit(res.mean(), unit), _with_unit(np.abs(res).mean(), unit)


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
    (a, d), valid, unit = _images((initial, "initial"), (denoised, "denoised"))
    if R is None:
        return _unchanged_fraction(initial, denoised, a, d, valid)
    threshold = _threshold(R, unit)
    with np.errstate(invalid="ignore"):
        return float((np.abs(d - a)[valid] > threshold).mean())


# ---------------------------------------------------------------------- Fourier
def power_spectrum(image, *, window=None):
    """Azimuthally averaged spatial power spectrum.

    The mean is subtracted and invalid pixels are set to the median of the valid
    ones before the FFT. The power is averaged in rings of width 1/N (N the shorter
    side), from 1/N up to 0.5 pix⁻¹, and normalised so that white noise of variance
    σ² has a flat spectrum at σ².

    Parameters
    ----------
    image : CCDData, NDData, sunpy Map, Quantity or array-like
        The 2-D image.
    window : {None, 'hann'}, optional
        Apodisation before the FFT (``'hann'`` reduces the leakage of edge
        discontinuities into high frequencies).

    Returns
    -------
    frequency : `~astropy.units.Quantity`
        Ring centres, in pix⁻¹.
    power : ndarray or `~astropy.units.Quantity`
        Mean power per ring, in the image unit squared when it has one.

    Raises
    ------
    ValueError
        If the image has no valid pixels or ``window`` is unknown.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.metrics import power_spectrum
    >>> noise = np.random.default_rng(0).normal(0, 2.0, (128, 128))
    >>> freq, power = power_spectrum(noise)
    >>> freq[0], freq[-1]
    (<Quantity 0.0078125 1 / pix>, <Quantity 0.5 1 / pix>)
    >>> bool(abs(np.mean(power) / 2.0**2 - 1) < 0.05)  # flat at sigma**2
    True
    """
    data, valid, unit = _single(image)
    freq, power = _spectrum(_filled(data, valid), window)
    return freq * FREQUENCY_UNIT, _with_unit(power, unit, 2)


def deviation_frequency(initial, denoised, tolerance=0.1, *, n_bins=3, window=None):
    """Spatial frequency from which the spectrum of ``denoised`` departs from the initial one.

    Scanning from low to high frequency, the result is the first frequency at which
    ``|log10(P_denoised / P_initial)|`` exceeds ``tolerance`` in ``n_bins``
    consecutive rings (the requirement of consecutive rings ignores single noisy
    rings). Below it the denoised image keeps the initial structure; the paper
    reads 0.10, 0.28 and 0.50 pix⁻¹ for R = ∞, 10 G and 5 G on HMI magnetograms.
    Pixels invalid in either image are set to each image's median first.

    Parameters
    ----------
    initial, denoised : CCDData, NDData, sunpy Map, Quantity or array-like
        Two images of the same shape.
    tolerance : float, optional
        Allowed difference in dex (0.1 dex: a factor of 1.26).
    n_bins : int, optional
        Consecutive rings that must exceed the tolerance.
    window : {None, 'hann'}, optional
        Apodisation, as in :func:`power_spectrum`.

    Returns
    -------
    `~astropy.units.Quantity`
        In pix⁻¹; 0.5 pix⁻¹ (the Nyquist frequency) when the spectra never differ.

    Raises
    ------
    ValueError
        If the shapes differ, no pixel is valid in both, or ``tolerance`` is not
        positive.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.metrics import deviation_frequency
    >>> noise = np.random.default_rng(0).normal(size=(64, 64))
    >>> deviation_frequency(noise, noise)
    <Quantity 0.5 1 / pix>
    """
    if not tolerance > 0:
        raise ValueError(f"tolerance must be positive (in dex); got {tolerance}")
    (a, d), valid, _ = _images((initial, "initial"), (denoised, "denoised"))
    freq, p_a = _spectrum(_filled(a, valid), window)
    _, p_d = _spectrum(_filled(d, valid), window)
    return _deviation(p_a, p_d, freq, tolerance, max(int(n_bins), 1)) * FREQUENCY_UNIT


def snr_map(initial, denoised, noise=None):
    """Per-pixel signal-to-noise ratio of the denoised image, ``|denoised| / σ``.

    σ is the noise of the *initial* image: the ``noise`` argument when given; else
    the input's own uncertainty (a CCDData/NDData ``StdDevUncertainty``); else a
    robust estimate from the initial image alone, the MAD-based standard deviation
    of differences between neighbouring pixels divided by √2. The map thus gives
    the denoised signal in units of the raw per-pixel noise, and does not depend on
    how (or whether) the denoised image was restored.

    Parameters
    ----------
    initial, denoised : CCDData, NDData, sunpy Map, Quantity or array-like
        The noisy image and its denoised version.
    noise : float, array or `~astropy.units.Quantity`, optional
        Noise standard deviation of ``initial`` (scalar or per pixel), in its unit.

    Returns
    -------
    ndarray
        Dimensionless, NaN where a pixel is invalid in either image.

    Raises
    ------
    ValueError
        If the shapes differ, no pixel is valid in both, or the noise is not positive.
    astropy.units.UnitsError
        If ``noise`` cannot be converted to the image unit.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.metrics import snr_map
    >>> snr_map(np.full((2, 2), 10.0), np.full((2, 2), 9.0), noise=3.0)
    array([[3., 3.],
           [3., 3.]])
    """
    (a, d), valid, unit = _images((initial, "initial"), (denoised, "denoised"))
    if noise is None:
        sigma = unpack(initial, "initial").std_uncertainty
        if sigma is None:
            sigma = _difference_noise(a, valid)
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


# ---------------------------------------------------------------------- reference
def _data_range(data_range, ref, valid, unit):
    if data_range is None:
        return float(ref[valid].max() - ref[valid].min())
    value = scalar_in_unit(data_range, unit, "data_range")
    if not value > 0:
        raise ValueError(f"data_range must be positive; got {data_range}")
    return value


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
    (x, ref), valid, unit = _images((image, "image"), (reference, "reference"))
    rng = _data_range(data_range, ref, valid, unit)
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
    (x, ref), valid, unit = _images((image, "image"), (reference, "reference"))
    rng = _data_range(data_range, ref, valid, unit)
    pad = int(3.5 * sigma + 0.5)
    if min(x.shape) <= 2 * pad:
        raise ValueError(f"the images ({x.shape}) are too small for an SSIM window of "
                         f"sigma={sigma} pixels")
    smap = _ssim_map(x, ref, valid, rng, sigma, K1, K2)[pad:-pad, pad:-pad]
    return float(np.nanmean(smap))


# ---------------------------------------------------------------------- Noise2Noise
def _n2n(initial, denoised, independent, valid, clip):
    """Noise2Noise estimate of the MSE of ``denoised`` to the unknown truth.

    Returns (sigma², mean((d − y′)²), estimate, fraction of pixels clipped). The same
    pixels (those kept by sigma-clipping both residuals) enter both means.
    """
    pair = initial - independent
    resid = denoised - independent
    keep = valid.copy()
    for r in (pair, resid):
        clipped = sigma_clip(r[valid], sigma=clip, maxiters=10, masked=True)
        keep[valid] &= ~np.ma.getmaskarray(clipped)
    sigma2 = 0.5 * np.mean(pair[keep] ** 2)
    raw = np.mean(resid[keep] ** 2)
    return sigma2, raw, raw - sigma2, 1 - keep.sum() / valid.sum()


# ---------------------------------------------------------------------- one table
_MODES = {"original": "denoised compared with the noisy input",
          "reference": "denoised compared with a clean reference",
          "independent": "Noise2Noise estimate against an independent exposure"}


def evaluate(initial, denoised, reference=None, independent=None, *, range=None, center=0,
             data_range=None, tolerance=0.1, clip_sigma=5.0):
    """All the metrics of a denoised image in one table row.

    Three modes, chosen by the arguments given:

    - ``"original"`` (always): how the denoised image relates to the noisy input
      (noise levels, changes, correlation, linear coefficient, restored fraction,
      deviation frequency).
    - ``"reference"``: against a clean ``reference`` (simulations): MSE, PSNR, SSIM
      and correlation to the truth, and the PSNR and SSIM of the noisy input.
    - ``"independent"``: against an ``independent`` observation of the same scene
      (Noise2Noise-style): with y′ the independent frame and
      σ² = mean((initial − y′)²) / 2 the noise variance of one frame, the MSE of
      the denoised image to the unknown truth is estimated by
      mean((denoised − y′)²) − σ² (unbiased when the noise of the two frames is
      independent and of equal variance). Both means use the same pixels: those
      kept by sigma-clipping (at ``clip_sigma``) of both ``initial − y′`` and
      ``denoised − y′``, which removes cosmic rays. The raw input has an MSE of σ²,
      so ``mse_n2n / noise_variance`` is the fraction of the noise power left.

    Columns (units are those of ``initial``, squared for squared errors):

    ``mode``; ``noise_initial``, ``noise_denoised`` (:func:`noise_level`);
    ``absolute_error``, ``mean_squared_error`` (denoised vs initial);
    ``pearson_cc``, ``linear_coefficient``; ``residual_mean``, ``residual_mean_abs``
    (:func:`residual_flux`); ``restored_fraction`` (pixels equal to their initial
    value, see :func:`restored_fraction`); ``deviation_frequency``.
    With a reference: ``mse_reference``, ``psnr``, ``ssim``, ``cc_reference``,
    ``psnr_initial``, ``ssim_initial``. With an independent frame:
    ``noise_variance``, ``mse_independent``, ``mse_n2n``, ``n2n_clipped_fraction``.

    Parameters
    ----------
    initial : CCDData, NDData, sunpy Map, Quantity or array-like
        The noisy image that was denoised.
    denoised : CCDData, NDData, sunpy Map, Quantity or array-like
        Its denoised (and possibly restored) version.
    reference : CCDData, NDData, sunpy Map, Quantity or array-like, optional
        The clean truth.
    independent : CCDData, NDData, sunpy Map, Quantity or array-like, optional
        Another exposure of the same scene with independent noise, aligned with
        ``initial`` (not the one the model was trained on if it was trained on one).
    range, center : optional
        Histogram window of :func:`noise_level`.
    data_range : float or `~astropy.units.Quantity`, optional
        For PSNR and SSIM; default ``max − min`` of the reference.
    tolerance : float, optional
        For :func:`deviation_frequency`, in dex.
    clip_sigma : float, optional
        Clipping threshold of the Noise2Noise statistics, in standard deviations.

    Returns
    -------
    `~astropy.table.QTable`
        One row; ``meta["mode"]`` describes the mode, ``meta["n_valid"]`` counts the
        pixels used.

    Raises
    ------
    ValueError
        If the shapes differ or no pixel is valid in all the images.
    astropy.units.UnitsError
        If the units are incompatible.

    Notes
    -----
    Masked pixels are left out. A CCDData, NDData or Map returned by
    :func:`~tdrdenoise.tdr_denoise` with a finite R has its *restored* pixels in
    its mask; to score every pixel, pass its values
    (``u.Quantity(result.data, result.unit)``).

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.metrics import evaluate
    >>> rng = np.random.default_rng(0)
    >>> truth = np.zeros((64, 64))
    >>> noisy = truth + rng.normal(0, 1.0, truth.shape)
    >>> table = evaluate(noisy, 0.5 * noisy, reference=truth, data_range=10.0)
    >>> str(table["mode"][0]), float(table["linear_coefficient"][0])
    ('original+reference', 0.5)
    """
    named = [(initial, "initial"), (denoised, "denoised")]
    if reference is not None:
        named.append((reference, "reference"))
    if independent is not None:
        named.append((independent, "independent"))
    arrays, valid, unit = _images(*named)
    a, d = arrays[:2]

    def q(value, power=1):
        return _with_unit(value, unit, power)

    modes = ["original"] + [name for _, name in named[2:]]
    row = {"mode": "+".join(modes)}
    for key, image in (("noise_initial", a), ("noise_denoised", d)):
        row[key] = q(_noise_fit(image, valid, unit, range, center, None)[0])
    res = (a - d)[valid]
    row["absolute_error"] = q(np.abs(res).mean())
    row["mean_squared_error"] = q(np.mean(res ** 2), 2)
    row["pearson_cc"] = pearson_cc(np.where(valid, a, np.nan), np.where(valid, d, np.nan))
    row["linear_coefficient"] = _linear_fit(a[valid], d[valid])[0]
    row["residual_mean"] = q(res.mean())
    row["residual_mean_abs"] = q(np.abs(res).mean())
    row["restored_fraction"] = _unchanged_fraction(initial, denoised, a, d, valid)
    freq, p_a = _spectrum(_filled(a, valid))
    row["deviation_frequency"] = _deviation(p_a, _spectrum(_filled(d, valid))[1], freq,
                                            tolerance, 3) * FREQUENCY_UNIT
    if reference is not None:
        ref = arrays[2]
        masked = [np.where(valid, x, np.nan) for x in (a, d, ref)]
        rng = _data_range(data_range, ref, valid, unit)
        row["mse_reference"] = q(np.mean(((d - ref)[valid]) ** 2), 2)
        row["psnr"] = psnr(masked[1], masked[2], rng)
        row["ssim"] = ssim(masked[1], masked[2], rng)
        row["cc_reference"] = pearson_cc(masked[1], masked[2])
        row["psnr_initial"] = psnr(masked[0], masked[2], rng)
        row["ssim_initial"] = ssim(masked[0], masked[2], rng)
    if independent is not None:
        sigma2, raw, est, clipped = _n2n(a, d, arrays[-1], valid, clip_sigma)
        row["noise_variance"] = q(sigma2, 2)
        row["mse_independent"] = q(raw, 2)
        row["mse_n2n"] = q(est, 2)
        row["n2n_clipped_fraction"] = float(clipped)
    table = QTable([[value] for value in row.values()], names=list(row))
    table.meta["mode"] = "; ".join(_MODES[m] for m in modes)
    table.meta["n_valid"] = int(valid.sum())
    return table


def r_sweep(initial, denoised, Rs, *, range=None, center=0, tolerance=0.1):
    """Restore with each threshold R and measure the result, to help choose R.

    For each R, :func:`~tdrdenoise.restore` is applied to ``denoised`` and the
    restored image is measured: the fraction of valid pixels restored, its noise
    level (:func:`noise_level` with the given window), its linear coefficient
    against ``initial`` and its deviation frequency. Small R keeps more of the
    initial image (fraction and linear coefficient rise towards 1, the deviation
    frequency towards 0.5 pix⁻¹) at the price of more noise; the paper chooses R
    below the noise level of the initial image (given in ``meta["noise_initial"]``).

    Parameters
    ----------
    initial : CCDData, NDData, sunpy Map, Quantity or array-like
        The noisy image.
    denoised : CCDData, NDData, sunpy Map, Quantity or array-like
        Its denoised version *before* restoring (``tdr_denoise(..., R=np.inf)``).
    Rs : sequence of float or `~astropy.units.Quantity`
        Thresholds in the image unit; ``np.inf`` restores nothing.
    range, center : optional
        Histogram window of :func:`noise_level`.
    tolerance : float, optional
        For :func:`deviation_frequency`, in dex.

    Returns
    -------
    `~astropy.table.QTable`
        Columns ``R``, ``restored_fraction``, ``noise_level``,
        ``linear_coefficient``, ``deviation_frequency``, one row per R in the order
        given; ``meta["noise_initial"]`` is the noise level of ``initial``.

    Raises
    ------
    ValueError
        If the shapes differ, no pixel is valid in both, ``Rs`` is empty or holds a
        negative R.
    astropy.units.UnitsError
        If an R cannot be converted to the image unit.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.metrics import r_sweep
    >>> rng = np.random.default_rng(0)
    >>> initial = rng.normal(0, 1.0, (64, 64))
    >>> table = r_sweep(initial, 0.2 * initial, [0.5, 1.0, np.inf])
    >>> table["restored_fraction"].round(2).tolist()
    [0.54, 0.21, 0.0]
    """
    (a, d), valid, unit = _images((initial, "initial"), (denoised, "denoised"))
    if isinstance(Rs, u.Quantity):
        Rs = list(np.atleast_1d(Rs))
    thresholds = [_threshold(R, unit) for R in Rs]
    if not thresholds:
        raise ValueError("Rs must hold at least one threshold")
    a_nan = np.where(valid, a, np.nan)
    freq, p_a = _spectrum(_filled(a, valid))
    rows = []
    for R in thresholds:
        out, mask = restore(a_nan, np.where(valid, d, np.nan), R)
        rows.append((R, float(mask[valid].mean()),
                     _noise_fit(out, valid, unit, range, center, None)[0],
                     _linear_fit(a[valid], out[valid])[0],
                     _deviation(p_a, _spectrum(_filled(out, valid))[1], freq, tolerance, 3)))
    cols = list(zip(*rows))
    table = QTable()
    table["R"] = _with_unit(np.array(cols[0]), unit)
    table["restored_fraction"] = np.array(cols[1])
    table["noise_level"] = _with_unit(np.array(cols[2]), unit)
    table["linear_coefficient"] = np.array(cols[3])
    table["deviation_frequency"] = np.array(cols[4]) * FREQUENCY_UNIT
    table.meta["noise_initial"] = _with_unit(
        _noise_fit(a, valid, unit, range, center, None)[0], unit)
    return table


# ---------------------------------------------------------------------- sources
def detect_sources(initial, denoised, threshold=None, *, nsigma=3.0, npixels=5,
                   connectivity=8):
    """Count the sources found before and after denoising, at the same threshold.

    Segmentation by `photutils.segmentation.detect_sources` (optional dependency).
    The same absolute threshold is used on both images: by default the one
    `photutils.segmentation.detect_threshold` derives from the *initial* image
    (sigma-clipped background plus ``nsigma`` times the sigma-clipped noise), so
    that sources which appear only after denoising are fainter than what the noisy
    image allows to detect (the HST use case: faint star clusters).

    Parameters
    ----------
    initial, denoised : CCDData, NDData, sunpy Map, Quantity or array-like
        The noisy image and its denoised version. Pixels invalid in either are
        masked in both.
    threshold : float or `~astropy.units.Quantity`, optional
        Absolute detection threshold in the image unit.
    nsigma : float, optional
        Threshold in noise standard deviations above the background of ``initial``,
        used when ``threshold`` is None.
    npixels : int, optional
        Minimum number of connected pixels above the threshold.
    connectivity : {4, 8}, optional
        Pixel connectivity of a source.

    Returns
    -------
    dict
        ``threshold`` (float or Quantity), ``n_initial`` and ``n_denoised`` (number of
        sources), ``n_new`` (sources of the denoised image that overlap no source of
        the initial one), ``segm_initial`` and ``segm_denoised``
        (`~photutils.segmentation.SegmentationImage`, or None when nothing is found).

    Raises
    ------
    ImportError
        If photutils is not installed.
    ValueError
        If the shapes differ or no pixel is valid in both.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.metrics import detect_sources
    >>> image = np.zeros((32, 32))
    >>> image[10:13, 10:13] = 5.0
    >>> result = detect_sources(image, image, threshold=1.0)
    >>> result["n_initial"], result["n_denoised"], result["n_new"]
    (1, 1, 0)
    """
    try:
        from photutils.segmentation import detect_sources as _detect
        from photutils.segmentation import detect_threshold
        from photutils.utils.exceptions import NoDetectionsWarning
    except ImportError as exc:
        raise ImportError("tdrdenoise.metrics.detect_sources needs photutils: "
                          "pip install photutils") from exc
    (a, d), valid, unit = _images((initial, "initial"), (denoised, "denoised"))
    a, d = _filled(a, valid), _filled(d, valid)
    if threshold is None:
        thr = detect_threshold(a, float(nsigma), mask=~valid)
        level = float(np.median(thr))
    else:
        level = thr = scalar_in_unit(threshold, unit, "threshold")
    segms = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoDetectionsWarning)
        for data in (a, d):
            segms.append(_detect(data, thr, int(npixels), connectivity=connectivity,
                                 mask=~valid))
    counts = [0 if s is None else len(s.labels) for s in segms]
    n_new = counts[1]
    if segms[0] is not None and segms[1] is not None:
        labels = segms[1].data
        n_new -= np.unique(labels[(labels > 0) & (segms[0].data > 0)]).size
    return {"threshold": _with_unit(level, unit), "n_initial": counts[0],
            "n_denoised": counts[1], "n_new": int(n_new), "segm_initial": segms[0],
            "segm_denoised": segms[1]}
