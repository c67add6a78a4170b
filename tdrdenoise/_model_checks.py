"""The bounds of a model file and their checks, for :mod:`tdrdenoise.model_io`:
the constants of the format, every metadata field and every tensor shape, checked
before anything is allocated (``_model_format.py`` encodes and decodes the bytes).
"""
import copy
import math
import warnings

import torch
from astropy import units as u

from .prediction.normalization import OUTLIER_THRESHOLD, TRANSFORM, check_normalization
from ._validate import (MAX_BATCH_SIZE, MAX_PATCH_SIZE, MAX_STUDENT_HEAD, MAX_STUDENT_WIDTH,
                        MAX_WIDTH)
from .training.network import SelfToSelfUNet, StudentUNet
from .utils import TDRUserWarning

__all__ = []


#: Version of the model file layout; files with a newer one are refused.
FILE_FORMAT_VERSION = 4


FILE_MAGIC = "tdrdenoise-model"


ARCHITECTURE = "self2self-unet"


#: Bounds of a model file, checked before anything is allocated: the size of the file
#: and of its JSON header (bytes); those of the widths of the network and of the
#: student, the student's head, the patch and batch sizes (``MAX_WIDTH``...) are the
#: bounds of :class:`~tdrdenoise.TDRModel`'s settings, defined in
#: :mod:`tdrdenoise._validate`. A width-48 model takes about 4 MiB and a width-512 one
#: about 400 MiB.
MAX_FILE_BYTES = 1 << 30


MAX_HEADER_BYTES = 16 << 20


SAFETENSORS_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16",
                      torch.bfloat16: "BF16", torch.int64: "I64", torch.int32: "I32",
                      torch.uint8: "U8", torch.bool: "BOOL"}


WEIGHTS = {"state_dict": "network.", "student_state_dict": "student."}


def shapes_of(state_dict, source="the model data"):
    """{name: (dtype, shape)} of a state dict read from a file (None if it is not a
    dict); an entry that is not a tensor is refused."""
    if not isinstance(state_dict, dict):
        return None
    for name, t in state_dict.items():
        if not isinstance(t, torch.Tensor):
            fail(source, f"weight {name!r} is a {type(t).__name__}, not a tensor")
    return {name: (SAFETENSORS_DTYPES.get(t.dtype, str(t.dtype)), tuple(t.shape))
            for name, t in state_dict.items()}


def _check_shapes(shapes, net, what, source):
    """Compare the recorded tensors with those of ``net`` (built on the meta device)."""
    expected = shapes_of(net.state_dict())
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


def check_all_shapes(fields, shapes, source):
    """Every tensor's name, type and shape against the recorded architecture, before
    any network is built (the reference networks live on the meta device)."""
    arch = fields["constructor"]
    with torch.device("meta"):
        net = SelfToSelfUNet(arch["width"], arch["dropout"])
        student = None if fields["student"] is None else StudentUNet(**fields["student"])
    _check_shapes(shapes["state_dict"], net, "the network", source)
    if student is not None:
        _check_shapes(shapes["student_state_dict"], student, "the student", source)


def legacy_bounds(meta, source, version):
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


def fail(source, what):
    exc = ValueError(f"{source} has missing or malformed metadata ({what}); it was not "
                     "written by TDRModel.save or was altered")
    exc.what = what  # the field and the problem alone, for the message of save
    raise exc


def _number(payload, key, source, low=None, high=None, integer=False):
    value = payload.get(key)
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
        fail(source, f"{key} must be a{'n integer' if integer else ' number'}; got {value!r}")
    if (low is not None and not value > low) or (high is not None and not value < high):
        if integer and high is not None and value >= high:
            fail(source, f"{key}={value!r} is out of range: at most {high - 1}")
        fail(source, f"{key}={value!r} is out of range")
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
        fail(source, f"architecture must be a dict; got {arch!r}")
    if arch.get("name") != ARCHITECTURE:
        raise ValueError(f"{source} holds an unknown architecture {arch.get('name')!r}")
    _number(arch, "width", source, low=0, high=MAX_WIDTH + 1, integer=True)
    if _number(arch, "dropout", source, high=1) < 0:
        fail(source, f"dropout={arch['dropout']!r} is out of range")
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
        fail(source, f"normalization must be a dict; got {norm!r}")
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
        fail(source, str(exc))
    unit = payload.get("unit")
    if unit is not None:
        if not isinstance(unit, str):
            fail(source, f"unit must be a string or None; got {unit!r}")
        try:
            unit = u.Unit(unit)
        except ValueError:
            fail(source, f"unit {unit!r} is not a unit astropy understands")
    history = payload.get("history")
    if not isinstance(history, list) or not all(isinstance(h, dict) and
                                                isinstance(h.get("steps"), int)
                                                for h in history):
        fail(source, "history must be a list of dicts with 'steps'")
    if not isinstance(payload.get("state_dict"), dict):
        fail(source, "state_dict is missing")
    student = payload.get("student")                        # formats 1 and 2: none
    if student is not None:
        if not isinstance(student, dict) or set(student) != {"width", "head"}:
            fail(source, f"student must be None or a dict of width and head; got {student!r}")
        student = {key: _number(student, key, source, low=1, high=bound + 1, integer=True)
                   for key, bound in (("width", MAX_STUDENT_WIDTH),
                                      ("head", MAX_STUDENT_HEAD))}
        if not isinstance(payload.get("student_state_dict"), dict):
            fail(source, "student_state_dict is missing")
    return {"constructor": constructor, "normalization": norm, "unit": unit,
            "history": copy.deepcopy(history), "student": student}
