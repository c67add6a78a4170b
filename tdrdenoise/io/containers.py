"""One conversion layer between the user's container and plain arrays.

:func:`unpack` turns a CCDData, NDData, sunpy Map, Quantity, masked array or ndarray
into an :class:`_Image` (float array, invalid-pixel mask, unit, metadata); :func:`repack`
builds a new object of the caller's kind from arrays. The numerical code never sees
the container. :func:`to_ccddata` and :func:`cast_data` serve the file layer.
"""
import copy
import sys
from dataclasses import dataclass, field

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData, NDData, StdDevUncertainty

from .provenance import write_cards

__all__ = []


#: Smallest image side tdrdenoise accepts (the network pools five times).
MIN_SIZE = 16


def is_map(obj):
    """True for a sunpy Map, without importing sunpy when the caller never did."""
    sunpy_map = sys.modules.get("sunpy.map")
    return sunpy_map is not None and isinstance(obj, sunpy_map.GenericMap)


@dataclass
class _Image:
    """An image taken apart: what the numerical code works on."""

    data: np.ndarray            # 2-D float array, native byte order, a copy
    invalid: np.ndarray         # True where the pixel is NaN/inf or masked on input
    unit: object                # astropy unit, or None
    kind: str                   # "ndarray", "masked", "quantity", "nddata", "map"
    original: object = field(repr=False)
    raw: np.ndarray = field(default=None, repr=False)  # input values in their own dtype

    @property
    def output_dtype(self):
        """The float dtype of results: one that holds every input value exactly.

        Float inputs keep their dtype (float16 becomes float32); integers of at most
        16 bits give float32, which holds all their values; wider integers give
        float64 (exact up to 2**53).
        """
        dtype = self.raw.dtype
        if dtype.kind == "f":
            return np.dtype(np.float32) if dtype.itemsize < 4 else dtype.newbyteorder("=")
        return np.dtype(np.float32) if dtype.itemsize <= 2 else np.dtype(np.float64)

    @property
    def input_mask(self):
        """The input's own mask (False where it had none)."""
        mask = getattr(self.original, "mask", None)
        if mask is None or mask is np.ma.nomask:
            return np.zeros(self.data.shape, bool)
        return np.broadcast_to(np.asarray(mask, bool), self.data.shape)

    @property
    def std_uncertainty(self):
        """The input's uncertainty as a standard deviation array, or None."""
        unc = getattr(self.original, "uncertainty", None)
        if unc is None or self.kind not in ("nddata", "map"):
            return None
        if not isinstance(unc, StdDevUncertainty):
            try:
                unc = unc.represent_as(StdDevUncertainty)
            except (TypeError, ValueError, AttributeError):
                return None
        arr = np.asarray(unc.array, dtype=float)
        if unc.unit is not None and self.unit is not None and unc.unit != self.unit:
            arr = arr * unit_factor(unc.unit, self.unit, "uncertainty",
                                    "the {name} is in '{unit}', the image in '{to}'")
        return np.broadcast_to(arr, self.data.shape)


def unpack(image, name="image"):
    """Take ``image`` apart into an :class:`_Image`.

    Raises
    ------
    TypeError
        If ``image`` is not an array-like image.
    ValueError
        If it is not two-dimensional or not numeric.
    """
    mask = None
    unit = None
    if is_map(image):
        kind, values, mask = "map", image.data, image.mask
        unit = image.unit
    elif isinstance(image, NDData):
        kind, values, mask, unit = "nddata", image.data, image.mask, image.unit
    elif isinstance(image, u.Quantity):
        kind, values, unit = "quantity", image.value, image.unit
    elif isinstance(image, np.ma.MaskedArray):
        kind, values, mask = "masked", image.data, np.ma.getmaskarray(image)
    elif isinstance(image, (np.ndarray, list, tuple)):
        kind, values = "ndarray", image
    else:
        raise TypeError(
            f"{name} must be a CCDData, NDData, sunpy Map, Quantity or numpy array; "
            f"got {type(image).__name__}")
    try:
        values = np.asarray(values)
    except ValueError:  # numpy's "inhomogeneous shape": a ragged nested list
        if not isinstance(values, (list, tuple)):
            raise  # another kind's own error: not to be hidden behind the list message
        raise ValueError(f"{name} is a nested {type(values).__name__} whose rows are not "
                         f"all of one length{_row_lengths(values)}; an image needs rows "
                         "of equal length: pad or crop them, or pass a 2-D numpy "
                         "array") from None
    if values.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers; got dtype {values.dtype}")
    if values.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D image; got {values.ndim} dimension(s) with shape "
            f"{values.shape}. Pass a 2-D slice, e.g. data[0] for a cube.")
    # astype makes a native-endian, C-ordered copy: big-endian FITS data, integer
    # images and strided slices all end up the same.
    dtype = values.dtype if values.dtype.kind == "f" else np.dtype(np.float64)
    data = np.array(values, dtype=dtype.newbyteorder("="), order="C", copy=True)
    raw = data if values.dtype.kind == "f" else np.array(
        values, dtype=values.dtype.newbyteorder("="), order="C", copy=True)
    invalid = ~np.isfinite(data)
    if mask is not None and mask is not np.ma.nomask:
        invalid |= np.broadcast_to(np.asarray(mask, bool), data.shape)
    if unit is not None:
        unit = u.Unit(unit)
        if unit == u.dimensionless_unscaled and kind != "quantity":
            unit = None
    return _Image(data=data, invalid=invalid, unit=unit, kind=kind, original=image, raw=raw)


