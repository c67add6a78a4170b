"""How an image becomes network input and back.

Everything about the scaling of pixel values lives here, so that training,
fine-tuning and prediction use one transform:

- :func:`make_normalization` measures the training image (median and noise scale)
  and returns the parameters stored in the model file;
- :func:`forward` turns values in the image unit into the network's ``z``, and
  :func:`inverse` / :func:`inverse_std` turn the ensemble mean and spread back;
- :func:`extreme_pixels` flags fill values and other pixels far outside the image's
  bulk, which the network must not see;
- :func:`bright_pixels` flags bright pixels (stars, galaxy cores, sunspots, cosmic
  rays), which the network does not see either (the Wiener refinement denoises
  them, ``wiener.refine``'s ``held``; :func:`held_out` gives their values);
- :func:`choose_shuffle` picks the pixel-shuffle stride from the noise correlation;
- :func:`network_input` combines them for one image.

The transform today is linear, ``z = (x * factor - median) / scale``, where ``factor``
converts the image unit to the model's and ``scale`` is the noise of the training
image (:func:`tdrdenoise.prediction.noise.difference_noise`).
"""
import math
import warnings

import numpy as np
from scipy import ndimage

from .noise import difference_noise, neighbour_correlation, white_fraction
from ..utils import TDRUserWarning

__all__ = []

#: Name of the transform written into model files.
TRANSFORM = "linear"

#: Pixels farther than this many noise sigmas from the image median are "extreme":
#: hidden from the network, in training and in prediction, and returned untouched.
#: A pixel at 1000 sigma has a signal-to-noise ratio of at least 1000, so denoising
#: could change it by about a thousandth of its value: leaving it alone loses nothing
#: measurable, while letting the network see it makes it dominate the loss of every
#: crop it falls in (a million times a normal pixel's share) and, for fill values such
#: as -1e30, overflows float32. Real signal stays well below it in the data we know:
#: HMI sunspots reach about 500 sigma (4000 G against 8 G of noise), the cosmic rays
#: ccdproc leaves for masking a few hundred. The cores of bright, well-exposed stars
#: can exceed it; they are kept as observed (pass ``outlier_threshold=np.inf`` to
#: :class:`~tdrdenoise.TDRModel` to show the network every finite pixel).
OUTLIER_THRESHOLD = 1e3

#: Pixels of extended structure brighter than this many noise sigmas (of the training
#: image) from its median are held out: the network neither sees them nor is scored on
#: them; the Wiener refinement denoises them without it (they come back as observed
#: with ``refine=False``). In the squared-error loss a pixel at 1000 sigma weighs a
#: million background pixels, so a few bright sources decide what the network learns;
#: held out, the network learns the noise of the bulk of the image (HST NGC 1365: +4
#: dB in Noise2Noise gain, benchmarks/real_data.py). Such pixels have a
#: signal-to-noise ratio above 20, where denoising gains least. Isolated bright pixels
#: (hot pixels, cosmic-ray hits) are held out too and come back nearly as observed:
#: mask them (e.g. ``ccdproc.cosmicray_lacosmic``) to have them filled. Images
#: dominated by
#: impulse noise (salt and pepper) hold nothing out: their impulse pixels are hidden
#: and inpainted instead. ``np.inf`` shows the network every pixel.
BRIGHT_THRESHOLD = 20.0

