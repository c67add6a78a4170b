"""The version of tdrdenoise, and nothing else (imports nothing of the package).

The version comes from git through setuptools_scm, which writes ``_version.py`` at
build time; a source tree that was never built falls back to the installed
metadata, then to ``0.0.0``. Every module that needs the version imports it from
here, never from the package ``__init__``.
"""
try:
    from ._version import version as __version__
except ImportError:  # pragma: no cover
    from importlib.metadata import PackageNotFoundError, version as _dist_version
    try:
        __version__ = _dist_version("tdrdenoise")
    except PackageNotFoundError:
        __version__ = "0.0.0"

__all__ = ["__version__"]
