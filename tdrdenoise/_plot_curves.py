"""Figures of curves: power spectra (:func:`plot_power_spectra`) and the restore-threshold
sweep (:func:`plot_r_sweep`); :mod:`tdrdenoise.visualization` gives them to users."""
import numpy as np
from astropy import units as u

from ._plot_helpers import named_images, new_figure, require_matplotlib, unit_label
from .metrics._core import FREQUENCY_UNIT, filled, first_deviation, images, spectrum

__all__ = ["plot_power_spectra", "plot_r_sweep"]

# pytest-doctestplus: the examples need matplotlib
__doctest_requires__ = {("plot_*",): ["matplotlib"]}


def plot_power_spectra(initial, denoised, *, reference=None, tolerance=0.1, window=None,
                       fig=None, labels=None):
    """Azimuthally averaged power spectra, their ratio and the deviation frequency.

    The upper panel shows the spectra of :func:`tdrdenoise.metrics.power_spectrum`,
    the lower one their ratios to the initial spectrum with the tolerance band; a
    vertical line marks the :func:`tdrdenoise.metrics.deviation_frequency` of the
    denoised image.

    Parameters
    ----------
    initial, denoised : CCDData, NDData, sunpy Map, Quantity or array-like
        The noisy image and its denoised version.
    reference : CCDData, NDData, sunpy Map, Quantity or array-like, optional
        A clean reference, drawn too.
    tolerance : float, optional
        Tolerance of the deviation frequency, in dex.
    window : {None, 'hann'}, optional
        Apodisation before the FFT.
    fig : `~matplotlib.figure.Figure`, optional
        Figure to draw into (cleared); default a new one.
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
    >>> from tdrdenoise.visualization import plot_power_spectra
    >>> noisy = np.random.default_rng(0).normal(size=(32, 32))
    >>> fig = plot_power_spectra(noisy, 0.5 * noisy)
    >>> len(fig.axes)
    2
    """
    require_matplotlib()
    named, names = named_images(initial, denoised, reference, labels)
    arrays, valid, unit = images(*named)
    spectra = [spectrum(filled(x, valid), window) for x in arrays]
    freq = spectra[0][0]
    f_dev = first_deviation(spectra[0][1], spectra[1][1], freq, tolerance, 3)
    fig = new_figure(fig, (5.6, 5.0))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    for name, (_, power) in zip(names, spectra):
        top.loglog(freq, power, label=name)
    for (_, power), color in zip(spectra[1:], ("C1", "C2")):
        bottom.loglog(freq, power / spectra[0][1], color=color)
    bottom.axhspan(10 ** -tolerance, 10 ** tolerance, color="0.85", label="tolerance")
    bottom.axhline(1.0, color="k", lw=0.8)
    for ax in (top, bottom):
        ax.axvline(f_dev, color="r", ls=":", lw=1.2)
    top.plot([], [], "r:", label=f"deviation at {f_dev:.3f} pix$^{{-1}}$")
    top.set_ylabel("power" + unit_label(unit ** 2 if unit is not None else None))
    top.legend(fontsize="small")
    bottom.set_ylabel(f"ratio to {names[0]}")
    bottom.set_xlabel(f"spatial frequency [{FREQUENCY_UNIT.to_string('latex_inline')}]")
    bottom.set_xlim(freq[0], 0.5)
    fig.tight_layout()
    return fig


def plot_r_sweep(table, *, fig=None):
    """The restore-threshold sweep of :func:`tdrdenoise.metrics.r_sweep` in four panels.

    Restored fraction, noise level, linear coefficient and deviation frequency
    against R. Finite R are drawn as points; R = ∞ (no restoring) as a dashed
    horizontal line; the noise level of the initial image (``table.meta``), below
    which the paper chooses R, as a dotted vertical line.

    Parameters
    ----------
    table : `~astropy.table.Table`
        Output of :func:`~tdrdenoise.metrics.r_sweep`.
    fig : `~matplotlib.figure.Figure`, optional
        Figure to draw into (cleared); default a new one.

    Returns
    -------
    `~matplotlib.figure.Figure`

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    ValueError
        If ``table`` lacks a column of :func:`~tdrdenoise.metrics.r_sweep`.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.metrics import r_sweep
    >>> from tdrdenoise.visualization import plot_r_sweep
    >>> noisy = np.random.default_rng(0).normal(size=(32, 32))
    >>> fig = plot_r_sweep(r_sweep(noisy, 0.2 * noisy, [0.5, 1.0, np.inf]))
    >>> len(fig.axes)
    4
    """
    require_matplotlib()
    columns = ["restored_fraction", "noise_level", "linear_coefficient",
               "deviation_frequency"]
    missing = [c for c in ["R"] + columns if c not in table.colnames]
    if missing:
        raise ValueError(f"table lacks the column(s) {missing}; pass the output of "
                         "tdrdenoise.metrics.r_sweep")

    def values(col):
        col = table[col]
        return (np.asarray(col.value, float) if isinstance(col, u.Quantity)
                else np.asarray(col, float)), getattr(col, "unit", None)

    R, unit = values("R")
    finite = np.isfinite(R)
    noise = table.meta.get("noise_initial")
    if isinstance(noise, u.Quantity):
        noise = noise.to_value(unit) if unit is not None else noise.value
    fig = new_figure(fig, (8.0, 6.0))
    axes = fig.subplots(2, 2, sharex=True).ravel()
    for ax, name in zip(axes, columns):
        y, y_unit = values(name)
        ax.plot(R[finite], y[finite], "o-", label="finite R")
        for value in y[~finite]:
            ax.axhline(value, color="k", ls="--", lw=1, label="R = ∞")
        if noise is not None:
            ax.axvline(noise, color="0.5", ls=":", label="noise level of initial")
        label = name.replace("_", " ")
        if y_unit is not None and y_unit != u.dimensionless_unscaled:
            label += unit_label(y_unit)
        ax.set_ylabel(label)
    for ax in axes[2:]:
        ax.set_xlabel("R" + unit_label(unit))
    handles, labels = axes[0].get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    axes[0].legend(unique.values(), unique.keys(), fontsize="small")
    fig.tight_layout()
    return fig