def _row_lengths(rows):
    """" (row lengths 3, 2, ...)" of a nested list, or "" where they cannot be told."""
    try:
        lengths = sorted({len(row) for row in rows})
    except TypeError:  # numbers mixed with rows
        return " (numbers and rows mixed)"
    shown = ", ".join(str(n) for n in lengths[:5]) + (", ..." if len(lengths) > 5 else "")
    return f" (row lengths {shown})"


def check_image(img, name, min_valid=MIN_SIZE * MIN_SIZE):
    """Raise ValueError if an unpacked image is too small or has too few valid pixels."""
    h, w = img.data.shape
    if h < MIN_SIZE or w < MIN_SIZE:
        raise ValueError(f"{name} is {h} x {w} pixels; tdrdenoise needs at least "
                         f"{MIN_SIZE} x {MIN_SIZE}")
    n_valid = int((~img.invalid).sum())
    if n_valid == 0:
        raise ValueError(f"{name} has no valid pixels (all NaN, inf or masked)")
    if n_valid < min_valid:
        raise ValueError(f"{name} has only {n_valid} valid pixels; tdrdenoise needs at "
                         f"least {min_valid}")


def _is_image(obj):
    """True for an element of a list that is an image of its own (not a row)."""
    if is_map(obj) or isinstance(obj, NDData):
        return True
    if not isinstance(obj, (np.ndarray, list, tuple)):
        return False
    try:
        return np.ndim(obj) >= 2
    except ValueError:  # ragged nested lists
        return False


def series_names(n, name="image"):
    """How errors and warnings name the images of a series: "image 2 of 3"."""
    return [f"{name} {k} of {n}" for k in range(1, n + 1)]


def unpack_images(image, name="image"):
    """One image, or a list or tuple of images, unpacked and checked: a list of
    :class:`_Image`.

    A list or tuple whose elements are images themselves (NDData, Maps, arrays of
    two or more dimensions) is a series; any other is one image given as its rows.

    Raises
    ------
    TypeError, ValueError
        As :func:`unpack` and :func:`check_image`, naming the image of a series
        ("image 2 of 3"); ValueError for an empty list.
    """
    if isinstance(image, (list, tuple)):
        if not len(image):
            raise ValueError(f"{name} is an empty {type(image).__name__}; pass an image "
                             "or a list of images")
        kinds = [_is_image(e) for e in image]
        if any(kinds) and not all(kinds):
            k = kinds.index(False)
            raise TypeError(f"{name}: element {k + 1} of the list is a "
                            f"{type(image[k]).__name__}, not a 2-D image; a list passed "
                            "as images must hold images only")
        if all(kinds):
            names = series_names(len(image), name)
            imgs = [unpack(e, n) for e, n in zip(image, names)]
            for img, n in zip(imgs, names):
                check_image(img, n)
            return imgs
    img = unpack(image, name)
    check_image(img, name)
    return [img]


