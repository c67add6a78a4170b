"""The plain state of a model file that :mod:`tdrdenoise.model_io` returns
(:class:`~tdrdenoise.model_io.ModelState`) and the networks built from it; the
:class:`~tdrdenoise.TDRModel` is assembled from them by the builder the package
registers (``_builders.py``), never here.
"""
from dataclasses import dataclass


from . import _builders
from .training.network import StudentUNet
from .training.self2self import check_weights

__all__ = []


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


def build(state, device):
    """The TDRModel of ``state``: the builder the package registers (see
    :mod:`tdrdenoise._builders`; this module never imports the model class)."""
    return _builders.build("model", state, device)


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
