"""Checks of the options shared by the public functions, with errors naming the argument.

Each function returns the value in canonical form (a Python int, the threshold as
given) or raises `TypeError` (wrong kind) / `ValueError` (wrong value) whose message
names the argument and says what is accepted.
"""
import numbers

import numpy as np
from astropy import units as u

from .io.containers import MIN_SIZE, scalar_in_unit

__all__ = ["check_int", "check_seed", "check_threshold", "threshold_value", "NoiseMultiple",
           "check_fill", "FILLS", "format_threshold",
           "check_denoise_options", "check_model_settings", "check_student_width",
           "SEED_LIMIT", "MAX_WIDTH", "MAX_STUDENT_WIDTH", "MAX_STUDENT_HEAD",
           "MAX_PATCH_SIZE", "MAX_BATCH_SIZE"]

#: Seeds are integers in ``[0, SEED_LIMIT)``: what numpy and torch both take, and what
#: a FITS header card can record.
SEED_LIMIT = 2**63

#: Bounds of a model's settings: what a model file holds (checked when a file is read,
#: before anything is allocated), and so what a model may be built with. A width-48
#: network takes about 4 MiB and a width-512 one about 400 MiB.
MAX_WIDTH = 512
MAX_STUDENT_WIDTH = 512
MAX_STUDENT_HEAD = 512
MAX_PATCH_SIZE = 8192
MAX_BATCH_SIZE = 4096

#: The count options of :func:`~tdrdenoise.tdr_denoise` and their smallest values.
COUNT_MINIMUM = {"n_predictions": 1, "tile_size": 1, "fine_tune_steps": 0}