def unit_factor(unit, to, name, message=None):
    """The factor converting values in ``unit`` to ``to`` (1.0 when either is None or
    they are equal): the one unit conversion of tdrdenoise. ``values * factor`` gives
    the values astropy's ``(values * unit).to_value(to)`` gives, also for a scale
    within float rounding of 1 (astropy's ``to`` then returns exactly 1.0).

    Raises
    ------
    astropy.units.UnitConversionError
        If ``unit`` does not convert to ``to``: ``message`` (formatted with ``name``,
        ``unit`` and ``to``), by default that ``name`` is not in the model's unit; or
        if it is not a scaling (an enabled equivalency with an offset: deg_C to K).
    """
    if unit is None or to is None or unit == to:
        return 1.0
    try:
        if float(unit.to(to, 0.0)) != 0.0:
            raise u.UnitConversionError(f"{name}: converting '{unit}' to '{to}' is not a "
                                        "scaling; convert the values yourself first")
        return float(unit.to(to))
    except u.UnitConversionError as exc:
        if "is not a scaling" in str(exc):
            raise
        if message is None:
            message = "{name} is in '{unit}' but the model was trained on images in '{to}'"
        # a UnitConversionError (a UnitsError) as astropy's own conversion raised
        raise u.UnitConversionError(message.format(name=name, unit=unit, to=to)) from exc


def split_quantity(value, name):
    """(ndarray, unit or None) of an array-like or Quantity of any shape."""
    if isinstance(value, u.Quantity):
        return value.value, value.unit
    if isinstance(value, (NDData, str)) or is_map(value):
        raise TypeError(f"{name} must be an array or a Quantity; got {type(value).__name__}"
                        " (pass its .data, or use tdr_denoise)")
    return np.asarray(value), None


def join_quantity(values, unit):
    """``values`` as a Quantity in ``unit``, or as they are when ``unit`` is None."""
    return values if unit is None else u.Quantity(values, unit, copy=False)


def scalar_in_unit(value, unit, name):
    """A scalar argument (number or Quantity) as a float in the image ``unit``.

    Raises
    ------
    astropy.units.UnitsError
        If ``value`` has a unit that cannot be converted to ``unit``, or a physical
        unit while the image has none.
    TypeError
        If ``value`` is neither a number nor a Quantity.
    """
    if np.ndim(value) != 0:
        raise TypeError(f"{name} must be a scalar; got an array of shape {np.shape(value)}")
    if isinstance(value, u.Quantity):
        if unit is None:
            if value.unit.physical_type != "dimensionless":
                raise u.UnitsError(f"{name}={value} has a unit but the image has none; give "
                                   f"{name} as a plain number or give the image a unit")
            return float(value.to_value(u.dimensionless_unscaled))
        try:
            return float(value.to_value(unit))
        except u.UnitConversionError as exc:
            raise u.UnitsError(f"{name}={value} cannot be converted to the image unit "
                               f"'{unit}'") from exc
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a number or a Quantity; got {value!r}") from exc


def repack(image, data, *, mask=None, std=None, provenance=None):
    """Build a new object of the caller's kind around ``data``.

    Parameters
    ----------
    image : _Image
        What :func:`unpack` returned for the input.
    data : ndarray
        The new pixel values, in ``image.unit``.
    mask : ndarray of bool, optional
        Output mask (NDData, Map and masked arrays only).
    std : ndarray, optional
        Per-pixel standard deviation, stored as ``StdDevUncertainty`` (NDData only).
    provenance : list of (key, value, long_name), optional
        Header cards to add (``long_name``, or None, is the step name recorded
        ccdproc-style); for Maps also a ``history`` line each.
    """
    original = image.original
    if image.kind == "ndarray":
        return data
    if image.kind == "masked":
        return np.ma.MaskedArray(data, mask=mask)
    if image.kind == "quantity":
        return u.Quantity(data, image.unit, copy=False)
    meta = copy.deepcopy(original.meta) if original.meta is not None else {}
    write_cards(meta, provenance or (), history=image.kind == "map")
    uncertainty = None
    if std is not None:
        uncertainty = StdDevUncertainty(std, unit=image.unit)
    if image.kind == "map":
        # the public constructor of the Map's own class; sources such as HMIMap set
        # plot settings in it, so the input's are applied afterwards
        new = type(original)(data, meta, mask=mask, uncertainty=uncertainty)
        new.plot_settings.update(original.plot_settings)
        return new
    kwargs = dict(mask=mask, uncertainty=uncertainty, wcs=original.wcs, meta=meta,
                  unit=original.unit)
    psf = getattr(original, "psf", None)
    if psf is not None:
        kwargs["psf"] = psf
    return type(original)(data, **kwargs)


def map_header(smap, skip=()):
    """The FITS header of a sunpy Map as an `~astropy.io.fits.Header`.

    Keys in ``skip`` are left out; ``COMMENT`` and ``HISTORY`` become one card a line.
    """
    header = fits.Header()
    for key, value in smap.fits_header.items():
        if key not in skip and key not in ("", "COMMENT", "HISTORY"):
            header[key] = value
    for key in ("COMMENT", "HISTORY"):
        for value in smap.fits_header.get(key, []):
            header[key] = value
    return header


