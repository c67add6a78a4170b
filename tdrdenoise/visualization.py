"""Paper-style figures of a denoising result (matplotlib, an optional dependency).

Each function draws one figure and returns the `~matplotlib.figure.Figure`; pass
``fig=`` to draw into a figure of your own (it is cleared first; pyplot is then not
used). matplotlib is imported only when a function is called.

- :func:`plot_comparison`: image, denoised, residual and SNR panels (WCS axes when
  the image carries a WCS).
- :func:`plot_scatter`: density of denoised against initial values, the linear fit
  and y = x.
- :func:`plot_histograms`: pixel histograms with their Gaussian fits.
- :func:`plot_power_spectra`: azimuthally averaged spectra and the deviation
  frequency.
- :func:`plot_r_sweep`: the table of :func:`tdrdenoise.metrics.r_sweep`.

The curve figures (spectra, R sweep) are drawn in ``_plot_curves.py``, the helpers
shared by all figures live in ``_plot_helpers.py``.
"""
import numpy as np
from astropy import units as u

from ._plot_curves import plot_power_spectra, plot_r_sweep
from ._plot_helpers import named_images, new_figure, require_matplotlib, unit_label, wcs_of
from .metrics import snr_map
from .metrics._core import images, linear_fit, noise_fit, noise_window

__all__ = ["plot_comparison", "plot_scatter", "plot_histograms", "plot_power_spectra",
           "plot_r_sweep"]

# pytest-doctestplus: the examples need matplotlib
__doctest_requires__ = {("plot_*",): ["matplotlib"]}


def plot_comparison(initial, denoised, reference=None, *, fig=None, stretch="linear",
                    percent=99.5, cmap="gray", snr=True, snr_method=None, noise=None,
                    labels=None):
    """Image, denoised, (reference), residual and SNR panels side by side.

    The image panels share one normalisation (from ``initial``); the residual
    ``initial − denoised`` is shown on a symmetric diverging scale; the SNR panel is
    :func:`tdrdenoise.metrics.snr_map` (by default the paper's per-pixel residual
    definition, which leaves restored pixels out; the global one when ``noise`` is
    given) with a contour at SNR = 3. When ``initial``
    carries a WCS (CCDData, NDData or sunpy Map), the panels are WCS axes.

    Parameters
    ----------
    initial, denoised : CCDData, NDData, sunpy Map, Quantity or array-like
        The noisy image and its denoised version.
    reference : CCDData, NDData, sunpy Map, Quantity or array-like, optional
        A clean reference, shown as an extra panel.
    fig : `~matplotlib.figure.Figure`, optional
        Figure to draw into (cleared); default a new one.
    stretch : str, optional
        Stretch of the image panels for `astropy.visualization.simple_norm`
        (``"linear"``, ``"asinh"``, ``"sqrt"``, ``"log"``, ...).
    percent : float, optional
        Percentage of pixels inside the colour range.
    cmap : str, optional
        Colour map of the image panels.
    snr : bool, optional
        Draw the SNR panel.
    snr_method : {'residual', 'global'}, optional
        Definition of the noise of the SNR (the ``method`` of
        :func:`~tdrdenoise.metrics.snr_map`); None (default): ``'global'`` when
        ``noise`` is given, else the paper's ``'residual'``.
    noise : float or `~astropy.units.Quantity`, optional
        Noise of ``initial`` for the global SNR.
    labels : sequence of str, optional
        Names shown for initial, denoised (and reference); default those words.

    Returns
    -------
    `~matplotlib.figure.Figure`

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    ValueError
        If the shapes differ or no pixel is valid in all images.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.visualization import plot_comparison
    >>> noisy = np.random.default_rng(0).normal(size=(32, 32))
    >>> fig = plot_comparison(noisy, 0.5 * noisy)
    >>> [ax.get_title() for ax in fig.axes[:4]]
    ['initial', 'denoised', 'residual (initial - denoised)', 'SNR of denoised']
    """
    require_matplotlib()
    from astropy.visualization import simple_norm

    named, names = named_images(initial, denoised, reference, labels)
    arrays, valid, unit = images(*named)
    shown = [np.where(valid, x, np.nan) for x in arrays]
    panels = list(zip(names, shown))
    n = len(panels) + 1 + bool(snr)
    fig = new_figure(fig, (3.6 * n, 3.6))
    wcs = wcs_of(initial)
    norm = simple_norm(shown[0][valid], stretch, percent=percent)
    res = shown[0] - shown[1]
    lim = float(np.nanpercentile(np.abs(res), percent)) or 1.0
    axes = [fig.add_subplot(1, n, i + 1, projection=wcs) for i in range(n)]
    for ax, (name, data) in zip(axes, panels):
        # clipped first, so that resampling a few extreme pixels cannot shift the colours
        shown_data = np.clip(data, norm.vmin, norm.vmax)
        im = ax.imshow(shown_data, origin="lower", cmap=cmap, norm=norm,
                       interpolation="nearest")
        ax.set_title(name)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=unit_label(unit).strip())
    ax = axes[len(panels)]
    im = ax.imshow(np.clip(res, -lim, lim), origin="lower", cmap="RdBu_r", vmin=-lim,
                   vmax=lim, interpolation="nearest")
    ax.set_title("residual (initial - denoised)")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=unit_label(unit).strip())
    if snr:
        ax = axes[-1]
        s = np.where(valid, snr_map(initial, denoised, noise=noise, method=snr_method),
                     np.nan)
        finite = s[np.isfinite(s)]  # none when every pixel was restored
        top = max(float(np.percentile(finite, percent)), 3.0) if finite.size else 3.0
        im = ax.imshow(np.clip(s, 0, top), origin="lower", cmap="viridis", vmin=0, vmax=top,
                       interpolation="nearest")
        if finite.size and finite.max() > 3.0 > finite.min():
            ax.contour(np.nan_to_num(s), levels=[3.0], colors="white", linewidths=0.6)
        ax.set_title("SNR of denoised")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if wcs is None:
        for ax in axes:
            ax.set_xlabel("x [pix]")
        axes[0].set_ylabel("y [pix]")
    fig.tight_layout()
    return fig