def _integral(value, name, what):
    """``value`` as an int: ints, numpy ints and integral floats; not bools or strings."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be {what}; got the bool {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        if np.isfinite(value) and float(value).is_integer():
            return int(value)
        raise ValueError(f"{name} must be {what}; got {value!r}, which is not a whole "
                         "number")
    raise TypeError(f"{name} must be {what}; got {type(value).__name__} {value!r}")


def check_int(value, name, minimum=None):
    """Check an integer option (a count of steps, passes, pixels...).

    Parameters
    ----------
    value : int
        The value; numpy integers and whole floats (``2.0``) are accepted.
    name : str
        The argument name, for the messages.
    minimum : int, optional
        The smallest value allowed.

    Returns
    -------
    int

    Raises
    ------
    TypeError
        For a bool, a string or another non-number.
    ValueError
        For a float that is not a whole number, or a value below ``minimum``.

    Examples
    --------
    >>> from tdrdenoise._validate import check_int
    >>> check_int(4.0, "n_predictions", minimum=1)
    4
    >>> check_int(0, "n_predictions", minimum=1)
    Traceback (most recent call last):
    ...
    ValueError: n_predictions must be an integer >= 1; got 0
    """
    what = "an integer" if minimum is None else f"an integer >= {minimum}"
    number = _integral(value, name, what)
    if minimum is not None and number < minimum:
        raise ValueError(f"{name} must be {what}; got {number}")
    return number


def check_seed(seed, name="seed"):
    """Check a random seed: None (a fresh one each time) or an integer in [0, 2**63).

    Parameters
    ----------
    seed : int or None
        The seed.
    name : str, optional
        The argument name, for the messages.

    Returns
    -------
    int or None

    Raises
    ------
    TypeError
        For a bool, a string or another non-number.
    ValueError
        For a negative seed, one of 2**63 or more, or a float that is not whole.

    Examples
    --------
    >>> from tdrdenoise._validate import check_seed
    >>> check_seed(42), check_seed(None)
    (42, None)
    >>> check_seed(-1)
    Traceback (most recent call last):
    ...
    ValueError: seed must be an integer with 0 <= seed < 2**63; got -1
    """
    if seed is None:
        return None
    what = f"an integer with 0 <= {name} < 2**63"
    number = _integral(seed, name, what)
    if not 0 <= number < SEED_LIMIT:
        raise ValueError(f"{name} must be {what}; got {number}")
    return number


#: The ways a restored pixel can be filled (see :func:`tdrdenoise.restore`).
FILLS = ("initial", "ambient")


class NoiseMultiple:
    """A restore threshold given as a multiple of the per-pixel noise (``--R 3sigma``).

    :func:`~tdrdenoise.tdr_denoise` and :func:`~tdrdenoise.batch.denoise_files` turn it
    into a per-pixel threshold for each image: ``factor`` times the image's own
    uncertainty (a CCDData ``uncertainty``, the ``UNCERT`` extension of a FITS file)
    where it has one, else ``factor`` times the model's noise estimate.

    Parameters
    ----------
    factor : float
        The number of noise sigmas (zero or positive; ``inf`` restores nothing).

    Examples
    --------
    >>> from tdrdenoise.restore import NoiseMultiple
    >>> NoiseMultiple(3)
    NoiseMultiple(3.0)
    >>> str(NoiseMultiple(2.5))
    '2.5sigma'
    """

    def __init__(self, factor):
        if isinstance(factor, (bool, np.bool_)) or not isinstance(factor, numbers.Real):
            raise TypeError(f"the factor of NoiseMultiple must be a number; got {factor!r}")
        factor = float(factor)
        if np.isnan(factor) or factor < 0:
            raise ValueError(f"the factor of NoiseMultiple must be zero or positive; got "
                             f"{factor}")
        self.factor = factor

    def __repr__(self):
        return f"NoiseMultiple({self.factor!r})"

    def __str__(self):
        return f"{self.factor:g}sigma"

    def __eq__(self, other):
        return isinstance(other, NoiseMultiple) and other.factor == self.factor

    def __hash__(self):
        return hash(("NoiseMultiple", self.factor))


def check_fill(fill):
    """Check the ``fill`` option of the restore step: ``"initial"`` or ``"ambient"``.

    Examples
    --------
    >>> from tdrdenoise._validate import check_fill
    >>> check_fill("ambient")
    'ambient'
    >>> check_fill("mean")
    Traceback (most recent call last):
    ...
    ValueError: fill must be 'initial' or 'ambient'; got 'mean'
    """
    if not isinstance(fill, str) or fill not in FILLS:
        raise ValueError(f"fill must be 'initial' or 'ambient'; got {fill!r}")
    return fill


def check_threshold(R, name="R", noise_multiple=False):
    """Check a restore threshold: a non-negative number or Quantity (``inf`` allowed),
    or an array of them (one threshold per pixel).

    The unit and the shape are not checked here (that needs the image); the value is
    returned as given, a Quantity staying a Quantity.

    Parameters
    ----------
    R : float, array-like or `~astropy.units.Quantity`
        The threshold: a scalar, or an array with one value per pixel.
    name : str, optional
        The argument name, for the messages.
    noise_multiple : bool, optional
        Whether a :class:`NoiseMultiple` is accepted.

    Returns
    -------
    float, ndarray, `~astropy.units.Quantity` or `NoiseMultiple`

    Raises
    ------
    TypeError
        For a bool, a string, None, an array that is not numeric or another
        non-number.
    ValueError
        For NaN or a negative value (for arrays: negative values; NaN entries are
        allowed, they restore their pixel).

    Examples
    --------
    >>> import numpy as np
    >>> from astropy import units as u
    >>> from tdrdenoise._validate import check_threshold
    >>> check_threshold(5 * u.G), check_threshold(np.inf)
    (<Quantity 5. G>, inf)
    >>> check_threshold("5")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: R must be a number, a Quantity (e.g. 5 or 5 * u.G) or an array of ... '5'
    """
    what = "a number, a Quantity (e.g. 5 or 5 * u.G) or an array of the image's shape"
    if isinstance(R, NoiseMultiple):
        if noise_multiple:
            return R
        raise TypeError(f"{name}={R} (a multiple of the noise) needs the image's noise: "
                        f"use tdr_denoise or denoise_files, or pass {name}="
                        f"{R.factor:g} * ccd.uncertainty.array * ccd.unit")
    if isinstance(R, u.Quantity):
        value = R.value
    elif isinstance(R, (bool, np.bool_, str, bytes)) or R is None:
        raise TypeError(f"{name} must be {what}; got {type(R).__name__} {R!r}")
    elif isinstance(R, numbers.Real):
        value = R
    else:
        try:
            value = np.asarray(R)
        except Exception:  # noqa: BLE001 - anything numpy cannot read is the wrong kind
            value = None
        if value is None or value.dtype.kind not in "fiu":
            raise TypeError(f"{name} must be {what}; got {type(R).__name__}")
    if np.ndim(value) == 0:
        if np.isnan(value) or value < 0:
            raise ValueError(f"{name} must be a non-negative number (np.inf restores "
                             f"nothing); got {R}")
        return R
    with np.errstate(invalid="ignore"):
        negative = int(np.count_nonzero(np.asarray(value) < 0))
    if negative:
        raise ValueError(f"{name} must be zero or positive at every pixel; {negative} of its "
                         f"{np.size(value)} values are negative")
    return R


def threshold_value(R, unit, name="R", shape=None):
    """A restore threshold as a float, or a float array of ``shape``, in ``unit``.

    Parameters
    ----------
    R : float, array-like or `~astropy.units.Quantity`
        The threshold, checked by :func:`check_threshold`.
    unit : `~astropy.units.UnitBase` or None
        The image unit.
    name : str, optional
        The argument name, for the messages.
    shape : tuple, optional
        The image shape; an array ``R`` must have it (without it, only scalars are
        accepted).

    Raises
    ------
    TypeError, ValueError
        As :func:`check_threshold`; ValueError also for an array of the wrong shape.
    astropy.units.UnitsError
        If the unit of ``R`` cannot be converted to ``unit`` (see
        :func:`~tdrdenoise.io.containers.scalar_in_unit`).

    Examples
    --------
    >>> import numpy as np
    >>> from astropy import units as u
    >>> from tdrdenoise._validate import threshold_value
    >>> threshold_value(np.full((2, 2), 5.0) * u.G, u.G, shape=(2, 2))
    array([[5., 5.],
           [5., 5.]])
    >>> threshold_value(np.ones(3), u.G, shape=(2, 2))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: R has shape (3,) but the image has shape (2, 2); give R as a scalar or ...
    """
    check_threshold(R, name)
    if np.ndim(R) == 0:
        return scalar_in_unit(R, unit, name)
    if shape is None:
        raise TypeError(f"{name} must be a scalar; got an array of shape {np.shape(R)}")
    if tuple(np.shape(R)) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(np.shape(R))} but the image has shape "
                         f"{tuple(shape)}; give {name} as a scalar or as an array of shape "
                         f"{tuple(shape)}")
    if isinstance(R, u.Quantity):
        if unit is None:
            if R.unit.physical_type != "dimensionless":
                raise u.UnitsError(f"{name} has the unit '{R.unit}' but the image has none; "
                                   f"give {name} as plain numbers or give the image a unit")
            return np.array(R.to_value(u.dimensionless_unscaled), dtype=float)
        try:
            return np.array(R.to_value(unit), dtype=float)
        except u.UnitConversionError as exc:
            raise u.UnitsError(f"{name} (unit '{R.unit}') cannot be converted to the image "
                               f"unit '{unit}'") from exc
    return np.array(R, dtype=float)


def check_flag(value, name):
    """``value`` as a bool: True, False or a numpy bool, nothing else.

    Examples
    --------
    >>> from tdrdenoise._validate import check_flag
    >>> check_flag(False, "calibrate")
    False
    >>> check_flag("no", "calibrate")
    Traceback (most recent call last):
    ...
    TypeError: calibrate must be True or False; got 'no'
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def check_denoise_options(R, options, noise_multiple=True):
    """Check ``R`` and the count and seed options of ``tdr_denoise`` before any work.

    ``options`` may hold ``n_predictions``, ``tile_size``, ``fine_tune_steps``,
    ``seed``, ``calibrate``, ``refine`` and ``fill`` (others are passed through).
    Returns a new dict with the checked values in canonical form (Python ints and
    bools).

    Examples
    --------
    >>> from tdrdenoise._validate import check_denoise_options
    >>> check_denoise_options(1.0, {"n_predictions": 4.0, "seed": 0})
    {'n_predictions': 4, 'seed': 0}
    >>> check_denoise_options(1.0, {"n_predictions": 2.9})
    Traceback (most recent call last):
    ...
    ValueError: n_predictions must be an integer >= 1; got 2.9, which is not a whole number
    """
    check_threshold(R, "R", noise_multiple=noise_multiple)
    options = dict(options)
    if "fill" in options:
        options["fill"] = check_fill(options["fill"])
    for name, low in COUNT_MINIMUM.items():
        if options.get(name) is not None:  # None: the method's default
            options[name] = check_int(options[name], name, minimum=low)
    if "seed" in options:
        options["seed"] = check_seed(options["seed"], "seed")
    for name in ("calibrate", "refine"):
        if name in options:
            options[name] = check_flag(options[name], name)
    return options


