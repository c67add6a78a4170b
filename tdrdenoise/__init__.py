r"""tdrdenoise: train-denoise-restore (TDR) denoising of astronomical images.

The three steps of the method (Liu, Quan et al., Nature Astronomy 2025):

- **T**\ rain: :class:`TDRModel` and its :meth:`~TDRModel.fit` learn a Self2Self
  network from one noisy image (:mod:`tdrdenoise.model`, the facade; the training
  itself in ``tdrdenoise/training/``: network, loop, Self2Self, distillation).
- **D**\ enoise: :func:`tdr_denoise` (:mod:`tdrdenoise.denoise`) runs the prediction
  pipeline of ``tdrdenoise/prediction/`` in data order: normalization, the distilled
  student or the Monte-Carlo dropout ensemble, level calibration, Wiener refinement.
- **R**\ estore: :func:`restore` gives back their initial value to pixels changed by
  more than R (:mod:`tdrdenoise.restore`).

Images enter and leave through ``tdrdenoise/io/`` (files, containers, provenance).
The contributors' guide to this layout is docs/architecture.rst.
"""
from importlib import import_module as _import_module
from typing import TYPE_CHECKING as _TYPE_CHECKING

from . import _builders
from .restore import restore  # no torch; binds the name before any import of the module
from .version import __version__  # noqa: F401  (setuptools_scm, see version.py)

__all__ = ["TDRModel", "tdr_denoise", "restore", "denoise_files", "denoise_collection",
           "read_image", "write_image", "TDRUserWarning", "__version__"]

# The public names that need torch load on first use (PEP 562), so that importing
# tdrdenoise, and ``tdrdenoise --help``, do not import torch: where each one lives.
_LAZY = {"TDRModel": "model", "tdr_denoise": "denoise", "denoise_files": "batch",
         "denoise_collection": "batch", "read_image": "io", "write_image": "io",
         "TDRUserWarning": "_warnings"}
_SUBMODULES = {"batch", "cli", "datasets", "demo", "denoise", "io", "metrics", "model",
               "model_io", "network", "prediction", "restore_files", "training", "utils",
               "version", "visualization"}


if _TYPE_CHECKING:  # what the lazy names are, for linters, type checkers and editors
    from .batch import denoise_collection, denoise_files
    from .denoise import tdr_denoise
    from .io.images import read_image, write_image
    from .model import TDRModel
    from .utils import TDRUserWarning


def __getattr__(name):
    if name in _LAZY:
        value = getattr(_import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:  # tdrdenoise.model_io after a plain ``import tdrdenoise``
        return _import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | _SUBMODULES)


def _build_model(state, device):
    """The TDRModel of a `~tdrdenoise.model_io.ModelState`, for ``model_io.load`` and
    ``model_io.from_bytes`` (model_io never imports the model class: see _builders)."""
    return _import_module(".model", __name__).TDRModel._from_state(state, device)


_builders.register("model", _build_model)
