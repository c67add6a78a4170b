"""Model files: write, read, checksum and validate trained TDR models.

A model file (conventionally ``*.tdr``) is, since file format 4, a `safetensors
<https://huggingface.co/docs/safetensors>`_ file: a JSON header, then the tensors by
name (``network.<name>``: the weights; ``student.<name>``: those of the distilled
student, if any). The header's ``__metadata__`` holds one entry, ``tdrdenoise``: a
JSON text of the metadata needed to use the weights (``format``:
``"tdrdenoise-model"``, ``format_version``, architecture, normalisation, unit,
training history, versions, the student's settings) with a SHA-256 ``checksum`` over
the metadata and the weights. The same model always gives the same bytes.
Reading one runs no code: the header is parsed as JSON, the file size and every
metadata field are checked against their bounds, and the tensor shapes are compared
with those of the recorded architecture before anything is allocated.

What the checksum does and does not do: it detects accidental damage (a truncated
copy, flipped bits, a metadata field edited by hand). It is not a signature: anyone
can change a file and recompute it. To know that a shared model is the one its
author published, compare the SHA-256 of the whole file with the one the author gave
(``TDRModel.load(path, sha256=...)``, ``sha256sum model.tdr``).

Files of formats 1 to 3 (`torch.save` archives, tdrdenoise 0.1) still load, through
``torch.load(weights_only=True)``, with a deprecation warning; :func:`convert` (or
``TDRModel.load(old).save(new)``) converts them to format 4::

    python -c "from tdrdenoise.model_io import convert; print(convert('old.tdr', 'new.tdr'))"
"""
import copy
import hashlib
import io
import json
import math
import os
import warnings
from dataclasses import dataclass

import torch
from astropy import units as u
from astropy.utils.exceptions import AstropyDeprecationWarning

from . import _builders
from .prediction.normalization import OUTLIER_THRESHOLD, TRANSFORM, check_normalization
from .io.provenance import header_name  # noqa: F401  (public here, as before)
from .training.self2self import check_weights
from ._validate import (MAX_BATCH_SIZE, MAX_PATCH_SIZE, MAX_STUDENT_HEAD, MAX_STUDENT_WIDTH,
                        MAX_WIDTH)
from .training.network import SelfToSelfUNet, StudentUNet
from .utils import TDRUserWarning, atomic_open, resolve_device
from .version import __version__

__all__ = ["FILE_FORMAT_VERSION", "save", "load", "to_bytes", "from_bytes", "convert",
           "file_sha256", "payload_checksum", "header_name", "encode_payload",
           "decode_payload", "ModelState", "read_state", "state_from_bytes",
           "load_weights", "build_student"]

#: Version of the model file layout; files with a newer one are refused.
FILE_FORMAT_VERSION = 4
FILE_MAGIC = "tdrdenoise-model"
_ARCHITECTURE = "self2self-unet"

#: Bounds of a model file, checked before anything is allocated: the size of the file
#: and of its JSON header (bytes); those of the widths of the network and of the
#: student, the student's head, the patch and batch sizes (``MAX_WIDTH``...) are the
#: bounds of :class:`~tdrdenoise.TDRModel`'s settings, defined in
#: :mod:`tdrdenoise._validate`. A width-48 model takes about 4 MiB and a width-512 one
#: about 400 MiB.
MAX_FILE_BYTES = 1 << 30
MAX_HEADER_BYTES = 16 << 20

_SAFETENSORS_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16",
                       torch.bfloat16: "BF16", torch.int64: "I64", torch.int32: "I32",
                       torch.uint8: "U8", torch.bool: "BOOL"}
_WEIGHTS = {"state_dict": "network.", "student_state_dict": "student."}


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
    try:  # what load would refuse is never written (settings changed after __init__)
        validate_metadata(payload, "the model")
    except ValueError as exc:
        raise ValueError(f"this model cannot be saved: {getattr(exc, 'what', exc)}, "
                         "which a model file "
                         "cannot hold (TDRModel.load would refuse it); build the model "
                         "with settings within the bounds and train it again") from None
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
    return encode_payload(_payload(model))


