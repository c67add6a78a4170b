"""T, the training of TDR: plain arrays in, trained networks out.

- ``network``: the Self2Self partial-convolution U-Net and the student U-Net
  (public as :mod:`tdrdenoise.network`).
- ``loop``: the one training loop (random crops and flips, Adam, cosine schedule),
  shared by the two trainings below.
- ``self2self``: Self2Self training of the network on one normalised image, its
  checkpoints, fine-tuning before an ensemble prediction.
- ``distil``: the distillation of the student from the Monte-Carlo ensemble.

These modules are internal: :class:`~tdrdenoise.TDRModel` is the public way in. They
use the prediction stages (``tdrdenoise.prediction``) and are never imported by them.
"""
from .network import *  # noqa: F401,F403
from .loop import *  # noqa: F401,F403
from .self2self import *  # noqa: F401,F403
from .distil import *  # noqa: F401,F403