def plot_scatter(initial, denoised, *, fig=None, bins=200, limits=None):
    """Density of denoised against initial pixel values, with the linear fit and y = x.

    Parameters
    ----------
    initial, denoised : CCDData, NDData, sunpy Map, Quantity or array-like
        The noisy image and its denoised version.
    fig : `~matplotlib.figure.Figure`, optional
        Figure to draw into (cleared); default a new one.
    bins : int, optional
        Bins of the 2-D histogram along each axis.
    limits : (float, float) or `~astropy.units.Quantity`, optional
        Value range of both axes, in the image unit; default the 0.1 and 99.9
        percentiles of ``initial``.

    Returns
    -------
    `~matplotlib.figure.Figure`

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    ValueError
        If the shapes differ, no pixel is valid in both, or ``initial`` is constant.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.visualization import plot_scatter
    >>> noisy = np.random.default_rng(0).normal(size=(32, 32))
    >>> fig = plot_scatter(noisy, 0.5 * noisy)
    >>> fig.axes[0].get_xlabel()
    'initial'
    """
    require_matplotlib()
    from matplotlib.colors import LogNorm

    (a, d), valid, unit = images((initial, "initial"), (denoised, "denoised"))
    x, y = a[valid], d[valid]
    slope, intercept = linear_fit(x, y)
    if limits is None:
        lo, hi = np.percentile(x, [0.1, 99.9])
    else:
        lo, hi = (u.Quantity(limits).to_value(unit) if isinstance(limits, u.Quantity)
                  else limits)
    if not hi > lo:
        lo, hi = float(x.min()) - 0.5, float(x.max()) + 0.5
    fig = new_figure(fig, (5.0, 4.4))
    ax = fig.add_subplot(1, 1, 1)
    _, _, _, im = ax.hist2d(x, y, bins=bins, range=[[lo, hi], [lo, hi]], norm=LogNorm(),
                            cmap="viridis")
    line = np.array([lo, hi])
    ax.plot(line, line, "k--", lw=1, label="y = x")
    ax.plot(line, slope * line + intercept, "r-", lw=1.2,
            label=f"fit: slope {slope:.3f}, intercept {intercept:.3g}")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xlabel("initial" + unit_label(unit))
    ax.set_ylabel("denoised" + unit_label(unit))
    ax.legend(loc="upper left", fontsize="small")
    fig.colorbar(im, ax=ax, label="pixels", shrink=0.85)
    fig.tight_layout()
    return fig


