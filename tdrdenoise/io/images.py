"""Reading and writing images as `~astropy.nddata.CCDData`, the layout of the command line.

:func:`read_image` finds the image in a FITS file (tile-compressed HDUs of HMI and MDI
files included), reads its unit from ``BUNIT`` and keeps every header card and the
WCS. :func:`write_image` writes the CCDData layout (data, ``MASK`` and ``UNCERT``
extensions) atomically, and never replaces the file an image was read from.
"""
import os
import warnings

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData, NDData, StdDevUncertainty
from astropy.wcs import WCS, FITSFixedWarning

from .containers import is_map, to_ccddata
from .._warnings import TDRUserWarning
from .files import atomic_open

__all__ = ["read_image", "write_image", "parse_unit", "output_path"]

#: Cards describing the FITS structure or the stored scaling, not the image: they are
#: rewritten by astropy when the image is saved and would be wrong if copied.
_STRUCTURAL = {"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT",
               "BSCALE", "BZERO", "BLANK", "CHECKSUM", "DATASUM", "ZQUANTIZ", "ZDITHER0"}

#: Unit strings found in real headers that astropy does not parse as written.
_UNIT_ALIASES = {
    "counts": "ct", "count": "ct", "counts/s": "ct / s", "counts / s": "ct / s",
    "counts/sec": "ct / s", "cts/s": "ct / s", "electrons": "electron",
    "electrons/s": "electron / s", "e-": "electron", "e-/s": "electron / s",
    "e/s": "electron / s", "adu": "adu", "adu/s": "adu / s", "dn": "DN", "dn/s": "DN / s",
    "gauss": "G", "mx/cm^2": "Mx / cm2",
}

#: FITS files such as ours end in one of these; the output name replaces it.
_FITS_SUFFIXES = (".fits.gz", ".fits.fz", ".fit.gz", ".fts.gz", ".fits", ".fit", ".fts",
                  ".fz")


def parse_unit(text, name="BUNIT"):
    """Turn a unit string from a FITS header (or a user) into an astropy unit.

    Besides what `astropy.units.Unit` reads, this accepts the spellings common in
    solar and HST headers: ``'Gauss'``, ``'counts/s'``, ``'electrons'``, ``'ADU'``,
    ``'DN/s'``, ...

    Parameters
    ----------
    text : str or `~astropy.units.UnitBase`
        The unit.
    name : str, optional
        What the unit is called in error messages.

    Returns
    -------
    `~astropy.units.UnitBase`

    Raises
    ------
    ValueError
        If the unit cannot be understood.

    Examples
    --------
    >>> from tdrdenoise.io import parse_unit
    >>> parse_unit("Gauss")
    Unit("G")
    >>> parse_unit("counts/s")
    Unit("ct / s")
    """
    if isinstance(text, u.UnitBase):
        return text
    text = str(text).strip()
    candidates = [text, _UNIT_ALIASES.get(text.lower()),
                  CCDData.known_invalid_fits_unit_strings.get(text)]
    for candidate in candidates:
        if not candidate:
            continue
        for fmt in (None, "fits"):
            try:
                return u.Unit(candidate, format=fmt) if fmt else u.Unit(candidate)
            except (ValueError, TypeError):
                continue
    raise ValueError(f"{name}={text!r} is not a unit astropy understands; pass the unit "
                     "explicitly (unit='G', --unit 'ct/s', ...)")


def _is_2d_image(hdu):
    if not getattr(hdu, "is_image", False):
        return False
    header = hdu.header
    if header.get("NAXIS", 0) != 2:
        return False
    return all(header.get(f"NAXIS{i}", 0) > 0 for i in (1, 2))


def _find_hdu(hdul, hdu, path):
    """Index of the HDU to read: ``hdu`` if given, else the first 2-D image."""
    if hdu is not None:
        try:
            index = hdul.index_of(hdu)
            hdul[index]
        except (KeyError, IndexError):
            names = ", ".join(f"{i} ({h.name})" for i, h in enumerate(hdul))
            raise ValueError(f"{path} has no HDU {hdu!r}; it has {names}") from None
        if not _is_2d_image(hdul[index]):
            shape = getattr(hdul[index], "shape", None)
            raise ValueError(f"HDU {hdu!r} of {path} is not a 2-D image (shape {shape}); "
                             "pass hdu= (--hdu) naming one that is")
        return index
    for index, candidate in enumerate(hdul):
        if _is_2d_image(candidate) and candidate.name not in ("MASK", "UNCERT"):
            return index
    kinds = ", ".join(f"{i}: {type(h).__name__} {getattr(h, 'shape', '')}"
                      for i, h in enumerate(hdul))
    raise ValueError(f"{path} holds no 2-D image HDU ({kinds}); for a cube, cut out a 2-D "
                     "plane first")


