"""Model files: write, read, checksum and validate trained TDR models.

A model file (conventionally ``*.tdr``) is a `torch.save` archive of a dict holding
the weights (``state_dict``), the metadata needed to use them (architecture,
normalisation, unit, training history, versions), since file format 2 a SHA-256
``checksum`` over all of it and, since format 3, the distilled student
(``student``: its width; ``student_state_dict``: its weights; both None without
one). :func:`load` refuses a file whose checksum does not match,
whose metadata fail their type and range checks, or whose weights or normalisation
are not finite. Format-1 files (no checksum) still load, with a warning.
"""
import copy
import hashlib
import io
import json
import math
import os
import warnings

import torch
from astropy import units as u

from . import __version__
from ._normalization import OUTLIER_THRESHOLD, TRANSFORM, check_normalization
from .utils import TDRUserWarning, atomic_open, resolve_device

__all__ = ["FILE_FORMAT_VERSION", "save", "load", "to_bytes", "from_bytes",
           "payload_checksum", "header_name"]

#: Version of the model file layout; files with a newer one are refused.
FILE_FORMAT_VERSION = 3
FILE_MAGIC = "tdrdenoise-model"
_ARCHITECTURE = "self2self-unet"


def header_name(path):
    r"""How a header record names the model file at ``path``: its base name, in
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


def payload_checksum(payload):
    """SHA-256 (hex) of a model file's metadata and weights, without its checksum.

    Parameters
    ----------
    payload : dict
        The dict stored in a model file.

    Returns
    -------
    str

    Examples
    --------
    >>> import torch
    >>> from tdrdenoise.model_io import payload_checksum
    >>> len(payload_checksum({"format": "x", "state_dict": {"w": torch.zeros(2)}}))
    64
    """
    weights = ("state_dict", "student_state_dict")
    meta = {k: v for k, v in payload.items() if k not in weights + ("checksum",)}
    digest = hashlib.sha256(json.dumps(meta, sort_keys=True, default=repr).encode())
    for key in weights:
        prefix = "" if key == "state_dict" else "student:"
        for name, tensor in sorted((payload.get(key) or {}).items()):
            tensor = tensor.detach().cpu().contiguous()
            digest.update(f"{prefix}{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def _payload(model):
    """The dict written to a model file, checked and with its checksum."""
    model.check_fitted("save")
    from ._training import check_weights
    try:
        check_normalization(model.normalization, "the model")
        check_weights(model.network, "the model")
        if model.student is not None:
            check_weights(model.student, "the model's student")
    except FloatingPointError as exc:
        raise ValueError(f"{exc}; a model with non-finite weights is not saved") from None
    payload = {
        "format": FILE_MAGIC,
        "format_version": FILE_FORMAT_VERSION,
        "tdrdenoise_version": __version__,
        "torch_version": str(torch.__version__),
        "architecture": dict(model.architecture),
        "keep_prob": model.keep_prob,
        "patch_size": model.patch_size,
        "batch_size": model.batch_size,
        "learning_rate": model.learning_rate,
        "normalization": dict(model.normalization),
        "unit": None if model.unit is None else model.unit.to_string(),
        "history": copy.deepcopy(model.history),
        "state_dict": {k: v.detach().cpu() for k, v in model.network.state_dict().items()},
        "student": None,
        "student_state_dict": None,
    }
    if model.student is not None:
        payload["student"] = {"width": int(model.student.width),
                              "head": int(model.student.head)}
        payload["student_state_dict"] = {k: v.detach().cpu() for k, v in
                                         model.student.state_dict().items()}
    payload["checksum"] = payload_checksum(payload)
    return payload


def to_bytes(model):
    """The model file of ``model`` as bytes (to ship it to other processes).

    Parameters
    ----------
    model : `~tdrdenoise.TDRModel`
        A trained model.

    Returns
    -------
    bytes

    Raises
    ------
    RuntimeError
        If the model is not trained.
    ValueError, FloatingPointError
        If its normalisation or weights are not finite.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise import TDRModel
    >>> from tdrdenoise.model_io import from_bytes, to_bytes
    >>> model = TDRModel(device="cpu").fit(np.random.default_rng(0).normal(size=(32, 32)),
    ...                                    steps=1, seed=0, progress=False)
    >>> from_bytes(to_bytes(model), device="cpu").fingerprint == model.fingerprint
    True
    """
    buffer = io.BytesIO()
    torch.save(_payload(model), buffer)
    return buffer.getvalue()


def save(model, path, *, overwrite=False):
    """Write ``model`` to ``path``, atomically (see :meth:`TDRModel.save`).

    With ``overwrite=False`` the file is created exclusively (a hard link from the
    complete temporary file): a file another process writes under ``path`` meanwhile
    is kept, and `FileExistsError` raised, never a silent replacement. Once the model
    is written, the training checkpoint of the :meth:`~tdrdenoise.TDRModel.fit` that
    made it (kept until then, so that a failed save loses no training) is removed.

    Parameters
    ----------
    model : `~tdrdenoise.TDRModel`
    path : str or path-like
    overwrite : bool, optional
        Replace an existing file.

    Raises
    ------
    FileExistsError
        If ``path`` exists, or was created by another process while writing, and
        ``overwrite`` is False (a subclass of `OSError`).
    PermissionError, OSError
        If the file cannot be written; the model and its checkpoint are kept.
    ValueError, FloatingPointError
        If the model's normalisation or weights are not finite.

    Examples
    --------
    See :meth:`tdrdenoise.TDRModel.save`.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    data = to_bytes(model)
    with atomic_open(path, overwrite=overwrite) as fh:
        fh.write(data)
    model.path = path
    checkpoint = getattr(model, "pending_checkpoint", None)
    if checkpoint is not None:
        model.pending_checkpoint = None
        if os.path.isfile(checkpoint) and not _same_file(checkpoint, path):
            os.unlink(checkpoint)  # the model itself is now what to keep


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def load(path, *, device="auto"):
    """Read a model file written by :func:`save` (see :meth:`TDRModel.load`).

    Parameters
    ----------
    path : str or path-like
    device : str or `torch.device`, optional

    Returns
    -------
    `~tdrdenoise.TDRModel`

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        If the file is not a readable model, fails its checksum or its metadata
        checks, or was written by a newer file format.

    Examples
    --------
    See :meth:`tdrdenoise.TDRModel.save`.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no model file at {path}")
    with open(path, "rb") as fh:
        data = fh.read()
    model = from_bytes(data, device=device, source=path)
    model.path = path
    return model


def from_bytes(data, *, device="auto", source="the model data"):
    """Rebuild a model from the bytes of :func:`to_bytes` (or of a model file).

    Parameters
    ----------
    data : bytes
    device : str or `torch.device`, optional
        Where to put the network (``"auto"``: CUDA when present).
    source : str, optional
        Name of the data in error messages (a file name).

    Returns
    -------
    `~tdrdenoise.TDRModel`

    Raises
    ------
    ValueError
        As :func:`load`.

    Examples
    --------
    See :func:`to_bytes`.
    """
    device = resolve_device(device)
    try:
        payload = torch.load(io.BytesIO(bytes(data)), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds on garbage
        raise ValueError(f"{source} is not a readable tdrdenoise model file (corrupt or "
                         f"of another kind): {type(exc).__name__}") from None
    if not isinstance(payload, dict) or payload.get("format") != FILE_MAGIC:
        raise ValueError(f"{source} is not a tdrdenoise model file")
    version = payload.get("format_version")
    if type(version) is not int or version < 1:
        raise ValueError(f"{source} has missing or malformed metadata: format_version is "
                         f"{version!r}, not a known file format; it was altered")
    if version > FILE_FORMAT_VERSION:
        raise ValueError(
            f"{source} uses model file format {version!r}, written by tdrdenoise "
            f"{payload.get('tdrdenoise_version')}; this is tdrdenoise {__version__}, "
            f"which reads format {FILE_FORMAT_VERSION} and older: upgrade tdrdenoise")
    if version >= 2:
        if payload.get("checksum") != payload_checksum(payload):
            raise ValueError(f"{source}: checksum mismatch: the file is corrupt or was "
                             "altered; train the model again or use a good copy")
    else:
        warnings.warn(f"{source} is a format-1 model file, which has no checksum: its "
                      "integrity cannot be verified; save it again to add one",
                      TDRUserWarning)
    fields = validate_metadata(payload, source)
    from .model import TDRModel
    model = TDRModel(device=device, **fields["constructor"])
    try:
        model.network.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{source}: the weights do not match the recorded "
                         f"architecture ({exc})") from None
    from ._training import check_weights
    try:
        check_weights(model.network, source)
    except FloatingPointError as exc:
        raise ValueError(str(exc)) from None
    model.network.to(model.device)
    model.student = _load_student(payload, fields["student"], source, model.device)
    if model.student is not None:
        model.student_width = model.student.width
    model.normalization = fields["normalization"]
    model.outlier_threshold = fields["normalization"]["outlier_threshold"]
    model.bright_threshold = fields["normalization"]["bright_threshold"]
    model.pixel_shuffle = fields["normalization"]["pixel_shuffle"]
    model.unit = fields["unit"]
    model.history = fields["history"]
    return model


def _load_student(payload, config, source, device):
    """The student of a model file's dict (None if it has none)."""
    if config is None:
        return None
    from ._training import check_weights
    from .network import StudentUNet
    student = StudentUNet(**config)
    try:
        student.load_state_dict(payload.get("student_state_dict"))
        check_weights(student, f"{source} (student)")
    except (RuntimeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{source}: the student's weights do not match its recorded "
                         f"architecture ({exc})") from None
    except FloatingPointError as exc:
        raise ValueError(str(exc)) from None
    return student.to(device).eval()


