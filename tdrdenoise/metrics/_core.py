"""Shared machinery of the metrics: taking images apart, noise fits and spectra.

A private module (not part of the public API) whose names are public so that the
metrics modules and :mod:`tdrdenoise.visualization` can share them without importing
underscore names across modules. Everything here works on plain float64 arrays, a
boolean ``valid`` mask and a unit (or None).
"""
import warnings

import numpy as np
from astropy import units as u
from astropy.modeling import fitting, models
from astropy.stats import mad_std
from astropy.utils.exceptions import AstropyUserWarning

from ..io.containers import scalar_in_unit, unpack
from ..prediction.noise import difference_noise
from ..utils import TDRUserWarning

__all__ = ["FREQUENCY_UNIT", "NYQUIST", "TDR_CARD", "with_unit", "single", "images",
           "filled", "linear_fit", "noise_window", "noise_fit", "noise_sigma",
           "same_values", "unchanged_fraction", "spectrum", "first_deviation",
           "data_range_of"]

#: Unit of spatial frequencies.
FREQUENCY_UNIT = u.pix ** -1
#: Deviation frequency reported when two spectra never differ (the Nyquist frequency).
NYQUIST = 0.5
#: The metadata card that :func:`tdrdenoise.tdr_denoise` writes into its output.
TDR_CARD = "TDRDENOI"


# ---------------------------------------------------------------------- containers
def with_unit(value, unit, power=1):
    """``value`` as a Quantity in ``unit ** power``, or a float when there is no unit."""
    if unit is None:
        return float(value) if np.ndim(value) == 0 else np.asarray(value)
    return u.Quantity(value, unit ** power)


def single(image, name="image"):
    """(float64 data, valid mask, unit) of one image; at least one valid pixel."""
    img = unpack(image, name)
    valid = ~img.invalid
    if not valid.any():
        raise ValueError(f"{name} has no valid pixels (all NaN, inf or masked)")
    return img.data.astype(np.float64, copy=False), valid, img.unit


def _is_tdr_output(img):
    """True for an NDData or Map that :func:`tdrdenoise.tdr_denoise` wrote."""
    meta = getattr(img.original, "meta", None)
    if img.kind not in ("nddata", "map") or not meta:
        return False
    try:
        return TDR_CARD in meta
    except TypeError:  # pragma: no cover - an exotic meta object
        return False


def _restored(img, data, other, other_data):
    """Pixels of the TDR output ``img`` that its restore step gave back.

    They are in its mask (tdr_denoise masks restored pixels) but finite, valid in
    ``other``, and equal to ``other`` at the lower of the two input precisions.
    """
    low = min((img.data.dtype, other.data.dtype), key=lambda dt: dt.itemsize)
    candidate = img.input_mask & np.isfinite(img.data) & ~other.invalid
    with np.errstate(invalid="ignore", over="ignore"):
        return candidate & (data.astype(low) == other_data.astype(low))


def images(*named):
    """Unpack several images of one shape into float64 arrays in one unit.

    ``named`` are (image, name) pairs. Returns (list of arrays, valid, unit) where
    ``unit`` is the first unit found (images with another unit are converted to it,
    images without one are taken to be in it) and ``valid`` is True where every image
    is valid.

    Restored pixels of a :func:`~tdrdenoise.tdr_denoise` output count as valid: when
    one of the first two images is an NDData or Map with a ``TDRDENOI`` card in its
    meta, a pixel in its mask whose value equals that of the other image (valid
    there) is a pixel its restore step gave back, not a bad one.
    """
    imgs = [unpack(image, name) for image, name in named]
    first = imgs[0]
    unit = next((img.unit for img in imgs if img.unit is not None), None)
    arrays = []
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
    invalid = [img.invalid for img in imgs]
    if len(imgs) >= 2:
        for i, j in ((0, 1), (1, 0)):
            if _is_tdr_output(imgs[i]):
                invalid[i] = invalid[i] & ~_restored(imgs[i], arrays[i], imgs[j],
                                                     arrays[j])
    valid = ~np.logical_or.reduce(invalid)
    if not valid.any():
        names = " and ".join(name for _, name in named)
        raise ValueError(f"{names} have no pixel valid in all of them")
    return arrays, valid, unit


def filled(data, valid):
    """Copy of ``data`` with invalid pixels set to the median of the valid ones."""
    out = np.array(data, dtype=np.float64)
    out[~valid] = np.median(data[valid])
    return out


def same_values(initial, denoised, a, d):
    """Where ``d`` equals ``a`` at the lower precision of the two inputs.

    A float32 output restored from a float64 input holds the initial values rounded
    to float32: compared at float32 they are equal.
    """
    dtypes = [unpack(img, "image").data.dtype for img in (initial, denoised)]
    low = min(dtypes, key=lambda dt: dt.itemsize)
    with np.errstate(invalid="ignore", over="ignore"):
        return a.astype(low) == d.astype(low)


def unchanged_fraction(initial, denoised, a, d, valid):
    """Fraction of valid pixels where ``d`` equals ``a`` at the lower input precision."""
    return float(same_values(initial, denoised, a, d)[valid].mean())


def data_range_of(data_range, ref, valid, unit):
    """The PSNR/SSIM data range: given (checked) or max − min of the reference."""
    if data_range is None:
        return float(ref[valid].max() - ref[valid].min())
    value = scalar_in_unit(data_range, unit, "data_range")
    if not value > 0:
        raise ValueError(f"data_range must be positive; got {data_range}")
    return value


# ---------------------------------------------------------------------- statistics
def linear_fit(x, y):
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


def noise_sigma(data, valid, name="initial"):
    """Per-pixel noise σ of ``data`` by :func:`tdrdenoise.prediction.noise.difference_noise`.

    Raises ValueError when fewer than two pairs of adjacent pixels are valid or the
    estimate is not positive (a constant image), saying to pass ``noise=``.
    """
    pairs = int((valid[1:] & valid[:-1]).sum() + (valid[:, 1:] & valid[:, :-1]).sum())
    if pairs < 2:
        raise ValueError("too few adjacent valid pixels to estimate the noise; pass noise=")
    sigma = difference_noise(data, ~valid)
    if not sigma > 0:
        raise ValueError(f"the noise estimated from {name} is zero (a constant image?); "
                         "pass noise=")
    return sigma


def noise_window(data, valid, unit, range=None, center=0):
    """(centre, half-width) of the histogram window of :func:`noise_level`.

    In the image unit. ``center=None``: the median of the valid pixels;
    ``range=None``: five robust standard deviations of the valid pixels.
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
    return c, half


def noise_fit(data, valid, window, bins=None, hint=""):
    """The histogram and Gaussian fit behind :func:`noise_level`.

    ``window`` is (centre, half-width) from :func:`noise_window`. Returns (sigma,
    model, counts, edges), all plain numbers in the image unit. ``hint`` ends the
    message of the error raised when too few pixels fall in the window.
    """
    c, half = window
    values = data[valid]
    inside = values[np.abs(values - c) <= half]
    if inside.size < max(10, 0.01 * values.size):
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


# ---------------------------------------------------------------------- Fourier
def spectrum(data, window=None):
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


def first_deviation(p_initial, p_other, freq, tolerance, n_bins):
    """First frequency from which ``n_bins`` consecutive bins differ by > tolerance dex."""
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = np.abs(np.log10(p_other / p_initial))
    exceed = ~(dev <= tolerance)  # NaN (0/0) counts as a difference
    for i in np.flatnonzero(exceed):
        if exceed[i:i + n_bins].all():
            return float(freq[i])
    return NYQUIST