def plot_histograms(initial, denoised, range=None, *, center=0, reference=None, fig=None,
                    bins=None, log=False, labels=None):
    """Pixel histograms of the images with the Gaussian fits of the noise level.

    The histograms and fits are those of :func:`tdrdenoise.metrics.noise_level`,
    all over one window (as the paper fits every image over ±20 G, and as
    :func:`~tdrdenoise.metrics.evaluate` does): ``center ± range`` when given, else
    the window of the *initial* image (centred on 0, or on its median with
    ``center=None``; five robust standard deviations of it wide). They are drawn as
    densities (fraction of the valid pixels per unit value) so that they compare.

    Parameters
    ----------
    initial, denoised : CCDData, NDData, sunpy Map, Quantity or array-like
        The noisy image and its denoised version.
    range, center : optional
        Histogram window, as in :func:`~tdrdenoise.metrics.noise_level`, computed
        from ``initial`` and used for every image.
    reference : CCDData, NDData, sunpy Map, Quantity or array-like, optional
        A clean reference, histogrammed too.
    fig : `~matplotlib.figure.Figure`, optional
        Figure to draw into (cleared); default a new one.
    bins : int, optional
        Number of bins; default as in :func:`~tdrdenoise.metrics.noise_level`.
    log : bool, optional
        Logarithmic count axis.
    labels : sequence of str, optional
        Names shown for initial, denoised (and reference); default those words.

    Returns
    -------
    `~matplotlib.figure.Figure`

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    ValueError
        If the shapes differ or a window holds too few pixels.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.visualization import plot_histograms
    >>> noisy = np.random.default_rng(0).normal(size=(64, 64))
    >>> fig = plot_histograms(noisy, 0.5 * noisy, range=3.0)
    >>> len(fig.axes[0].get_lines())  # one Gaussian fit per image
    2
    """
    require_matplotlib()
    named, names = named_images(initial, denoised, reference, labels)
    arrays, valid, unit = images(*named)
    window = noise_window(arrays[0], valid, unit, range, center)
    fig = new_figure(fig, (5.6, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    u_text = f" {unit.to_string()}" if unit is not None else ""
    heights = []
    for name, data, color in zip(names, arrays, ("C0", "C1", "C2")):
        sigma, model, counts, edges = noise_fit(data, valid, window, bins)
        # as a density, so that histograms of different bin widths compare
        scale = 1.0 / (valid.sum() * (edges[1] - edges[0]))
        ax.stairs(counts * scale, edges, color=color, alpha=0.8)
        heights.append(counts[counts > 0] * scale)
        x = np.linspace(edges[0], edges[-1], 400)
        ax.plot(x, model(x) * scale, color=color, ls="--",
                label=f"{name}: σ = {sigma:.3g}{u_text}")
    if log:
        heights = np.concatenate(heights)
        ax.set_yscale("log")
        ax.set_ylim(0.5 * heights.min(), 2 * heights.max())  # not the fits' far tails
    ax.set_xlabel("pixel value" + unit_label(unit))
    ax.set_ylabel("fraction of pixels per unit value")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
