"""Restore again, from files: a new R (and fill) for a denoised FITS file, no network.

:func:`restore_file` (the ``tdrdenoise restore`` command) reads a file written by
``tdrdenoise denoise`` (or :func:`~tdrdenoise.batch.denoise_files`) with ``R=inf`` and
its input, applies :func:`~tdrdenoise.restore` with another threshold, and writes a
new file: choosing R becomes a sweep of seconds instead of a denoising per value.
"""
import os

import numpy as np
from astropy.nddata import CCDData, StdDevUncertainty

from .prediction.noise import difference_noise
from .io.provenance import (DENOISE, FRACTION, RESTORE, cards, restore_record, restored_fraction,
                            write_cards)
from ._validate import (NoiseMultiple, check_fill, check_threshold, format_threshold,
                        threshold_value)
from .io.containers import unit_factor
from .io.provenance import DENOISE as RECORD_CARD  # noqa: F401  (importable here, as before)
from .io.provenance import FRACTION as FRACTION_CARD  # noqa: F401
from .io.images import read_image, write_image
from .restore import restore

__all__ = ["restore_file", "RESTORE_CARD"]

#: The card written by :func:`restore_file`: (key, long step name pointing to it);
#: defined with the other provenance keys in io/provenance.py.
RESTORE_CARD = RESTORE


def _check_unrestored(meta, path):
    """Refuse a denoised file whose own restore step already replaced pixels: the
    network's values of those pixels are not in it any more."""
    record = str(meta.get(DENOISE.key, ""))
    if not record:
        return  # not written by tdrdenoise: taken as the denoiser's values
    if RESTORE.key in meta:
        record = str(meta[RESTORE.key])
    elif record.startswith("R=inf,"):
        return
    if float(meta.get(FRACTION.key, 1.0)) > 0:
        raise ValueError(
            f"{path} was restored already ({record.split(', ')[0]}): the denoised values "
            "of its restored pixels are lost. Restore from a file denoised with R=inf "
            "('tdrdenoise denoise' without --R)")


def _noise(initial, invalid, noise):
    """(sigma, words): the noise of a raw pixel of ``initial``: its uncertainty (an
    array), else ``noise``, else the noise measured on it (neighbour differences)."""
    if initial.uncertainty is not None:
        unc = initial.uncertainty
        if not isinstance(unc, StdDevUncertainty):
            unc = unc.represent_as(StdDevUncertainty)
        return np.array(unc.array, dtype=float), "the input uncertainty"
    if noise is not None:
        return float(noise), "the model noise"
    return (difference_noise(np.asarray(initial.data, dtype=float), invalid),
            "the noise measured on the input")


