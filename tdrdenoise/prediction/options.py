"""The settings of one prediction, in one object: what ``tdr_denoise``,
``TDRModel.predict`` and ``denoise_files`` take as keyword arguments, handed through
the prediction pipeline (``pipeline.py``) as a :class:`PredictionOptions`.

A stage that needs a new setting gets a field here, not a parameter in every
signature on the way.
"""
from dataclasses import dataclass, replace

from .._defaults import DEFAULT_TILE_SIZE

__all__ = ["PredictionOptions"]


@dataclass(frozen=True)
class PredictionOptions:
    """The settings of one prediction (see :func:`~tdrdenoise.tdr_denoise` for each).

    ``method`` is ``"student"`` or ``"ensemble"`` once resolved (``"auto"`` before);
    ``n_predictions`` and ``seed`` apply to the ensemble (None: the default number of
    passes, a fresh seed); ``calibrate`` and ``refine`` switch the level calibration
    and the Wiener refinement.
    """

    method: str = "ensemble"
    n_predictions: int = None
    seed: int = None
    tile_size: int = DEFAULT_TILE_SIZE
    progress: bool = None
    calibrate: bool = True
    refine: bool = True

    def replace(self, **changes):
        """A copy with ``changes`` (the options are frozen)."""
        return replace(self, **changes)