def check_model_settings(*, width, dropout, keep_prob, patch_size, batch_size,
                         outlier_threshold, bright_threshold, pixel_shuffle,
                         impulse_noise="auto", learning_rate=None):
    """Check the settings of :class:`~tdrdenoise.TDRModel` (ValueError naming the one
    that is wrong).

    The bounds are those of a model file (``MAX_WIDTH``, ``MAX_PATCH_SIZE``,
    ``MAX_BATCH_SIZE``): a model built within them can always be saved and loaded
    again, and one outside them fails here, before any training.

    Examples
    --------
    >>> from tdrdenoise._validate import check_model_settings
    >>> check_model_settings(width=48, dropout=0.3, keep_prob=0.7, patch_size=9000,
    ...                      batch_size=8, outlier_threshold=50, bright_threshold=8,
    ...                      pixel_shuffle="auto")
    Traceback (most recent call last):
    ...
    ValueError: patch_size must be at most 8192 (what a model file holds); got 9000
    """
    if not 0 < keep_prob < 1:
        raise ValueError(f"keep_prob must lie between 0 and 1; got {keep_prob}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must lie in [0, 1); got {dropout}")
    if int(width) < 1 or int(batch_size) < 1 or int(patch_size) < MIN_SIZE:
        raise ValueError("width and batch_size must be positive and patch_size at "
                         f"least {MIN_SIZE}")
    for name, value, bound in (("width", width, MAX_WIDTH),
                               ("patch_size", patch_size, MAX_PATCH_SIZE),
                               ("batch_size", batch_size, MAX_BATCH_SIZE)):
        if int(value) > bound:
            raise ValueError(f"{name} must be at most {bound} (what a model file "
                             f"holds); got {value}")
    if learning_rate is not None and not (np.isfinite(float(learning_rate))
                                          and float(learning_rate) > 0):
        raise ValueError(f"learning_rate must be a positive finite number; got "
                         f"{learning_rate}")
    if not float(outlier_threshold) > 0:
        raise ValueError("outlier_threshold must be a positive number of noise sigmas "
                         f"(np.inf to turn the check off); got {outlier_threshold}")
    if not float(bright_threshold) > 0:
        raise ValueError("bright_threshold must be a positive number of noise sigmas "
                         f"(np.inf to hold nothing out); got {bright_threshold}")
    if pixel_shuffle != "auto" and (isinstance(pixel_shuffle, bool) or
                                    pixel_shuffle not in (1, 2, 3, 4)):
        raise ValueError(f"pixel_shuffle must be 'auto' or 1, 2, 3 or 4; got "
                         f"{pixel_shuffle!r}")
    if not (impulse_noise == "auto" or isinstance(impulse_noise, bool)):
        raise ValueError(f"impulse_noise must be 'auto', True or False; got "
                         f"{impulse_noise!r}")


