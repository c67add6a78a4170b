"""The package's warning class (imports nothing of tdrdenoise, and not torch):
:class:`~tdrdenoise.utils.TDRUserWarning`, public in ``tdrdenoise.utils`` and
``tdrdenoise``, defined here so that the torch-free modules (``io/``) can warn with it.
"""
from astropy.utils.exceptions import AstropyUserWarning

__all__ = ["TDRUserWarning"]


class TDRUserWarning(AstropyUserWarning):
    """Warnings issued by tdrdenoise."""


TDRUserWarning.__module__ = "tdrdenoise.utils"  # where the documentation lists it
