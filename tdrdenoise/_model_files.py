"""The file methods of :class:`~tdrdenoise.TDRModel`: ``to_bytes``, ``from_bytes``,
``save``, ``load`` (bound in the class body of ``model.py``) and the assembly of a
model from the plain state that :mod:`tdrdenoise.model_io` reads.
"""
from . import model_io
from .utils import resolve_device

__all__ = []


def to_bytes(self):
    """The model file as bytes (see :func:`tdrdenoise.model_io.to_bytes`).

    Returns
    -------
    bytes

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise import TDRModel
    >>> model = TDRModel(device="cpu").fit(np.random.default_rng(0).normal(size=(32, 32)),
    ...                                    steps=1, seed=0, progress=False)
    >>> TDRModel.from_bytes(model.to_bytes(), device="cpu").fingerprint == model.fingerprint
    True
    """
    return model_io.to_bytes(self)


def from_bytes(cls, data, device="auto", sha256=None):
    """A model from the bytes of :meth:`to_bytes` (see :func:`tdrdenoise.model_io.from_bytes`).

    Parameters
    ----------
    data : bytes
        The bytes of a model file.
    device : str or `torch.device`, optional
        Where to put the network (``"auto"``: CUDA when present).
    sha256 : str, optional
        The SHA-256 the data must have, as :meth:`load` takes it: data that
        differ are refused.

    Returns
    -------
    TDRModel

    Raises
    ------
    ValueError
        If the data are not a valid model, or differ from ``sha256`` (see
        :meth:`load`).

    Examples
    --------
    >>> import hashlib
    >>> import numpy as np
    >>> from tdrdenoise import TDRModel
    >>> model = TDRModel(device="cpu").fit(np.random.default_rng(0).normal(size=(32, 32)),
    ...                                    steps=1, seed=0, progress=False)
    >>> data = model.to_bytes()
    >>> digest = hashlib.sha256(data).hexdigest()
    >>> TDRModel.from_bytes(data, device="cpu", sha256=digest).fingerprint == model.fingerprint
    True
    """
    device = resolve_device(device)
    return cls._from_state(model_io.state_from_bytes(data, sha256=sha256), device)


def save(self, path, overwrite=False):
    """Write the weights and their metadata to ``path``, atomically.

    The file (model file format 4: a safetensors file, read back without running
    any code; see :mod:`tdrdenoise.model_io`) records the package version, the
    architecture, the normalisation, the unit, the training history and a
    SHA-256 checksum of all of it. It is written to a temporary file in the same
    folder and then, with ``overwrite=False``, created exclusively (a hard link):
    a file that another process writes under ``path`` meanwhile is kept and
    `FileExistsError` raised, never silently replaced; a crash never leaves a
    half-written model. Once the model is written, the checkpoint of the
    :meth:`fit` that made it is removed (a checkpoint that cannot be removed
    gives a `~tdrdenoise.TDRUserWarning`); if the save fails, the checkpoint is
    kept.

    Parameters
    ----------
    path : str or path-like
        Output file (conventionally ``*.tdr``).
    overwrite : bool, optional
        Replace an existing file.

    Raises
    ------
    RuntimeError
        If the model is not trained.
    FileExistsError
        If ``path`` exists, or was created by another process while writing, and
        ``overwrite`` is False (a subclass of `OSError`).
    PermissionError, OSError
        If the file cannot be written (no permission, read-only file system,
        disk full); the message names ``path`` and its folder.
    ValueError
        If the weights or the normalisation are not finite, or a setting lies
        outside what a model file holds (width, student width and head 512,
        patch size 8192, batch size 4096: changed after construction), which
        :meth:`load` would refuse; nothing is written then.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from tdrdenoise import TDRModel
    >>> model = TDRModel(device="cpu").fit(np.random.default_rng(0).normal(size=(32, 32)),
    ...                                    steps=1, seed=0, progress=False)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.tdr")
    >>> model.save(path)
    >>> TDRModel.load(path).fingerprint == model.fingerprint
    True
    """
    model_io.save(self, path, overwrite=overwrite)


def load(cls, path, device="auto", sha256=None):
    """Read a model written by :meth:`save`.

    Parameters
    ----------
    path : str or path-like
        A ``.tdr`` file.
    device : str or `torch.device`, optional
        Where to put the network (``"auto"``: CUDA when present).
    sha256 : str, optional
        The SHA-256 of the whole file, as its author gave it (``sha256sum``):
        a file that differs is refused. The checksum inside every file detects
        damage only; anyone can recompute it (see :mod:`tdrdenoise.model_io`).

    Returns
    -------
    TDRModel

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        If the file is not a tdrdenoise model, fails its checksum ("checksum
        mismatch": corrupt or altered), has missing or malformed metadata or
        non-finite weights, or was written by a newer file format. Files of
        format 1 (no checksum) load with a `~tdrdenoise.TDRUserWarning`.

    Examples
    --------
    See :meth:`save`.
    """
    device = resolve_device(device)  # a bad device fails before the file is read
    return cls._from_state(model_io.read_state(path, sha256=sha256), device)


def from_state(cls, state, device):
    """The model a `~tdrdenoise.model_io.ModelState` describes (what
    :func:`~tdrdenoise.model_io.read_state` read), on ``device``."""
    model = cls(device=device, **state.constructor)
    model_io.load_weights(model.network, state.state_dict, state.source)
    model.network.to(model.device)
    model.student = model_io.build_student(state, model.device)
    if model.student is not None:
        model.student_width = model.student.width
    model.normalization = state.normalization
    model.outlier_threshold = state.normalization["outlier_threshold"]
    model.bright_threshold = state.normalization["bright_threshold"]
    model.pixel_shuffle = state.normalization["pixel_shuffle"]
    model.impulse_noise = state.normalization["impulse_noise"]
    model.unit = state.unit
    model.history = state.history
    model.path = state.path
    return model