def encode_payload(payload):
    """The bytes of a format-4 (safetensors) model file holding ``payload``.

    Parameters
    ----------
    payload : dict
        Metadata, ``checksum`` and the ``state_dict`` and ``student_state_dict``
        weights (the latter None without a student), as a model file holds them.

    Returns
    -------
    bytes

    Examples
    --------
    >>> import torch
    >>> from tdrdenoise.model_io import decode_payload, encode_payload
    >>> data = encode_payload({"format": "tdrdenoise-model", "format_version": 4,
    ...                        "state_dict": {"w": torch.ones(2)},
    ...                        "student_state_dict": None})
    >>> decode_payload(data)["state_dict"]["w"]
    tensor([1., 1.])
    """
    from safetensors.torch import save as save_tensors

    meta = {k: v for k, v in payload.items() if k not in _WEIGHTS}
    tensors = {}
    for key, prefix in _WEIGHTS.items():
        for name, tensor in (payload.get(key) or {}).items():
            tensors[prefix + name] = tensor.detach().cpu().contiguous()
    # one metadata entry: safetensors writes several in no fixed order, and the same
    # model must give the same bytes (and SHA-256) every time; strict JSON (no bare
    # Infinity or NaN, which many readers refuse)
    text = json.dumps(_encode_nonfinite(meta), sort_keys=True, allow_nan=False)
    return save_tensors(tensors, metadata={"tdrdenoise": text})