def _fail(source, what):
    raise ValueError(f"{source} has missing or malformed metadata ({what}); it was not "
                     "written by TDRModel.save or was altered")


def _number(payload, key, source, low=None, high=None, integer=False):
    value = payload.get(key)
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
        _fail(source, f"{key} must be a{'n integer' if integer else ' number'}; got {value!r}")
    if (low is not None and not value > low) or (high is not None and not value < high):
        _fail(source, f"{key}={value!r} is out of range")
    return value


def validate_metadata(payload, source="the model data"):
    """Check every metadata field of a model file's dict by type and range.

    Parameters
    ----------
    payload : dict
        The dict stored in a model file.
    source : str, optional
        Its name in error messages.

    Returns
    -------
    dict
        ``constructor`` (keyword arguments of `~tdrdenoise.TDRModel`),
        ``normalization``, ``unit``, ``history`` and ``student`` (the student's
        settings, or None).

    Raises
    ------
    ValueError
        Naming the first field that is missing or malformed.

    Examples
    --------
    >>> from tdrdenoise.model_io import validate_metadata
    >>> validate_metadata({"architecture": None})
    Traceback (most recent call last):
    ...
    ValueError: the model data has missing or malformed metadata (architecture ...
    """
    arch = payload.get("architecture")
    if not isinstance(arch, dict):
        _fail(source, f"architecture must be a dict; got {arch!r}")
    if arch.get("name") != _ARCHITECTURE:
        raise ValueError(f"{source} holds an unknown architecture {arch.get('name')!r}")
    _number(arch, "width", source, low=0, integer=True)
    if _number(arch, "dropout", source, high=1) < 0:
        _fail(source, f"dropout={arch['dropout']!r} is out of range")
    constructor = {
        "width": arch["width"], "dropout": arch["dropout"],
        "keep_prob": _number(payload, "keep_prob", source, low=0, high=1),
        "patch_size": _number(payload, "patch_size", source, low=0, integer=True),
        "batch_size": _number(payload, "batch_size", source, low=0, integer=True),
        "learning_rate": _number(payload, "learning_rate", source, low=0),
    }
    norm = payload.get("normalization")
    if not isinstance(norm, dict):
        _fail(source, f"normalization must be a dict; got {norm!r}")
    norm = dict(norm)
    norm.setdefault("transform", TRANSFORM)                 # format 1
    norm.setdefault("outlier_threshold", OUTLIER_THRESHOLD)
    norm.setdefault("bright_threshold", float("inf"))      # files of tdrdenoise < 0.2
    norm.setdefault("pixel_shuffle", 1)
    norm.setdefault("impulse_noise", False)
    norm.setdefault("impulse_only", False)
    try:
        check_normalization(norm, source)
    except ValueError as exc:
        _fail(source, str(exc))
    unit = payload.get("unit")
    if unit is not None:
        if not isinstance(unit, str):
            _fail(source, f"unit must be a string or None; got {unit!r}")
        try:
            unit = u.Unit(unit)
        except ValueError:
            _fail(source, f"unit {unit!r} is not a unit astropy understands")
    history = payload.get("history")
    if not isinstance(history, list) or not all(isinstance(h, dict) and
                                                isinstance(h.get("steps"), int)
                                                for h in history):
        _fail(source, "history must be a list of dicts with 'steps'")
    if not isinstance(payload.get("state_dict"), dict):
        _fail(source, "state_dict is missing")
    student = payload.get("student")                        # formats 1 and 2: none
    if student is not None:
        if not isinstance(student, dict) or set(student) != {"width", "head"}:
            _fail(source, f"student must be None or a dict of width and head; got {student!r}")
        student = {key: _number(student, key, source, low=1, integer=True)
                   for key in ("width", "head")}
        if not isinstance(payload.get("student_state_dict"), dict):
            _fail(source, "student_state_dict is missing")
    return {"constructor": constructor, "normalization": norm, "unit": unit,
            "history": copy.deepcopy(history), "student": student}
