"""The student's prediction: one deterministic pass of the distilled
:class:`~tdrdenoise.network.StudentUNet` (``training/distil.py`` trains it), tile by
tile, and the choice between the student and the Monte-Carlo ensemble.
"""
import numpy as np
import torch

from .._defaults import METHODS
from .ensemble import inference_layout, pad_to_grid, tiled_apply

__all__ = []


def resolve_method(model, method, n_predictions, fine_tune_steps):
    """``"student"`` or ``"ensemble"`` for a prediction with these options.

    ``"auto"`` takes the student when the model has one and neither
    ``n_predictions`` nor ``fine_tune_steps`` (options of the ensemble) was given.

    Raises
    ------
    ValueError
        For an unknown method, ``"student"`` on a model without one, or ensemble
        options given with ``"student"``.
    """
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}; "
                         f"got {method!r}")
    given = [name for name, value in (("n_predictions", n_predictions),
                                      ("fine_tune_steps", fine_tune_steps))
             if value is not None]
    if method == "auto":
        return "student" if model.student is not None and not given else "ensemble"
    if method == "student":
        if model.student is None:
            raise ValueError("method='student' needs a model with a distilled student: "
                             "fit it with distil_steps > 0 or call model.distil(image); "
                             "method='ensemble' works with any model")
        if given:
            raise ValueError(f"{' and '.join(given)} apply to method='ensemble', not to "
                             "the student's single pass")
    return method


def student_predict(student, z, valid, *, device, tile_size):
    """One student pass over a normalised image: (mean, std) in noise sigmas
    (float32), computed tile by tile."""
    zt = torch.from_numpy(np.where(valid, z, 0).astype(np.float32))
    vt = torch.from_numpy(np.asarray(valid))
    zt, vt, crop = pad_to_grid(zt, vt)

    def fn(x, mask):
        out = student(x.to(device), mask.to(device))
        return out.float().cpu()

    student.eval()
    with inference_layout(student, device), torch.inference_mode():
        out = tiled_apply(fn, zt, vt.float(), tile_size, channels=2)
    mean = out[0][crop].numpy().astype(np.float32)
    std = np.exp(out[1][crop].numpy()).astype(np.float32)
    return mean, std
