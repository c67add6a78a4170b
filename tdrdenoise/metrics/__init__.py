"""How good is a denoised image? The evaluation of Liu, Quan et al. (2025) as functions.

Every function takes the images as a CCDData, NDData, sunpy Map, Quantity, masked
array or ndarray. Invalid pixels (NaN, inf, masked) are left out, and a pixel invalid
in either image of a pair is left out of every paired metric; the restored pixels of
a :func:`~tdrdenoise.tdr_denoise` output, which it masks, count as valid. Results
carry the image unit when there is one (noise levels and errors in the unit, squared
errors in the unit squared); dimensionless results (correlations, slopes, fractions,
ratios, PSNR, SSIM) are plain floats.

One module per concept:

- noise level (:mod:`~tdrdenoise.metrics.noise`): :func:`noise_level`;
- errors and correlation (:mod:`~tdrdenoise.metrics.errors`):
  :func:`absolute_error`, :func:`mean_squared_error`, :func:`pearson_cc`,
  :func:`linear_coefficient`;
- flux and restore (:mod:`~tdrdenoise.metrics.flux`): :func:`residual_flux`,
  :func:`restored_fraction`;
- large-scale damage (:mod:`~tdrdenoise.metrics.damage`):
  :func:`large_scale_damage`;
- spectra (:mod:`~tdrdenoise.metrics.spectra`): :func:`power_spectrum`,
  :func:`deviation_frequency`;
- signal-to-noise (:mod:`~tdrdenoise.metrics.snr`): :func:`snr_map`;
- against a clean reference (:mod:`~tdrdenoise.metrics.reference`): :func:`psnr`,
  :func:`ssim`;
- all of them in one table, and choosing R (:mod:`~tdrdenoise.metrics.evaluation`):
  :func:`evaluate`, :func:`r_sweep`;
- faint sources (:mod:`~tdrdenoise.metrics.sources`): :func:`detect_sources`.
"""
from ._core import FREQUENCY_UNIT, NYQUIST  # noqa: F401  (module constants, as before)
from .damage import *  # noqa: F401,F403
from .errors import *  # noqa: F401,F403
from .evaluation import *  # noqa: F401,F403
from .flux import *  # noqa: F401,F403
from .noise import *  # noqa: F401,F403
from .reference import *  # noqa: F401,F403
from .snr import *  # noqa: F401,F403
from .sources import *  # noqa: F401,F403
from .spectra import *  # noqa: F401,F403
from . import (damage, errors, evaluation, flux, noise, reference, snr, sources,  # noqa: E402
               spectra)

__all__ = (noise.__all__ + errors.__all__ + flux.__all__ + damage.__all__ + spectra.__all__
           + snr.__all__ + reference.__all__ + evaluation.__all__ + sources.__all__)

# pytest-doctestplus: the examples that need photutils
__doctest_requires__ = sources.__doctest_requires__