def to_ccddata(image, skip=()):
    """A CCDData sharing the data of a CCDData, NDData or sunpy Map (for writing).

    A CCDData is returned as it is. A Map's metadata becomes its FITS header (without
    the keys in ``skip``; the WCS stays in the header cards); an NDData keeps its meta
    and WCS. A missing unit becomes dimensionless.

    Raises
    ------
    TypeError
        For any other kind of object.
    """
    if isinstance(image, CCDData):
        return image
    if is_map(image):
        mask = None if image.mask is None else np.asarray(image.mask, bool)
        return CCDData(image.data, unit=image.unit or u.dimensionless_unscaled,
                       meta=map_header(image, skip), mask=mask,
                       uncertainty=image.uncertainty)
    if isinstance(image, NDData):
        return CCDData(image.data, unit=image.unit or u.dimensionless_unscaled,
                       meta=image.meta, wcs=image.wcs, mask=image.mask,
                       uncertainty=image.uncertainty)
    raise TypeError(f"expected a CCDData, NDData or sunpy Map; got {type(image).__name__}")


def _cast(values, dtype):
    """``values`` as ``dtype``, without numpy's overflow warning (checked by the caller)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return values.astype(dtype, copy=False)


def cast_problems(values, dtype):
    """What casting ``values`` to ``dtype`` would do: (n_overflow, n_rounded, largest).

    ``n_overflow`` counts the finite values that would become inf (or would not fit an
    integer type), ``n_rounded`` the others that would not come back exactly, and
    ``largest`` is the largest finite magnitude of ``values``.
    """
    values = np.asarray(values)
    dtype = np.dtype(dtype)
    if values.size == 0 or np.can_cast(values.dtype, dtype, casting="safe"):
        return 0, 0, 0.0
    floating = values.dtype.kind == "f"
    finite = np.isfinite(values) if floating else np.ones(values.shape, bool)
    cast = _cast(values, dtype)
    if dtype.kind == "f":
        overflow = finite & ~np.isfinite(cast)
    else:  # an integer type: values outside its range, NaN and inf cannot be held
        info = np.iinfo(dtype)
        with np.errstate(invalid="ignore"):
            overflow = ~finite | (values < info.min) | (values > info.max)
    with np.errstate(over="ignore", invalid="ignore"):
        same = cast.astype(values.dtype) == values
    if floating:
        same |= np.isnan(values) & np.isnan(cast)
    rounded = ~same & ~overflow
    largest = float(np.abs(values[finite]).max()) if finite.any() else 0.0
    return int(overflow.sum()), int(rounded.sum()), largest


def overflow_message(dtype, overflow, largest, name="dtype", what="this image"):
    """The message refusing a cast (see :func:`cast_problems`) of ``overflow`` values."""
    dtype = np.dtype(dtype)
    why = ("they would become inf" if dtype.kind == "f" else
           f"NaN, inf or outside [{np.iinfo(dtype).min}, {np.iinfo(dtype).max}]")
    return (f"{name}={dtype.name} cannot hold {overflow} value(s) of {what} ({why}; "
            f"largest magnitude {largest:.6g}); keep the input's type (dtype=None, "
            "--dtype input) or choose a wider one")


def cast_data(ndd, dtype, *, source=None, name="dtype"):
    """Set the data and uncertainty of the NDData ``ndd`` to ``dtype``, in place.

    No copy is made of arrays already of that type. A cast that would turn a finite
    value of the data, of the uncertainty or of ``source`` (the input image, whose
    values R=0 returns) into inf is refused, and so is, for an integer ``dtype``, one
    of a value it cannot hold (NaN, inf, out of its range).

    Returns
    -------
    int
        How many values of ``source`` the cast would not keep exactly (0 without
        ``source``), for the caller to warn about.

    Raises
    ------
    ValueError
        If a finite value would become inf (or not fit an integer ``dtype``); the
        message names ``name`` and the fix.
    """
    dtype = np.dtype(dtype)
    rounded = 0
    uncertainty = [] if ndd.uncertainty is None else [np.asarray(ndd.uncertainty.array)]
    for values in [ndd.data] + uncertainty + ([] if source is None else [source]):
        overflow, rounded, largest = cast_problems(values, dtype)
        if overflow:
            raise ValueError(overflow_message(dtype, overflow, largest, name))
    ndd.data = _cast(np.asarray(ndd.data), dtype)
    if ndd.uncertainty is not None:
        ndd.uncertainty.array = _cast(np.asarray(ndd.uncertainty.array), dtype)
    return rounded if source is not None else 0