#: Noise correlation between neighbours (:func:`neighbour_correlation`) above which the
#: network works on pixel-shuffled sub-images (stride 2, or 3 above
#: :data:`WIDE_CORRELATION`; :func:`choose_shuffle`).
CORRELATION_THRESHOLD = 0.3
#: Neighbour correlation above which the stride is 3: noise this correlated (a Gaussian
#: kernel of 0.8 px or wider) is still correlated by about 0.2 two pixels apart. On a
#: synthetic frame with lag-1 correlation 0.75 (1000 steps), the student gave 27.04 dB
#: with stride 3 against 26.16 dB with stride 2 (BM3D given the noise PSD: 27.07 dB).
WIDE_CORRELATION = 0.65
#: Fraction of impulse pixels (:func:`impulse_fraction`) from which the noise is taken
#: to be impulsive, hence white, whatever the robust correlation estimate says.
IMPULSE_FRACTION = 0.025
#: Impulse noise strikes pixels independently of each other: the share ``q`` of
#: candidate impulse pixels among the eight neighbours of a candidate is the share
#: ``p`` among all pixels. Real structure sharper than the noise (the edges of sunspots
#: and plage in magnetograms, stars, galaxy cores) makes candidates side by side.
#: :func:`impulse_clustering` is the excess ``(q - p) / (1 - p)``: at most 0.006 on the
#: synthetic 5 % salt-and-pepper frames, 0.17-0.39 on all 21 HMI SHARP maps (8 of
#: which have more than :data:`IMPULSE_FRACTION` candidates), 0.17 on the MDI full
#: disk, 0.24-0.27 on HST F555W. Above this the candidates are structure, not noise.
IMPULSE_CLUSTERING = 0.05
#: Share of white noise (:func:`white_fraction`) in the neighbour differences of the
#: pixels the impulses spared below which they are taken to carry no noise of their
#: own: the impulse pixels alone are replaced and the others come back as observed.
#: The spared pixels of the synthetic salt-and-pepper frames (noise-free granulation)
#: give 0.04; granulation with white noise of sigma 0.1 gives 0.9.
PURE_IMPULSE_WHITE = 0.2

# float32 holds |z| up to about 3.4e38; stay well inside so the network's sums cannot
# overflow either.
_Z_LIMIT = 1e30


def image_statistics(data, invalid):
    """Median and noise scale (:func:`difference_noise`) of the valid pixels."""
    valid = ~invalid
    median = float(np.median(data[valid])) if valid.any() else math.nan
    return median, difference_noise(data, invalid)


def choose_shuffle(data, invalid, pixel_shuffle="auto", impulsive=None, rho=None):
    """The pixel-shuffle stride for an image: 1, or 2 for noise correlated between
    neighbours (``"auto"``: :func:`neighbour_correlation` above
    :data:`CORRELATION_THRESHOLD`), 3 for strongly correlated noise (above
    :data:`WIDE_CORRELATION`).

    A blind-spot network predicts a hidden pixel from its neighbours; when their noise
    is correlated with the hidden pixel's, it learns to reproduce the noise. On the
    sub-images of every second (third) pixel, as AP-BSN's pixel-shuffle downsampling
    does, the neighbours are two (three) pixels apart, where the correlation has fallen
    off.

    Impulse noise (salt and pepper) is white, but the robust statistics of
    :func:`neighbour_correlation` see only the pixels it spared, whose differences are
    those of the smooth signal: an image with more than :data:`IMPULSE_FRACTION` of
    impulse pixels keeps stride 1. ``impulsive`` passes that test's answer when the
    caller already has it (None: measure it here, when needed); ``rho`` likewise the
    lag-3 :func:`neighbour_correlation` of the image.
    """
    if pixel_shuffle == "auto":
        if rho is None:
            rho = neighbour_correlation(data, invalid, far=3)
        if not rho > CORRELATION_THRESHOLD:
            return 1
        # Correlated noise reaches its decorrelated spread within two or three pixels,
        # so the estimate hardly changes from lag 2 to lag 3; signal varying on scales
        # of a few pixels biases it more the wider the lag (granulation at 128 x 128
        # with white noise: 0.32 at lag 2, 0.51 at lag 3).
        if neighbour_correlation(data, invalid, far=2) < 0.75 * rho:
            return 1
        if impulsive is None:
            impulsive = is_impulsive(data, invalid)
        if impulsive:
            return 1
        return 3 if rho > WIDE_CORRELATION else 2
    return int(pixel_shuffle)


def impulse_pixels(data, invalid, nsigma=5.0):
    """Valid pixels farther than ``nsigma`` noise sigmas (:func:`difference_noise`) from
    the median of their 3 x 3 neighbourhood (impulse noise, hot pixels, cosmic rays)."""
    valid = ~invalid & np.isfinite(data)
    if not valid.any():
        return valid
    filled = np.where(valid, data, np.median(data[valid])).astype(np.float64)
    resid = filled - ndimage.median_filter(filled, size=3, mode="nearest")
    sigma = difference_noise(data, invalid)
    if not sigma > 0:
        return np.zeros(data.shape, bool)
    return (np.abs(resid) > nsigma * sigma) & valid