def restore_file(denoised, initial, output, R, *, fill="initial", overwrite=False,
                 hdu=None, unit=None, noise=None):
    """Apply the restore step again to a denoised FITS file, without the network.

    The denoised file is one written by ``tdrdenoise denoise`` or
    :func:`~tdrdenoise.batch.denoise_files` with ``R=inf`` (the default: nothing
    restored, so every pixel still holds the network's value), or any FITS image of
    denoised values; ``initial`` is the input it was denoised from. Every pixel with
    ``|denoised - initial| > R`` is restored (see :func:`~tdrdenoise.restore`) and the
    result is written to ``output`` in the same CCDData layout:

    - the data: the denoised values, restored pixels filled per ``fill``; with
      ``R=0`` and ``fill="initial"`` the input values in the input's type, bit for bit;
    - ``MASK``: the denoised file's mask (invalid and extreme pixels) OR the restored
      pixels; those masked in the denoised file are left as they are;
    - ``UNCERT``: the denoised file's uncertainty, and for restored pixels the input's
      uncertainty, else the noise of a raw pixel (``noise``, or the noise measured on
      the input; a denoised file without ``UNCERT`` gets that noise everywhere);
    - the header: every card of the denoised file, ``TDRRFRAC`` updated, and a card
      ``TDRRESTO`` (pointed to by ``HIERARCH TDR_RESTORE``) with R, the fill and the
      two files, which supersedes the ``R=inf`` of ``TDRDENOI``.

    The file is written atomically; an existing ``output`` is replaced only with
    ``overwrite=True``, and never when it is one of the two inputs.

    Parameters
    ----------
    denoised, initial : str or path-like
        The denoised FITS file and the FITS file it was denoised from.
    output : str or path-like
        The file to write.
    R : float, array-like, `~astropy.units.Quantity` or `NoiseMultiple`
        The restore threshold in the image unit (as for
        :func:`~tdrdenoise.tdr_denoise`). ``NoiseMultiple(k)`` is ``k`` times the
        input's ``UNCERT`` extension where it has one, else ``k`` times ``noise``,
        else ``k`` times the noise measured on the input
        (:func:`~tdrdenoise.prediction.noise.difference_noise`, the estimator a model is
        trained with).
    fill : {"initial", "ambient"}, optional
        The value of restored pixels (see :func:`~tdrdenoise.restore`).
    overwrite : bool, optional
        Replace ``output`` if it exists.
    hdu : int or str, optional
        HDU of ``initial`` to read (by default the first 2-D image).
    unit : str or `~astropy.units.UnitBase`, optional
        Unit of ``initial``, overriding its ``BUNIT``.
    noise : float, optional
        Noise sigma of a raw pixel in the image unit (e.g. ``model.noise_sigma``),
        for ``NoiseMultiple`` and the uncertainty of restored pixels when the input has
        no uncertainty.

    Returns
    -------
    dict
        ``output``, ``restored_fraction`` (of the valid pixels), ``R`` (as recorded)
        and ``noise`` (where the raw-pixel noise came from, in words).

    Raises
    ------
    FileNotFoundError, OSError
        If a file cannot be read.
    FileExistsError
        If ``output`` exists and ``overwrite`` is False.
    ValueError
        If ``output`` is one of the inputs, the images' shapes differ, the denoised
        file was restored already (its restored pixels lost their denoised values),
        ``R`` is negative or of the wrong shape, or ``fill`` is unknown.
    astropy.units.UnitsError
        If the units of the files or of ``R`` do not match.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from astropy import units as u
    >>> from astropy.nddata import CCDData
    >>> from tdrdenoise.restore_files import restore_file
    >>> folder = tempfile.mkdtemp()
    >>> noisy = CCDData(np.array([[0.0, 1.0], [10.0, 2.0]]), unit="adu")
    >>> smooth = CCDData(np.array([[0.5, 1.0], [2.0, 2.0]]), unit="adu")
    >>> noisy.write(os.path.join(folder, "in.fits"))
    >>> smooth.write(os.path.join(folder, "den.fits"))
    >>> info = restore_file(os.path.join(folder, "den.fits"), os.path.join(folder, "in.fits"),
    ...                     os.path.join(folder, "out.fits"), 1 * u.adu)
    >>> info["restored_fraction"]
    0.25
    >>> CCDData.read(info["output"]).data.tolist()
    [[0.5, 1.0], [10.0, 2.0]]
    """
    fill = check_fill(fill)
    check_threshold(R, "R", noise_multiple=True)
    output = os.fspath(output)
    inputs = (os.fspath(denoised), os.fspath(initial))
    for path in inputs:
        if os.path.exists(output) and os.path.samefile(output, path):
            raise ValueError(f"refusing to write {output}: it is an input file; choose "
                             "another output name")
    if os.path.exists(output) and not overwrite:
        raise FileExistsError(f"{output} exists; pass overwrite=True (--overwrite) to "
                              "replace it")
    den = read_image(inputs[0])
    _check_unrestored(den.meta, inputs[0])
    ini = read_image(inputs[1], hdu=hdu, unit=unit)
    if den.shape != ini.shape:
        raise ValueError(f"{inputs[0]} has shape {den.shape} but {inputs[1]} has shape "
                         f"{ini.shape}; give the input the denoised file was made from")
    den_values = np.asarray(den.data)
    if den.unit != ini.unit:
        den_values = den_values * unit_factor(
            den.unit, ini.unit, inputs[0], "{name} is in '{unit}', which cannot be converted "
            f"to the unit of {inputs[1]} ('{{to}}')")
    ini_data = np.asarray(ini.data)
    invalid = ~np.isfinite(ini_data)
    if ini.mask is not None:
        invalid |= ini.mask
    held = invalid | ~np.isfinite(den_values)
    if den.mask is not None:
        held |= den.mask
    sigma, words = _noise(ini, invalid, noise)
    if isinstance(R, NoiseMultiple):
        threshold = R.factor * sigma
        recorded = f"{R} of {words} ({format_threshold(threshold, ini.unit)})"
    else:
        threshold = threshold_value(R, ini.unit, shape=ini.shape)
        recorded = format_threshold(threshold, ini.unit)
    restored, restored_mask = restore(ini_data, np.where(held, np.nan, den_values),
                                      threshold, fill=fill)
    restored_mask &= ~held
    # pixels held out of the denoising (invalid, masked) stay as the denoised file has them
    data = np.where(held, den_values, restored)
    if np.array_equal(data, ini_data, equal_nan=True):  # R=0: the input, in its type
        data = ini_data.copy()
    else:
        data = data.astype(np.result_type(ini_data.dtype, np.float32), copy=False)
    mask = held | restored_mask
    # restored pixels: the error of a raw pixel; the others the denoised file's
    raw = np.broadcast_to(sigma, ini.shape)
    base = np.array(den.uncertainty.array, float) if den.uncertainty is not None else raw
    unc = StdDevUncertainty(np.where(restored_mask, raw, base).astype(data.dtype))
    meta = den.meta.copy()
    fraction = restored_fraction(restored_mask, ~held)
    # the TDRRESTO card is not optional: it is what keeps a later restore_file from
    # taking this file's restored pixels for denoised values (_check_unrestored)
    write_cards(meta, cards(True, restore_record(R=recorded, fill=fill, denoised=inputs[0],
                                                 initial=inputs[1]),
                            fraction, step=RESTORE))
    result = CCDData(data, unit=ini.unit, mask=mask, uncertainty=unc, meta=meta,
                     wcs=den.wcs if den.wcs is not None else ini.wcs)
    write_image(result, output, overwrite=overwrite, inputs=inputs)
    return {"output": output, "restored_fraction": fraction, "R": recorded,
            "noise": words}