#: How the metadata JSON writes the floats JSON has no literal for.
_NONFINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def _encode_nonfinite(value):
    """``value`` with every non-finite float written as the string "inf", "-inf" or
    "nan" (a string of those in the metadata itself could not be told apart: refused)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str) and value in _NONFINITE:
        raise ValueError(f"the metadata value {value!r} cannot be written to a model file "
                         "(it stands for a non-finite number there)")
    if isinstance(value, dict):
        return {k: _encode_nonfinite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode_nonfinite(v) for v in value]
    return value


def _decode_nonfinite(value):
    """The inverse of :func:`_encode_nonfinite` (bare ``Infinity`` and ``NaN``, which
    the first format-4 files hold, are read by ``json.loads`` itself)."""
    if isinstance(value, str):
        return _NONFINITE.get(value, value)
    if isinstance(value, dict):
        return {k: _decode_nonfinite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_nonfinite(v) for v in value]
    return value


def _is_legacy(data):
    """A torch.save archive (zip) or an older torch pickle (formats 1 to 3), not a
    safetensors file (an 8-byte header size, then the JSON header)."""
    if len(data) > 9 and bytes(data[8:9]) == b"{" \
            and int.from_bytes(bytes(data[:8]), "little") <= len(data) - 8:
        return False
    return bytes(data[:4]) == b"PK\x03\x04" or bytes(data[:1]) == b"\x80"


def _read_header(data, source):
    """(metadata dict, {key: {name: (dtype, shape)}}) of a format-4 file, from its JSON
    header alone; nothing else of the file is read."""
    def refuse(why):
        raise ValueError(f"{source} is not a readable tdrdenoise model file ({why})")

    if len(data) < 8:
        refuse("too short")
    size = int.from_bytes(bytes(data[:8]), "little")
    if not 2 <= size <= min(MAX_HEADER_BYTES, len(data) - 8):
        refuse(f"a header of {size} bytes")
    try:
        header = json.loads(bytes(data[8:8 + size]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        refuse("its header is not JSON")
    except RecursionError:  # arrays or objects nested thousands deep
        refuse("its header is nested too deeply")
    if not isinstance(header, dict) or not isinstance(header.get("__metadata__"), dict):
        refuse("no metadata")
    info = header.pop("__metadata__")
    try:
        meta = _decode_nonfinite(json.loads(info.get("tdrdenoise")))
    except (TypeError, ValueError, RecursionError):
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FILE_MAGIC:
        raise ValueError(f"{source} is not a tdrdenoise model file")
    shapes = {key: {} for key in _WEIGHTS}
    for name, entry in header.items():
        key = next((k for k, prefix in _WEIGHTS.items() if name.startswith(prefix)), None)
        if key is None or not isinstance(entry, dict) or not isinstance(
                entry.get("shape"), list):
            _fail(source, f"unexpected tensor {name!r}")
        shapes[key][name[len(_WEIGHTS[key]):]] = (entry.get("dtype"), tuple(entry["shape"]))
    return meta, shapes


def decode_payload(data, source="the model data"):
    """The payload dict of a format-4 model file's bytes, without any check of its
    metadata (see :func:`from_bytes` for the checked way in).

    Parameters
    ----------
    data : bytes
    source : str, optional
        Name of the data in error messages.

    Returns
    -------
    dict

    Raises
    ------
    ValueError
        If ``data`` are not a format-4 model file.

    Examples
    --------
    See :func:`encode_payload`.
    """
    meta, _ = _read_header(data, source)
    return _decode(data, meta, source)


def _decode(data, meta, source):
    """The payload of a format-4 file's bytes whose header gave ``meta``."""
    from safetensors.torch import load as load_tensors

    try:
        tensors = load_tensors(bytes(data))
    except Exception as exc:  # safetensors raises its own kinds on damaged data
        raise ValueError(f"{source} is not a readable tdrdenoise model file (corrupt): "
                         f"{type(exc).__name__}") from None
    payload = dict(meta)
    for key, prefix in _WEIGHTS.items():
        part = {name[len(prefix):]: t for name, t in tensors.items() if name.startswith(prefix)}
        payload[key] = part if (part or key == "state_dict") else None
    return payload


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
        If the file cannot be written; the model and its checkpoint are kept. (A
        checkpoint that cannot be removed once the model is written gives a
        `~tdrdenoise.TDRUserWarning`, not an error.)
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
            try:
                os.unlink(checkpoint)  # the model itself is now what to keep
            except OSError as exc:  # the model is written: that is what counts
                warnings.warn(f"the model was saved to {path}, but its training "
                              f"checkpoint {checkpoint} could not be removed "
                              f"({exc.strerror or exc}); delete it yourself",
                              TDRUserWarning)


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def load(path, *, device="auto", sha256=None):
    """Read a model file written by :func:`save` (see :meth:`TDRModel.load`).

    Parameters
    ----------
    path : str or path-like
    device : str or `torch.device`, optional
    sha256 : str, optional
        The SHA-256 (64 hexadecimal digits) the whole file must have, as given by
        whoever shared it (``sha256sum model.tdr``); a file that differs is refused.

    Returns
    -------
    `~tdrdenoise.TDRModel`

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        If the file is larger than ``MAX_FILE_BYTES``, is not a readable model,
        differs from ``sha256``, fails its checksum or its metadata checks, or was
        written by a newer file format.

    Examples
    --------
    See :meth:`tdrdenoise.TDRModel.save`.
    """
    device = resolve_device(device)  # a bad device fails before the file is read
    return _build(read_state(path, sha256=sha256), device)