def impulse_fraction(data, invalid, nsigma=5.0, impulses=None):
    """Fraction of valid pixels that are :func:`impulse_pixels` (``impulses``: that
    mask, when the caller already has it)."""
    valid = ~invalid & np.isfinite(data)
    if not valid.any():
        return 0.0
    if impulses is None:
        impulses = impulse_pixels(data, invalid, nsigma)
    return float(impulses.sum() / valid.sum())


def impulse_clustering(impulses):
    """How clustered the candidate impulse pixels are: with ``q`` the share of
    candidates among the eight neighbours of a candidate and ``p`` their share among
    all pixels, ``(q - p) / (1 - p)``: about 0 for impulses struck at random, up to 1
    when they lie side by side (the edges of real structure); 0.0 without candidates
    or when every pixel is one."""
    n = int(impulses.sum())
    p = n / max(impulses.size, 1)
    if n == 0 or p >= 1:
        return 0.0
    kernel = np.ones((3, 3))
    kernel[1, 1] = 0.0
    neighbours = ndimage.convolve(impulses.astype(np.float64), kernel, mode="constant")
    q = float(neighbours[impulses].mean() / 8.0)
    return (q - p) / (1.0 - p)


def impulse_diagnostics(data, invalid, impulses=None):
    """The impulse-noise test of an image: (fraction, clustering, impulsive).

    An image carries impulse noise (salt and pepper) when at least
    :data:`IMPULSE_FRACTION` of its valid pixels are :func:`impulse_pixels` *and*
    they are spread at random (:func:`impulse_clustering` at most
    :data:`IMPULSE_CLUSTERING`): sharp real structure gives many candidates too,
    but side by side.
    """
    if impulses is None:
        impulses = impulse_pixels(data, invalid)
    fraction = impulse_fraction(data, invalid, impulses=impulses)
    clustering = impulse_clustering(impulses)
    impulsive = fraction >= IMPULSE_FRACTION and clustering <= IMPULSE_CLUSTERING
    return fraction, clustering, bool(impulsive)


def is_impulsive(data, invalid, impulses=None):
    """Whether an image carries impulse noise (see :func:`impulse_diagnostics`)."""
    return impulse_diagnostics(data, invalid, impulses)[2]


def make_normalization(data, invalid, outlier_threshold=OUTLIER_THRESHOLD,
                       bright_threshold=BRIGHT_THRESHOLD, pixel_shuffle="auto",
                       impulse_noise="auto"):
    """The normalisation parameters of a training image (stored in the model file).

    Raises
    ------
    ValueError
        If the image is constant (no noise to learn from) or its statistics are not
        finite.
    """
    median, scale = image_statistics(data, invalid)
    if not scale > 0:
        raise ValueError("image is constant: there is no noise to learn from")
    if not (impulse_noise == "auto" or isinstance(impulse_noise, bool)):
        raise ValueError(f"impulse_noise must be 'auto', True or False; got "
                         f"{impulse_noise!r}")
    # one median filter over the image answers both automatic choices
    impulses = impulse_pixels(data, invalid)
    fraction, clustering, impulsive = impulse_diagnostics(data, invalid, impulses)
    if impulse_noise == "auto":
        impulse_noise = impulsive
    impulse_only = False
    if impulse_noise:
        # the robust noise scale of an image with impulse noise is that of the pixels
        # the impulses spared (often the signal alone): "bright" relative to it means
        # nothing, and every such pixel must stay visible around the impulses
        bright_threshold = np.inf
        # spared pixels without white noise of their own have nothing to remove
        impulse_only = bool(white_fraction(data, invalid | impulses) < PURE_IMPULSE_WHITE)
    # measured once: it chooses the stride and is shown by describe_noise
    rho = neighbour_correlation(data, invalid, far=3)
    norm = {"transform": TRANSFORM, "median": median, "scale": float(scale),
            "outlier_threshold": float(outlier_threshold),
            "bright_threshold": float(bright_threshold),
            "pixel_shuffle": choose_shuffle(data, invalid, pixel_shuffle,
                                            bool(impulse_noise), rho),
            "impulse_noise": bool(impulse_noise), "impulse_only": impulse_only,
            # what the detection measured (shown by describe_noise; not used after)
            "noise_correlation": round(rho, 4),
            "impulse_fraction": round(fraction, 5),
            "impulse_clustering": round(clustering, 4)}
    check_normalization(norm, "image")
    return norm


