"""Checks of the options shared by the public functions, with errors naming the argument.

Each function returns the value in canonical form (a Python int, the threshold as
given) or raises `TypeError` (wrong kind) / `ValueError` (wrong value) whose message
names the argument and says what is accepted.
"""
import numbers

import numpy as np

from ._thresholds import (NoiseMultiple, check_threshold, format_threshold,  # noqa: F401
                          threshold_value)
from .io.containers import MIN_SIZE

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