def read_state(path, *, sha256=None):
    """The checked content of the model file at ``path``, as plain state.

    What :func:`load` reads, before any network is built: every check of
    :func:`load` is made here. :meth:`TDRModel.load <tdrdenoise.TDRModel.load>`
    builds the model from it.

    Parameters
    ----------
    path : str or path-like
    sha256 : str, optional
        The SHA-256 the whole file must have (see :func:`load`).

    Returns
    -------
    ModelState

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`load`.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from tdrdenoise import TDRModel
    >>> from tdrdenoise.model_io import read_state
    >>> path = os.path.join(tempfile.mkdtemp(), "model.tdr")
    >>> TDRModel(device="cpu").fit(np.random.default_rng(0).normal(size=(32, 32)), steps=1,
    ...                            seed=0, progress=False).save(path)
    >>> state = read_state(path)
    >>> state.constructor["width"], state.student is not None, state.path == path
    (48, True, True)
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no model file at {path}")
    _check_size(os.path.getsize(path), path)
    with open(path, "rb") as fh:
        data = fh.read(MAX_FILE_BYTES + 1)
    state = state_from_bytes(data, source=path, sha256=sha256)
    state.path = path
    return state


def convert(old, new, *, overwrite=False):
    """Rewrite the model file ``old`` (any format) as a format-4 file ``new``.

    Files of formats 1 to 3 are torch archives, read through
    ``torch.load(weights_only=True)``; format 4 (safetensors) is read without running
    any code. From the shell::

        python -c "from tdrdenoise.model_io import convert; print(convert('old.tdr', 'new.tdr'))"

    Parameters
    ----------
    old, new : str or path-like
        The file to read and the file to write.
    overwrite : bool, optional
        Replace an existing ``new``.

    Returns
    -------
    str
        The SHA-256 of ``new``, to give to whoever you share it with (see
        :func:`load`).

    Raises
    ------
    FileExistsError
        If ``new`` exists and ``overwrite`` is False.
    ValueError
        If ``old`` is not a valid model file (see :func:`load`).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from tdrdenoise import TDRModel
    >>> from tdrdenoise.model_io import convert, file_sha256
    >>> folder = tempfile.mkdtemp()
    >>> TDRModel(device="cpu").fit(np.random.default_rng(0).normal(size=(32, 32)), steps=1,
    ...                            seed=0, progress=False).save(os.path.join(folder, "a.tdr"))
    >>> digest = convert(os.path.join(folder, "a.tdr"), os.path.join(folder, "b.tdr"))
    >>> digest == file_sha256(os.path.join(folder, "b.tdr"))
    True
    """
    new = os.fspath(new)
    if os.path.exists(new) and not overwrite:
        raise FileExistsError(f"{new} exists; pass overwrite=True to replace it")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyDeprecationWarning)  # what this fixes
        model = load(old, device="cpu")
    save(model, new, overwrite=overwrite)
    return file_sha256(new)


def file_sha256(data):
    """The SHA-256 (hex) of a model file's bytes, or of the file at a path.

    Examples
    --------
    >>> from tdrdenoise.model_io import file_sha256
    >>> file_sha256(b"")
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    """
    if isinstance(data, (str, os.PathLike)):
        digest = hashlib.sha256()
        with open(data, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    return hashlib.sha256(bytes(data)).hexdigest()


def _check_size(size, source):
    if size > MAX_FILE_BYTES:
        raise ValueError(f"{source} is {size} bytes; model files are at most "
                         f"{MAX_FILE_BYTES} bytes (a width-{MAX_WIDTH} model takes about "
                         "400 MiB): it is not a tdrdenoise model file")


def _check_sha256(data, sha256, source):
    if sha256 is None:
        return
    expected = str(sha256).strip().lower()
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise ValueError(f"sha256 must be 64 hexadecimal digits; got {sha256!r}")
    actual = file_sha256(data)
    if actual != expected:
        raise ValueError(f"{source} has SHA-256 {actual}, not the expected {expected}: "
                         "it is not the file that was shared with you (damaged or "
                         "replaced); get it again from its source")


def _shapes_of(state_dict, source="the model data"):
    """{name: (dtype, shape)} of a state dict read from a file (None if it is not a
    dict); an entry that is not a tensor is refused."""
    if not isinstance(state_dict, dict):
        return None
    for name, t in state_dict.items():
        if not isinstance(t, torch.Tensor):
            _fail(source, f"weight {name!r} is a {type(t).__name__}, not a tensor")
    return {name: (_SAFETENSORS_DTYPES.get(t.dtype, str(t.dtype)), tuple(t.shape))
            for name, t in state_dict.items()}


def _check_shapes(shapes, net, what, source):
    """Compare the recorded tensors with those of ``net`` (built on the meta device)."""
    expected = _shapes_of(net.state_dict())
    if shapes is None or set(shapes) != set(expected):
        missing = sorted(set(expected) - set(shapes or ()))[:3]
        extra = sorted(set(shapes or ()) - set(expected))[:3]
        raise ValueError(f"{source}: the weights of {what} do not match the recorded "
                         f"architecture (missing {missing}, unexpected {extra})")
    for name, (dtype, shape) in expected.items():
        if tuple(shapes[name][1]) != shape or shapes[name][0] not in (dtype, None):
            raise ValueError(f"{source}: the weights of {what} do not match the recorded "
                             f"architecture ({name} is {shapes[name][0]} "
                             f"{list(shapes[name][1])}, not {dtype} {list(shape)})")


def _check_all_shapes(fields, shapes, source):
    """Every tensor's name, type and shape against the recorded architecture, before
    any network is built (the reference networks live on the meta device)."""
    arch = fields["constructor"]
    with torch.device("meta"):
        net = SelfToSelfUNet(arch["width"], arch["dropout"])
        student = None if fields["student"] is None else StudentUNet(**fields["student"])
    _check_shapes(shapes["state_dict"], net, "the network", source)
    if student is not None:
        _check_shapes(shapes["student_state_dict"], student, "the student", source)


def from_bytes(data, *, device="auto", source="the model data", sha256=None):
    """Rebuild a model from the bytes of :func:`to_bytes` (or of a model file).

    Parameters
    ----------
    data : bytes
    device : str or `torch.device`, optional
        Where to put the network (``"auto"``: CUDA when present).
    source : str, optional
        Name of the data in error messages (a file name).
    sha256 : str, optional
        The SHA-256 the data must have (see :func:`load`).

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
    return _build(state_from_bytes(data, source=source, sha256=sha256), device)


