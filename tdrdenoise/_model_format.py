"""The bytes of a model file (format 4, safetensors) and their checks, for
:mod:`tdrdenoise.model_io`: encoding and decoding the payload, the JSON header, the
checksums, and the bounds of every metadata field and tensor shape, checked before
anything is allocated. model_io documents the format and holds the functions that
read and write files.
"""
import hashlib
import json
import math
import os


from ._model_checks import (FILE_MAGIC, MAX_FILE_BYTES, MAX_HEADER_BYTES, WEIGHTS, fail)
from ._validate import (MAX_WIDTH)

__all__ = []


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

    meta = {k: v for k, v in payload.items() if k not in WEIGHTS}
    tensors = {}
    for key, prefix in WEIGHTS.items():
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


def is_legacy(data):
    """A torch.save archive (zip) or an older torch pickle (formats 1 to 3), not a
    safetensors file (an 8-byte header size, then the JSON header)."""
    if len(data) > 9 and bytes(data[8:9]) == b"{" \
            and int.from_bytes(bytes(data[:8]), "little") <= len(data) - 8:
        return False
    return bytes(data[:4]) == b"PK\x03\x04" or bytes(data[:1]) == b"\x80"


def read_header(data, source):
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
    shapes = {key: {} for key in WEIGHTS}
    for name, entry in header.items():
        key = next((k for k, prefix in WEIGHTS.items() if name.startswith(prefix)), None)
        if key is None or not isinstance(entry, dict) or not isinstance(
                entry.get("shape"), list):
            fail(source, f"unexpected tensor {name!r}")
        shapes[key][name[len(WEIGHTS[key]):]] = (entry.get("dtype"), tuple(entry["shape"]))
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
    meta, _ = read_header(data, source)
    return decode(data, meta, source)


def decode(data, meta, source):
    """The payload of a format-4 file's bytes whose header gave ``meta``."""
    from safetensors.torch import load as load_tensors

    try:
        tensors = load_tensors(bytes(data))
    except Exception as exc:  # safetensors raises its own kinds on damaged data
        raise ValueError(f"{source} is not a readable tdrdenoise model file (corrupt): "
                         f"{type(exc).__name__}") from None
    payload = dict(meta)
    for key, prefix in WEIGHTS.items():
        part = {name[len(prefix):]: t for name, t in tensors.items() if name.startswith(prefix)}
        payload[key] = part if (part or key == "state_dict") else None
    return payload


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


def check_size(size, source):
    if size > MAX_FILE_BYTES:
        raise ValueError(f"{source} is {size} bytes; model files are at most "
                         f"{MAX_FILE_BYTES} bytes (a width-{MAX_WIDTH} model takes about "
                         "400 MiB): it is not a tdrdenoise model file")


def check_sha256(data, sha256, source):
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
