"""Helpers shared by the figures of :mod:`tdrdenoise.visualization`: the lazy import of
matplotlib, the figure to draw into, WCS and axis labels."""
from .io.containers import unpack

__all__ = ["require_matplotlib", "new_figure", "wcs_of", "named_images", "unit_label"]


def require_matplotlib():
    """Import matplotlib, or raise an ImportError that says how to get it."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError("tdrdenoise.visualization needs matplotlib: "
                          "pip install matplotlib") from exc


def new_figure(fig, figsize):
    """A cleared ``fig``, or a new pyplot figure of ``figsize``.

    pyplot is imported only for a new figure: a `~matplotlib.figure.Figure` of the
    caller's (even one made without pyplot) is drawn into as it is.
    """
    if fig is None:
        import matplotlib.pyplot as plt
        return plt.figure(figsize=figsize)
    fig.clear()
    return fig


def wcs_of(image):
    """The celestial WCS an image carries (CCDData/NDData/Map), or None."""
    wcs = getattr(unpack(image, "image").original, "wcs", None)
    if wcs is None or getattr(wcs, "naxis", 2) != 2:
        return None
    return wcs


def named_images(initial, denoised, reference, labels):
    """(image, argument name) pairs for images(), and the names shown in the figure."""
    named = [(initial, "initial"), (denoised, "denoised")]
    if reference is not None:
        named.append((reference, "reference"))
    names = [name for _, name in named] if labels is None else list(labels)
    if len(names) != len(named):
        raise ValueError(f"labels must name {len(named)} images; got {len(names)}")
    return named, names


def unit_label(unit):
    return f" [{unit.to_string('latex_inline')}]" if unit is not None else ""