def state_from_bytes(data, *, source="the model data", sha256=None):
    """The checked content of a model file's bytes, as plain state (see
    :func:`read_state`; :meth:`TDRModel.from_bytes <tdrdenoise.TDRModel.from_bytes>`
    builds the model from it).

    Parameters
    ----------
    data : bytes
    source : str, optional
        Name of the data in error messages (a file name).
    sha256 : str, optional
        The SHA-256 the data must have (see :func:`load`).

    Returns
    -------
    ModelState

    Raises
    ------
    ValueError
        As :func:`load`.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise import TDRModel
    >>> from tdrdenoise.model_io import state_from_bytes
    >>> model = TDRModel(device="cpu").fit(np.random.default_rng(0).normal(size=(32, 32)),
    ...                                    steps=1, seed=0, progress=False)
    >>> state = state_from_bytes(model.to_bytes())
    >>> sorted(state.normalization) == sorted(model.normalization)
    True
    """
    try:
        return _state_from_bytes(data, source=source, sha256=sha256)
    except RecursionError:  # metadata nested thousands deep, past every check
        raise ValueError(f"{source} is not a readable tdrdenoise model file (its "
                         "metadata is nested too deeply)") from None


def _state_from_bytes(data, *, source, sha256):
    _check_size(len(data), source)
    _check_sha256(data, sha256, source)
    legacy = _is_legacy(data)
    if legacy:
        try:
            payload = torch.load(io.BytesIO(bytes(data)), map_location="cpu",
                                 weights_only=True)
        except Exception as exc:  # torch raises many kinds on garbage
            raise ValueError(f"{source} is not a readable tdrdenoise model file (corrupt "
                             f"or of another kind): {type(exc).__name__}") from None
        if not isinstance(payload, dict) or payload.get("format") != FILE_MAGIC:
            raise ValueError(f"{source} is not a tdrdenoise model file")
        meta = {k: v for k, v in payload.items() if k not in _WEIGHTS}
        shapes = {key: _shapes_of(payload.get(key), source) for key in _WEIGHTS}
    else:
        meta, shapes = _read_header(data, source)
        if meta.get("format") != FILE_MAGIC:
            raise ValueError(f"{source} is not a tdrdenoise model file")
    version = meta.get("format_version")
    if type(version) is not int or version < 1:
        raise ValueError(f"{source} has missing or malformed metadata: format_version is "
                         f"{version!r}, not a known file format; it was altered")
    if version > FILE_FORMAT_VERSION:
        raise ValueError(
            f"{source} uses model file format {version!r}, written by tdrdenoise "
            f"{meta.get('tdrdenoise_version')}; this is tdrdenoise {__version__}, "
            f"which reads format {FILE_FORMAT_VERSION} and older: upgrade tdrdenoise")
    if legacy != (version < 4):
        _fail(source, f"format_version {version} in a "
                      f"{'torch' if legacy else 'safetensors'} file")
    if legacy:
        warnings.warn(f"{source} is a format-{version} model file (a torch pickle, read "
                      "with torch.load(weights_only=True)); support for it will be "
                      "removed: convert it to format 4 (safetensors) with "
                      "tdrdenoise.model_io.convert(old, new) or "
                      "TDRModel.load(old).save(new)",
                      AstropyDeprecationWarning)
        meta = _legacy_bounds(meta, source, version)
    # every bound and every shape is checked before any tensor or network is made
    fields = validate_metadata({**meta, "state_dict": shapes["state_dict"],
                                "student_state_dict": shapes["student_state_dict"]}, source)
    _check_all_shapes(fields, shapes, source)
    if not legacy:
        payload = _decode(data, meta, source)
    if version >= 2:
        if payload.get("checksum") != payload_checksum(payload):
            raise ValueError(f"{source}: checksum mismatch: the file is corrupt or was "
                             "altered; train the model again or use a good copy")
    else:
        warnings.warn(f"{source} is a format-1 model file, which has no checksum: its "
                      "integrity cannot be verified; save it again to add one",
                      TDRUserWarning)
    return ModelState(constructor=fields["constructor"],
                      normalization=fields["normalization"], unit=fields["unit"],
                      history=fields["history"], state_dict=payload["state_dict"],
                      student=fields["student"],
                      student_state_dict=payload.get("student_state_dict"), source=source)