def describe_noise(norm, short=False):
    """What the noise detection of a training image found, in words.

    ``short`` gives the compact form of the header record
    (``noise=correlated, shuffle=3, bright=20sigma``); the long form adds what was
    measured and the options that override it.
    """
    shuffle = int(norm.get("pixel_shuffle", 1))
    if norm.get("impulse_noise", False):
        kind = "impulse-only" if norm.get("impulse_only", False) else "impulse"
    else:
        kind = "correlated" if shuffle > 1 else "white"
    bright = norm.get("bright_threshold", np.inf)
    bright_text = f"{bright:g}sigma" if bright < np.inf else "none"
    if short:
        return f"noise={kind}, shuffle={shuffle}, bright={bright_text}"
    parts = []
    if "noise_correlation" in norm:
        parts.append(f"neighbour correlation {norm['noise_correlation']:.2f}")
    if "impulse_fraction" in norm:
        parts.append(f"impulse candidates {100 * norm['impulse_fraction']:.2f} %, "
                     f"clustering {norm['impulse_clustering']:.2f}")
    measured = f" ({'; '.join(parts)})" if parts else ""
    held = (f"pixels beyond {bright:g} noise sigmas held out of the network"
            if bright < np.inf else "no bright pixels held out")
    return (f"{kind} noise{measured}; pixel shuffle {shuffle}; {held}. Override with "
            "TDRModel(impulse_noise=..., pixel_shuffle=..., bright_threshold=...).")


def check_normalization(norm, source="the model"):
    """Raise ValueError unless ``norm`` is a usable normalisation."""
    if not isinstance(norm, dict):
        raise ValueError(f"{source}: normalization must be a dict; got {type(norm).__name__}")
    if norm.get("transform", TRANSFORM) != TRANSFORM:
        raise ValueError(f"{source}: unknown normalization transform "
                         f"{norm.get('transform')!r}; upgrade tdrdenoise")
    for key in ("median", "scale", "outlier_threshold", "bright_threshold"):
        value = norm.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{source}: normalization[{key!r}] must be a number; "
                             f"got {value!r}")
    if not math.isfinite(norm["median"]):
        raise ValueError(f"{source}: the normalization median is {norm['median']}; it must "
                         "be finite")
    if not (math.isfinite(norm["scale"]) and norm["scale"] > 0):
        raise ValueError(f"{source}: the normalization scale is {norm['scale']}; it must be "
                         "finite and positive (was the training image constant?)")
    for key in ("outlier_threshold", "bright_threshold"):
        if not norm[key] > 0:
            raise ValueError(f"{source}: normalization[{key!r}] must be positive; "
                             f"got {norm[key]}")
    for key in ("impulse_noise", "impulse_only"):
        if not isinstance(norm.get(key, False), bool):
            raise ValueError(f"{source}: normalization[{key!r}] must be True or False; "
                             f"got {norm.get(key)!r}")
    shuffle = norm.get("pixel_shuffle")
    if isinstance(shuffle, bool) or not isinstance(shuffle, int) or not 1 <= shuffle <= 4:
        raise ValueError(f"{source}: normalization['pixel_shuffle'] must be an integer "
                         f"from 1 to 4; got {shuffle!r}")


def forward(data, norm, factor=1.0):
    """Image values (in the image unit) to network input ``z`` (float64)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return (np.asarray(data, np.float64) * factor - norm["median"]) / norm["scale"]


def inverse(z, norm, factor=1.0):
    """Network output ``z`` to values in the image unit (float64)."""
    return (np.asarray(z, np.float64) * norm["scale"] + norm["median"]) / factor


def inverse_std(z_mean, z_std, norm, factor=1.0):
    """Spread of the network output to a standard deviation in the image unit."""
    return np.asarray(z_std, np.float64) * norm["scale"] / abs(factor)


def noise_in_image_unit(norm, factor=1.0):
    """The model's noise scale in the image unit (the error of a raw pixel)."""
    return norm["scale"] / abs(factor)


