r"""tdrdenoise: train-denoise-restore (TDR) denoising of astronomical images.

The three steps of the method (Liu, Quan et al., Nature Astronomy 2025):

- **T**\ rain: :class:`TDRModel` and its :meth:`~TDRModel.fit` learn a Self2Self
  network from one noisy image (:mod:`tdrdenoise.model`, :mod:`tdrdenoise.network`).
- **D**\ enoise: :func:`tdr_denoise` averages a Monte-Carlo dropout ensemble
  (:mod:`tdrdenoise.denoise`).
- **R**\ estore: :func:`restore` gives back their initial value to pixels changed by
  more than R (:mod:`tdrdenoise.restore`).
"""
from .version import __version__  # noqa: F401  (setuptools_scm, see version.py)
from .batch import denoise_collection, denoise_files
from .denoise import tdr_denoise
from .io import read_image, write_image
from .model import TDRModel
from .restore import restore
from .utils import TDRUserWarning

__all__ = ["TDRModel", "tdr_denoise", "restore", "denoise_files", "denoise_collection",
           "read_image", "write_image", "TDRUserWarning", "__version__"]