@dataclass
class ModelState:
    """What a model file holds, checked: the parts a `~tdrdenoise.TDRModel` is
    assembled from (by :meth:`TDRModel.load <tdrdenoise.TDRModel.load>`).

    Attributes
    ----------
    constructor : dict
        Keyword arguments of `~tdrdenoise.TDRModel` (width, dropout, keep_prob,
        patch_size, batch_size, learning_rate).
    normalization : dict
        The normalisation of the training image (defaults of older formats filled in).
    unit : `~astropy.units.Unit` or None
        The unit of the training image.
    history : list of dict
        The training history.
    state_dict : dict
        The network's weights (name: tensor).
    student : dict or None
        The student's ``width`` and ``head`` (None without a student).
    student_state_dict : dict or None
        The student's weights.
    source : str
        The name of the file or data, for messages.
    path : str or None
        The file read (None for bytes).
    """
    constructor: dict
    normalization: dict
    unit: object
    history: list
    state_dict: dict
    student: object = None
    student_state_dict: object = None
    source: str = "the model data"
    path: object = None


def load_weights(net, state_dict, source):
    """Load ``state_dict`` into the network ``net`` and check that every weight is
    finite (`ValueError` naming ``source`` otherwise)."""
    try:
        net.load_state_dict(state_dict)
    except (RuntimeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{source}: the weights do not match the recorded "
                         f"architecture ({exc})") from None
    try:
        check_weights(net, source)
    except FloatingPointError as exc:
        raise ValueError(str(exc)) from None