def _clean_header(header, primary=None):
    """Header of the image HDU (plus primary cards it lacks), structure cards dropped."""
    out = fits.Header()
    for card in header.cards:
        key = card.keyword
        if key in _STRUCTURAL or (key.startswith("NAXIS") and key[5:].isdigit()):
            continue
        if key == "EXTNAME" and card.value == "COMPRESSED_IMAGE":
            continue
        out.append(card, end=True)
    if primary is not None:
        for card in primary.cards:
            key = card.keyword
            if key in _STRUCTURAL or key.startswith("NAXIS") or key in ("", "EXTNAME"):
                continue
            if key in ("COMMENT", "HISTORY"):
                out.append(card, end=True)
            elif key not in out:
                out.append(card, end=True)
    return out


def _wcs_from_header(header):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        warnings.simplefilter("ignore", UserWarning)
        try:
            wcs = WCS(header, naxis=2, fix=True)
        except Exception:  # broken WCS cards: keep the cards, drop the object
            return None
    return wcs if wcs.has_celestial or any(wcs.wcs.ctype) else None


def read_image(path, hdu=None, unit=None):
    """Read a 2-D image from a FITS file as a `~astropy.nddata.CCDData`.

    Parameters
    ----------
    path : str or path-like
        A FITS file (``.fits``, ``.fits.gz``, tile-compressed, ...).
    hdu : int or str, optional
        Index or name of the HDU holding the image. By default the first HDU with
        2-D image data is used: the primary HDU of ordinary files, HDU 1 of
        tile-compressed HMI/MDI files.
    unit : str or `~astropy.units.UnitBase`, optional
        Unit of the pixel values; overrides ``BUNIT``. Without it the unit is read
        from ``BUNIT`` (``'Gauss'``, ``'counts/s'`` and other common spellings are
        understood); a file without a readable ``BUNIT`` gets a dimensionless image
        and a `~tdrdenoise.TDRUserWarning`.

    Returns
    -------
    `~astropy.nddata.CCDData`
        The image, with every header card of its HDU (and of the primary header,
        for images in an extension) in ``meta``, the WCS, and the ``MASK`` and
        ``UNCERT`` extensions of files written in the CCDData layout (such as the
        output of :func:`write_image`).

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    OSError
        If it is not a readable FITS file.
    ValueError
        If the file holds no 2-D image, ``hdu`` does not name one, or ``unit``
        cannot be understood.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> from tdrdenoise.io import read_image
    >>> path = os.path.join(tempfile.mkdtemp(), "frame.fits")
    >>> fits.PrimaryHDU(np.zeros((20, 30), np.float32),
    ...                 fits.Header({"BUNIT": "Gauss", "TELESCOP": "SDO"})).writeto(path)
    >>> ccd = read_image(path)
    >>> ccd.shape, ccd.unit, ccd.meta["TELESCOP"]
    ((20, 30), Unit("G"), 'SDO')
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    try:
        hdul = fits.open(path, memmap=False)
    except Exception as exc:
        raise OSError(f"{path} is not a readable FITS file ({exc})") from None
    with hdul:
        index = _find_hdu(hdul, hdu, path)
        image_hdu = hdul[index]
        try:
            data = np.asarray(image_hdu.data)
        except Exception as exc:
            raise OSError(f"cannot read the data of HDU {index} of {path} ({exc})") from None
        data = data.astype(data.dtype.newbyteorder("="), copy=True)
        header = _clean_header(image_hdu.header, hdul[0].header if index > 0 else None)
        mask = uncertainty = None
        if "MASK" in hdul and hdul["MASK"].data is not None \
                and hdul["MASK"].data.shape == data.shape:
            mask = np.asarray(hdul["MASK"].data).astype(bool)
        if "UNCERT" in hdul and hdul["UNCERT"].data is not None \
                and hdul["UNCERT"].data.shape == data.shape:
            unc = np.asarray(hdul["UNCERT"].data)
            uncertainty = StdDevUncertainty(unc.astype(unc.dtype.newbyteorder("=")))
    if unit is not None:
        unit = parse_unit(unit, "unit")
    elif "BUNIT" in header and str(header["BUNIT"]).strip():
        try:
            unit = parse_unit(header["BUNIT"])
        except ValueError as exc:
            warnings.warn(f"{path}: {exc}; reading it as dimensionless", TDRUserWarning)
            unit = u.dimensionless_unscaled
    else:
        warnings.warn(f"{path} has no BUNIT card; reading it as dimensionless (pass "
                      "unit= to set one)", TDRUserWarning)
        unit = u.dimensionless_unscaled
    return CCDData(data, unit=unit, meta=header, wcs=_wcs_from_header(header), mask=mask,
                   uncertainty=uncertainty)


def _as_ccddata(image):
    """A CCDData view of a CCDData, NDData or sunpy Map, for writing."""
    if not (isinstance(image, NDData) or is_map(image)):
        raise TypeError(f"write_image needs a CCDData, NDData or sunpy Map; got "
                        f"{type(image).__name__} (wrap arrays in CCDData(data, unit=...))")
    return to_ccddata(image, skip=_STRUCTURAL)


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def write_image(image, path, overwrite=False, inputs=()):
    """Write an image in the CCDData FITS layout, atomically.

    The primary HDU holds the data and every header card (plus the WCS); the
    ``MASK`` extension the mask (as 0/1) and ``UNCERT`` the standard deviation, when
    the image has them, exactly as ``CCDData.write`` does, so
    ``CCDData.read(path)`` and :func:`read_image` give the image back. Every HDU
    carries ``CHECKSUM`` and ``DATASUM`` cards, so that a damaged copy is detected
    (``fits.open(path, checksum=True)`` warns, ``fitsverify`` reports it). The file is
    first written to a temporary file in the same folder and then renamed, so an
    interrupted run never leaves a half-written file under ``path``; without
    ``overwrite`` the rename is exclusive, so a file another process wrote under
    ``path`` meanwhile is never replaced.

    Parameters
    ----------
    image : `~astropy.nddata.CCDData`, `~astropy.nddata.NDData` or sunpy Map
        The image to write.
    path : str or path-like
        Output file.
    overwrite : bool, optional
        Replace an existing output file (never one of ``inputs``).
    inputs : sequence of path-like, optional
        Files that must never be replaced, such as the file ``image`` was read from.

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    FileExistsError
        If ``path`` exists (or was created by another process while writing) and
        ``overwrite`` is False.
    NotADirectoryError
        If the folder of ``path`` is a file.
    ValueError
        If ``path`` is one of ``inputs``.
    TypeError
        If ``image`` is not an image container.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from astropy.nddata import CCDData
    >>> from tdrdenoise.io import read_image, write_image
    >>> folder = tempfile.mkdtemp()
    >>> ccd = CCDData(np.ones((8, 8)), unit="adu", mask=np.eye(8, dtype=bool))
    >>> path = write_image(ccd, os.path.join(folder, "out.fits"))
    >>> back = read_image(path)
    >>> back.unit, int(back.mask.sum())
    (Unit("adu"), 8)
    """
    path = os.fspath(path)
    for protected in inputs or ():
        if _same_file(path, os.fspath(protected)):
            raise ValueError(f"refusing to write {path}: it is an input file; choose another "
                             "output folder or suffix")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to "
                              "replace it")
    ccd = _as_ccddata(image)
    hdul = ccd.to_hdu(hdu_mask="MASK", hdu_uncertainty="UNCERT")
    with atomic_open(path, overwrite=overwrite) as fh:
        hdul.writeto(fh, output_verify="silentfix", checksum=True)
    return path


def output_path(path, output_dir=None, suffix="_tdr"):
    """The output file name for an input file: ``output_dir/<stem><suffix>.fits``.

    Parameters
    ----------
    path : str or path-like
        Input file.
    output_dir : str or path-like, optional
        Output folder; by default the folder of ``path``.
    suffix : str, optional
        Added to the file name stem.

    Returns
    -------
    str

    Examples
    --------
    >>> from tdrdenoise.io import output_path
    >>> output_path("/data/hmi.m_45s.fits.gz", "out")
    'out/hmi.m_45s_tdr.fits'
    """
    path = os.fspath(path)
    name = os.path.basename(path)
    stem = name
    for ext in _FITS_SUFFIXES:
        if name.lower().endswith(ext):
            stem = name[:-len(ext)]
            break
    folder = os.path.dirname(path) if output_dir is None else os.fspath(output_dir)
    return os.path.join(folder, f"{stem}{suffix}.fits")
