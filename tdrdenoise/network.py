"""The networks of tdrdenoise (public path; the code is in ``training/network.py``).

:class:`SelfToSelfUNet`, the Self2Self partial-convolution U-Net that
:meth:`TDRModel.fit <tdrdenoise.TDRModel.fit>` trains, :class:`StudentUNet`, the
student distilled from its ensemble, and :class:`PartialConv2d`.
"""
from .training.network import *  # noqa: F401,F403
from .training.network import __all__  # noqa: F401