def check_student_width(value, name="student_width"):
    """Check the student's width: an integer from 2 to ``MAX_STUDENT_WIDTH``.

    Examples
    --------
    >>> from tdrdenoise._validate import check_student_width
    >>> check_student_width(16)
    16
    >>> check_student_width(1024)
    Traceback (most recent call last):
    ...
    ValueError: student_width must be at most 512 (what a model file holds); got 1024
    """
    number = check_int(value, name, minimum=2)
    if number > MAX_STUDENT_WIDTH:
        raise ValueError(f"{name} must be at most {MAX_STUDENT_WIDTH} (what a model file "
                         f"holds); got {number}")
    return number


def format_threshold(R, unit, given=None):
    """R for the header record: ``5 G``, ``inf``, ``per-pixel 2.1..9.8 G`` (an array
    ``R``), ``3sigma of the input uncertainty (per-pixel 2.1..9.8 G)``."""
    def value(x):
        if np.isinf(x):
            return "inf"
        return f"{x:g} {unit}" if unit is not None else f"{x:g}"
    if np.ndim(R) == 0:
        text = value(float(R))
    else:
        finite = np.asarray(R)[~np.isnan(R)]
        low, high = (finite.min(), finite.max()) if finite.size else (np.nan, np.nan)
        unit_text = f" {unit}" if unit is not None else ""
        text = f"per-pixel {low:g}..{high:g}{unit_text}"
    if isinstance(given, NoiseMultiple):
        source = "the input uncertainty" if np.ndim(R) else "the model noise"
        return f"{given} of {source} ({text})"
    return text
