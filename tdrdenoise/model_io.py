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
import io
import os
import warnings

import torch
from astropy.utils.exceptions import AstropyDeprecationWarning

from ._model_checks import (FILE_FORMAT_VERSION, FILE_MAGIC, MAX_FILE_BYTES,  # noqa: F401
                            WEIGHTS, check_all_shapes, fail, legacy_bounds, shapes_of,
                            validate_metadata)
from ._model_format import (check_sha256, check_size, decode, decode_payload, encode_payload,
                            file_sha256, is_legacy, payload_checksum)  # noqa: F401
from ._model_format import read_header as _read_header
from ._model_state import ModelState, build, build_student, load_weights  # noqa: F401
from ._model_checks import MAX_HEADER_BYTES  # noqa: F401  (importable here, as before)
from ._validate import (MAX_BATCH_SIZE, MAX_PATCH_SIZE, MAX_STUDENT_HEAD,  # noqa: F401
                        MAX_STUDENT_WIDTH, MAX_WIDTH)
from .prediction.normalization import (OUTLIER_THRESHOLD, TRANSFORM,  # noqa: F401
                                       check_normalization)
from .io.provenance import header_name  # noqa: F401  (public here, as before)
from .training.self2self import check_weights
from .utils import TDRUserWarning, atomic_open, resolve_device
from .version import __version__

__all__ = ["FILE_FORMAT_VERSION", "save", "load", "to_bytes", "from_bytes", "convert",
           "file_sha256", "payload_checksum", "header_name", "encode_payload",
           "decode_payload", "ModelState", "read_state", "state_from_bytes",
           "load_weights", "build_student"]


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
    return build(read_state(path, sha256=sha256), device)


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
    check_size(os.path.getsize(path), path)
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
    return build(state_from_bytes(data, source=source, sha256=sha256), device)


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
    check_size(len(data), source)
    check_sha256(data, sha256, source)
    legacy = is_legacy(data)
    if legacy:
        try:
            payload = torch.load(io.BytesIO(bytes(data)), map_location="cpu",
                                 weights_only=True)
        except Exception as exc:  # torch raises many kinds on garbage
            raise ValueError(f"{source} is not a readable tdrdenoise model file (corrupt "
                             f"or of another kind): {type(exc).__name__}") from None
        if not isinstance(payload, dict) or payload.get("format") != FILE_MAGIC:
            raise ValueError(f"{source} is not a tdrdenoise model file")
        meta = {k: v for k, v in payload.items() if k not in WEIGHTS}
        shapes = {key: shapes_of(payload.get(key), source) for key in WEIGHTS}
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
        fail(source, f"format_version {version} in a "
                     f"{'torch' if legacy else 'safetensors'} file")
    if legacy:
        warnings.warn(f"{source} is a format-{version} model file (a torch pickle, read "
                      "with torch.load(weights_only=True)); support for it will be "
                      "removed: convert it to format 4 (safetensors) with "
                      "tdrdenoise.model_io.convert(old, new) or "
                      "TDRModel.load(old).save(new)",
                      AstropyDeprecationWarning)
        meta = legacy_bounds(meta, source, version)
    # every bound and every shape is checked before any tensor or network is made
    fields = validate_metadata({**meta, "state_dict": shapes["state_dict"],
                                "student_state_dict": shapes["student_state_dict"]}, source)
    check_all_shapes(fields, shapes, source)
    if not legacy:
        payload = decode(data, meta, source)
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