def extreme_pixels(data, invalid, threshold=OUTLIER_THRESHOLD):
    """Valid pixels farther than ``threshold`` noise sigmas from the image median.

    The median and the noise (:func:`difference_noise`) are those of the image itself,
    so an image at another level than the training image is judged on its own bulk.

    Returns
    -------
    ndarray of bool
    """
    if not threshold < np.inf:
        return np.zeros(data.shape, bool)
    median, noise = image_statistics(data, invalid)
    if not noise > 0 or not math.isfinite(median):
        return np.zeros(data.shape, bool)
    with np.errstate(over="ignore", invalid="ignore"):
        far = np.abs(np.asarray(data, np.float64) - median) > threshold * noise
    return far & ~invalid


def bright_pixels(z, valid, threshold=BRIGHT_THRESHOLD):
    """Valid pixels with ``|z| > threshold``: bright structure held out of the network.

    Returns
    -------
    ndarray of bool
    """
    if not threshold < np.inf:
        return np.zeros(z.shape, bool)
    with np.errstate(invalid="ignore"):
        return (np.abs(z) > threshold) & valid


def network_input(data, invalid, norm, factor=1.0, name="image"):
    """The float32 network input of an image and the pixels the network may see.

    Extreme pixels (:func:`extreme_pixels`, and any whose ``z`` would overflow) are
    treated like masked ones; a `~tdrdenoise.utils.TDRUserWarning` gives their count.
    Bright pixels (:func:`bright_pixels`) are hidden too, silently: they are real
    signal, denoised by the Wiener refinement alone (:func:`held_out`). For a model
    trained on impulse noise (``norm["impulse_noise"]``, salt and pepper), the
    impulse pixels (:func:`impulse_pixels`) are hidden from the network as if they
    were missing, and the network's prediction replaces them.

    Returns
    -------
    z : ndarray of float32
        Zero where the network may not look.
    valid : ndarray of bool
        Pixels the network sees (neither invalid, extreme nor bright).
    extreme : ndarray of bool
        The extreme pixels.
    impulse : ndarray of bool
        The impulse pixels, hidden from the network but to be replaced by its output
        (all False unless the model was trained on impulse noise).
    """
    extreme = extreme_pixels(data, invalid, norm.get("outlier_threshold", OUTLIER_THRESHOLD))
    z = forward(data, norm, factor)
    with np.errstate(invalid="ignore"):
        extreme |= ~(np.abs(z) <= _Z_LIMIT) & ~invalid
    valid = ~invalid & ~extreme
    n = int(extreme.sum())
    if n:
        threshold = norm.get("outlier_threshold", OUTLIER_THRESHOLD)
        where = (f"lie more than {threshold:g} noise sigmas from the median"
                 if threshold < np.inf else "are too large for the network (float32)")
        warnings.warn(
            f"{name}: {n} extreme pixel(s) {where} (fill values such as -1e30 or 65535, "
            "saturated or bad pixels); they are hidden from the network, come out "
            "unchanged and are masked in NDData/Map results. Mask them yourself, or raise "
            "the model's outlier_threshold if they are real signal.", TDRUserWarning,
            stacklevel=4)
    impulse = np.zeros(valid.shape, bool)
    if norm.get("impulse_noise", False):
        impulse = impulse_pixels(data, ~valid)
        valid &= ~impulse
    valid &= ~bright_pixels(z, valid, norm.get("bright_threshold", np.inf))
    z = np.where(valid, z, 0.0).astype(np.float32)
    return z, valid, extreme, impulse


def held_out(data, invalid, norm, seen, extreme, impulse, factor=1.0):
    """The network-unit values of the valid pixels held out of the network as bright
    structure (:func:`bright_pixels`), NaN elsewhere (float32): the Wiener refinement
    denoises them without the network (``wiener.refine``'s ``held``)."""
    held = ~invalid & ~extreme & ~seen & ~impulse
    if not held.any():
        return None
    z = forward(data, norm, factor)
    return np.where(held, z, np.nan).astype(np.float32)


def replaced_pixels(norm, seen, impulse):
    """The pixels whose values the network's output replaces.

    Those the network saw and the impulse pixels it inpaints; for pure impulse noise
    (``norm["impulse_only"]``: the spared pixels carry no noise of their own) only
    the impulse pixels, the others coming back as observed.
    """
    if pure_impulse(norm):
        return impulse.copy()
    return seen | impulse


def pure_impulse(norm):
    """Whether the model's images carry pure impulse noise: only the impulse pixels
    are replaced and the spared ones come back as observed."""
    return bool(norm.get("impulse_noise", False) and norm.get("impulse_only", False))
