"""Builders that a lower layer calls without importing the layer above that has them.

:mod:`tdrdenoise.model_io` reads model files as plain state
(:class:`~tdrdenoise.model_io.ModelState`) and never imports
:class:`~tdrdenoise.TDRModel`; its public ``load`` and ``from_bytes`` still return a
TDRModel, built by the builder registered here under ``"model"``. The package
``__init__`` registers it, and it loads :mod:`tdrdenoise.model` only when a model is
built, so that importing tdrdenoise (and ``tdrdenoise --help``) does not import torch.
The dependency is inverted rather than imported, as the readers of
``astropy.io.registry`` register with the classes they read into.

This module imports nothing.
"""
__all__ = ["register", "build"]

_BUILDERS = {}


def register(kind, builder):
    """Make ``builder`` the builder of ``kind`` (replacing any earlier one)."""
    _BUILDERS[kind] = builder


def build(kind, *args, **kwargs):
    """Call the builder of ``kind`` with the arguments given.

    Raises
    ------
    RuntimeError
        If no builder of ``kind`` is registered (the package ``__init__`` registers
        them; importing any part of tdrdenoise runs it first).
    """
    try:
        builder = _BUILDERS[kind]
    except KeyError:
        raise RuntimeError(f"no {kind} builder is registered; import tdrdenoise") from None
    return builder(*args, **kwargs)
