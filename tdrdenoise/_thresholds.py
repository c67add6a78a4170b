"""The restore threshold R: checks of R (a number, a Quantity, a per-pixel array or a
:class:`NoiseMultiple`), R in the image unit, and R written in a header record.
"""
import numbers

import numpy as np
from astropy import units as u

from .io.containers import scalar_in_unit

__all__ = []


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