def build_student(state, device):
    """The student network of ``state`` on ``device``, in eval mode (None if it has
    none)."""
    return _load_student({"student_state_dict": state.student_state_dict}, state.student,
                         state.source, device)


def _build(state, device):
    """The TDRModel of ``state``: the builder the package registers (see
    :mod:`tdrdenoise._builders`; this module never imports the model class)."""
    return _builders.build("model", state, device)


def _legacy_bounds(meta, source, version):
    """The metadata of a format-1 to 3 file (written before there were bounds) within
    those of format 4: a patch or batch size above them, which only training (fine_tune,
    distil) uses, is lowered with a warning; a network or student wider than a model
    file may hold, which this version does not build, is refused with a clear message."""
    meta = dict(meta)
    written = (f"{source} (model file format {version}, written by tdrdenoise "
               f"{meta.get('tdrdenoise_version', 'of an older version')})")
    for key, bound in (("patch_size", MAX_PATCH_SIZE), ("batch_size", MAX_BATCH_SIZE)):
        value = meta.get(key)
        if type(value) is int and value > bound:
            warnings.warn(f"{written} records {key}={value}, more than the {bound} of "
                          f"format 4; it is lowered to {bound} (it matters only to "
                          "fine_tune and distil)", TDRUserWarning)
            meta[key] = bound
    arch = meta.get("architecture")
    student = meta.get("student")
    widths = [("a network of width", arch.get("width") if isinstance(arch, dict) else None,
               MAX_WIDTH, "width")]
    if isinstance(student, dict):
        widths += [("a student of width", student.get("width"), MAX_STUDENT_WIDTH,
                    "student_width"),
                   ("a student head of", student.get("head"), MAX_STUDENT_HEAD, None)]
    for what, value, bound, option in widths:
        if type(value) is int and value > bound:
            fix = f"train it again with {option} <= {bound}" if option else \
                "train it again with this version"
            raise ValueError(f"{written} holds {what} {value}; this version builds and "
                             f"reads at most {bound} (a width-{MAX_WIDTH} network takes "
                             f"about 400 MiB), so it cannot use this model: {fix}")
    return meta


def _load_student(payload, config, source, device):
    """The student of a model file's dict (None if it has none)."""
    if config is None:
        return None
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
    exc = ValueError(f"{source} has missing or malformed metadata ({what}); it was not "
                     "written by TDRModel.save or was altered")
    exc.what = what  # the field and the problem alone, for the message of save
    raise exc


def _number(payload, key, source, low=None, high=None, integer=False):
    value = payload.get(key)
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
        _fail(source, f"{key} must be a{'n integer' if integer else ' number'}; got {value!r}")
    if (low is not None and not value > low) or (high is not None and not value < high):
        if integer and high is not None and value >= high:
            _fail(source, f"{key}={value!r} is out of range: at most {high - 1}")
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
    _number(arch, "width", source, low=0, high=MAX_WIDTH + 1, integer=True)
    if _number(arch, "dropout", source, high=1) < 0:
        _fail(source, f"dropout={arch['dropout']!r} is out of range")
    constructor = {
        "width": arch["width"], "dropout": arch["dropout"],
        "keep_prob": _number(payload, "keep_prob", source, low=0, high=1),
        "patch_size": _number(payload, "patch_size", source, low=0,
                              high=MAX_PATCH_SIZE + 1, integer=True),
        "batch_size": _number(payload, "batch_size", source, low=0,
                              high=MAX_BATCH_SIZE + 1, integer=True),
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
        student = {key: _number(student, key, source, low=1, high=bound + 1, integer=True)
                   for key, bound in (("width", MAX_STUDENT_WIDTH),
                                      ("head", MAX_STUDENT_HEAD))}
        if not isinstance(payload.get("student_state_dict"), dict):
            _fail(source, "student_state_dict is missing")
    return {"constructor": constructor, "normalization": norm, "unit": unit,
            "history": copy.deepcopy(history), "student": student}
