"""D, the prediction of TDR, one module per stage in data order (plain arrays).

- ``normalization``: the image to the network's input in noise sigmas (noise type,
  pixel shuffle, bright and impulse pixels), and back to the image unit.
- ``noise``: noise estimates from pixel differences and neighbour correlation.
- ``ensemble``: the Monte-Carlo dropout ensemble over pixel-shuffled sub-images,
  computed tile by tile.
- ``student``: the distilled student's single pass, and the choice between the two.
- ``calibration``: the level calibration of the mean and its spread.
- ``wiener``: the Wiener refinement in DCT windows and its error model.
- ``options``: :class:`PredictionOptions`, the settings of one prediction.
- ``pipeline``: the stages above in order, for ``TDRModel.predict`` and ``tdr_denoise``.

These modules are internal (:func:`~tdrdenoise.tdr_denoise` and
:meth:`~tdrdenoise.TDRModel.predict` are the public way in); they never import
``tdrdenoise.training``.
"""
from .normalization import *  # noqa: F401,F403
from .noise import *  # noqa: F401,F403
from .ensemble import *  # noqa: F401,F403
from .student import *  # noqa: F401,F403
from .calibration import *  # noqa: F401,F403
from .wiener import *  # noqa: F401,F403
from .options import *  # noqa: F401,F403
from .pipeline import *  # noqa: F401,F403
