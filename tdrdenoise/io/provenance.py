"""Provenance: the header cards tdrdenoise writes, in one place.

The keys (:data:`DENOISE`, :data:`FRACTION`, :data:`RESTORE`), how a step's record is
written from what it was called with (:func:`denoise_record`, :func:`restore_record`),
what ``add_keyword`` asks for (:func:`cards`, as ccdproc's ``log_to_metadata``) and
how cards go into a header or a meta dict (:func:`write_cards`). A new option of a
step is recorded by adding it to that step's table here (:data:`DENOISE_OPTIONS`), not
by editing the step.

Like ccdproc, a step name too long for a FITS key (``tdr_denoise``) is written as a
``HIERARCH`` card pointing to the short key that holds the record (``TDRDENOI``).
"""
import os
from collections import namedtuple

from astropy.io import fits

__all__ = ["Card", "DENOISE", "FRACTION", "RESTORE", "DENOISE_OPTIONS", "header_name",
           "check_add_keyword", "cards", "write_cards", "denoise_record",
           "restore_record", "restored_fraction"]

#: A provenance card: the FITS key that holds the record and the step name that
#: points to it (``HIERARCH TDR_DENOISE = 'TDRDENOI'`` in FITS headers).
Card = namedtuple("Card", ["key", "long_name"])

#: The record of :func:`~tdrdenoise.tdr_denoise` (R, model, method, noise).
DENOISE = Card("TDRDENOI", "tdr_denoise")
#: The fraction of the valid pixels that were restored.
FRACTION = Card("TDRRFRAC", "tdr_restored_fraction")
#: The record of :func:`~tdrdenoise.restore_files.restore_file` (R, fill, files).
RESTORE = Card("TDRRESTO", "tdr_restore")

#: Options of tdr_denoise recorded only when they differ from their default, in this
#: order, as ``name=value``.
DENOISE_OPTIONS = (("calibrate", True), ("refine", True), ("fill", "initial"))


def header_name(path):
    r"""How a header record names the file at ``path``: its base name, in
    printable ASCII.

    The folder is left out (a header must not leak local paths); characters outside
    printable ASCII, which FITS header values cannot hold, become backslash escapes
    (``\xe9``, ``\u00e9``). A model without a file is ``"in-memory"``.

    Parameters
    ----------
    path : str, path-like or None
        The model file (``TDRModel.path``).

    Returns
    -------
    str

    Examples
    --------
    >>> from tdrdenoise.model_io import header_name
    >>> header_name("/home/me/données/hmi model.tdr")
    'hmi model.tdr'
    >>> header_name("/data/modèle.tdr")
    'mod\\xe8le.tdr'
    >>> header_name(None)
    'in-memory'
    """
    if not path:
        return "in-memory"
    name = os.path.basename(os.fsdecode(path).replace("\\", "/").rstrip("/")) or "in-memory"
    return "".join(c if " " <= c <= "~" else c.encode("unicode_escape").decode("ascii")
                   for c in name)


def _user_cards(add_keyword, record):
    """The (key, value, long_name) cards of an ``add_keyword`` other than True, False
    and None; TypeError or ValueError for one of another kind."""
    if isinstance(add_keyword, str):
        if not add_keyword.strip():
            raise ValueError("add_keyword must be a non-empty key name; got ''")
        return [(add_keyword, record, None)]
    if isinstance(add_keyword, dict):
        return [(str(k), v, None) for k, v in add_keyword.items()]
    if hasattr(add_keyword, "keyword") and hasattr(add_keyword, "value"):  # fits.Card
        return [(add_keyword.keyword, add_keyword.value, None)]
    if hasattr(add_keyword, "name") and hasattr(add_keyword, "value"):  # ccdproc.Keyword
        return [(add_keyword.name, add_keyword.value, None)]
    raise TypeError("add_keyword must be True, False, a key name (str), a dict, a "
                    "ccdproc.Keyword or an astropy.io.fits.Card; got "
                    f"{type(add_keyword).__name__}")


def check_add_keyword(add_keyword):
    """Raise TypeError or ValueError, before any work, for an ``add_keyword`` that
    :func:`cards` would refuse."""
    if add_keyword is None or isinstance(add_keyword, bool):
        return
    _user_cards(add_keyword, "")


def cards(add_keyword, record, fraction, step=DENOISE):
    """The (key, value, long_name) cards that ``add_keyword`` asks for, ccdproc-style.

    True: ``step``'s record and the restored fraction. False or None: no card. A str:
    the record under that key. A dict, ``ccdproc.Keyword`` or ``astropy.io.fits.Card``:
    the user's card(s) instead of the record. The fraction (rounded to 6 digits) is
    written unless ``add_keyword`` is False or None.

    Examples
    --------
    >>> from tdrdenoise.io.provenance import cards
    >>> cards(True, "R=inf", 0.25)
    [('TDRDENOI', 'R=inf', 'tdr_denoise'), ('TDRRFRAC', 0.25, 'tdr_restored_fraction')]
    >>> cards("DENOISED", "R=inf", 0.25)[0]
    ('DENOISED', 'R=inf', None)
    >>> cards(False, "R=inf", 0.25)
    []
    """
    if add_keyword is None or add_keyword is False:
        return []
    fraction_card = (FRACTION.key, round(fraction, 6), FRACTION.long_name)
    if add_keyword is True:
        return [(step.key, record, step.long_name), fraction_card]
    return _user_cards(add_keyword, record) + [fraction_card]


def write_cards(meta, new_cards, history=False):
    """Write ``new_cards`` ((key, value, long_name), as :func:`cards` gives them) into
    ``meta``, the way ccdproc does.

    In a `~astropy.io.fits.Header`, ``long_name`` (a step name longer than FITS allows)
    points to ``key`` through a ``HIERARCH`` card, and keys longer than 8 characters
    become HIERARCH cards. With ``history`` (sunpy Maps) each card also gets a
    ``history`` line ``long_name: value``.
    """
    for key, value, long_name in new_cards:
        if isinstance(meta, fits.Header):
            if long_name:
                meta[f"HIERARCH {long_name.upper()}"] = (key,
                                                         "Shortened name for tdrdenoise step")
            meta[f"HIERARCH {key}" if len(key) > 8 else key] = value
        else:
            meta[key] = value
        if history:
            old = meta.get("history", "")
            meta["history"] = (old + "\n" if old else "") + f"{long_name or key}: {value}"


def denoise_record(*, R, model_name, fingerprint, method, n_predictions, fine_tune_steps,
                   seed, noise, **options):
    """The ``TDRDENOI`` record of a tdr_denoise call.

    Parameters
    ----------
    R : str
        The threshold as recorded (``format_threshold``).
    model_name, fingerprint : str
        The model file (:func:`header_name`) and its weights' fingerprint.
    method : {"student", "ensemble"}
        The method that ran; the ensemble's ``n_predictions``, ``fine_tune_steps`` and
        ``seed`` are recorded with it.
    noise : str
        The model's noise description (short form).
    **options
        The options of :data:`DENOISE_OPTIONS`; those at their default are left out.

    Examples
    --------
    >>> from tdrdenoise.io.provenance import denoise_record
    >>> denoise_record(R="inf", model_name="m.tdr", fingerprint="abc", method="student",
    ...                n_predictions=None, fine_tune_steps=None, seed=None,
    ...                noise="noise=white", calibrate=True, refine=False, fill="initial")
    'R=inf, model=m.tdr, fingerprint=abc, method=student, refine=False, noise=white'
    """
    settings = ("method=student" if method == "student" else
                f"n_predictions={n_predictions}, fine_tune_steps={fine_tune_steps}, "
                f"seed={seed}")
    for name, default in DENOISE_OPTIONS:
        if options[name] != default:
            settings += f", {name}={options[name]}"
    return f"R={R}, model={model_name}, fingerprint={fingerprint}, {settings}, {noise}"


def restore_record(*, R, fill, denoised, initial):
    """The ``TDRRESTO`` record of a restore_file call (the files by :func:`header_name`).

    Examples
    --------
    >>> from tdrdenoise.io.provenance import restore_record
    >>> restore_record(R="0.3 G", fill="initial", denoised="/d/a_tdr.fits",
    ...                initial="/d/a.fits")
    'R=0.3 G, fill=initial, denoised=a_tdr.fits, input=a.fits'
    """
    return (f"R={R}, fill={fill}, denoised={header_name(denoised)}, "
            f"input={header_name(initial)}")


def restored_fraction(restored_mask, usable):
    """The fraction of the ``usable`` pixels (those with a value) that were restored."""
    return float(restored_mask.sum()) / max(int(usable.sum()), 1)
