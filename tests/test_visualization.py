"""Every figure of tdrdenoise.visualization renders with the Agg backend."""
import importlib.util
import sys

import numpy as np
import pytest
from astropy import units as u
from astropy.nddata import CCDData, NDData
from astropy.stats import mad_std
from astropy.wcs import WCS
from scipy import ndimage

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from tdrdenoise import visualization  # noqa: E402
from tdrdenoise.metrics import deviation_frequency, noise_level, r_sweep  # noqa: E402
from tdrdenoise.visualization import (plot_comparison, plot_histograms,  # noqa: E402
                                      plot_power_spectra, plot_r_sweep, plot_scatter)

KINDS = ["ndarray", "quantity", "ccddata", "nddata"]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64].astype(float)
    truth = 5 * np.sin(xx / 5.0) * np.cos(yy / 7.0)
    noisy = truth + rng.normal(0, 1.0, truth.shape)
    noisy[3, 4] = np.nan
    return truth, noisy, ndimage.gaussian_filter(np.nan_to_num(noisy), 1.0)


def wcs():
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [53.4, -36.1]
    w.wcs.crpix = [32, 32]
    w.wcs.cdelt = [-1e-5, 1e-5]
    return w


def wrap(kind, data, unit=u.G):
    if kind == "ndarray":
        return data
    if kind == "quantity":
        return data * unit
    return {"ccddata": CCDData, "nddata": NDData}[kind](data, unit=unit)


def render(fig):
    assert isinstance(fig, Figure)
    fig.canvas.draw()
    return fig


@pytest.mark.parametrize("kind", KINDS)
def test_plot_comparison(pair, kind):
    truth, noisy, denoised = pair
    fig = render(plot_comparison(wrap(kind, noisy), wrap(kind, denoised)))
    images = [ax for ax in fig.axes if ax.get_images()]
    assert len(images) == 4  # initial, denoised, residual, SNR
    assert images[2].get_images()[0].get_array().shape == noisy.shape
    fig = render(plot_comparison(wrap(kind, noisy), wrap(kind, denoised),
                                 reference=wrap(kind, truth), snr=False, stretch="asinh"))
    assert [ax.get_title() for ax in fig.axes if ax.get_images()] == [
        "initial", "denoised", "reference", "residual (initial - denoised)"]


def test_plot_comparison_uses_wcs(pair):
    _, noisy, denoised = pair
    ccd = CCDData(noisy, unit="adu", wcs=wcs())
    fig = render(plot_comparison(ccd, denoised * u.adu))
    assert type(fig.axes[0]).__name__ == "WCSAxes"
    fig = render(plot_comparison(noisy, denoised))
    assert type(fig.axes[0]).__name__ != "WCSAxes"


def test_plot_comparison_sunpy_map(pair):
    sunpy_map = pytest.importorskip("sunpy.map")
    _, noisy, denoised = pair
    header = {"bunit": "G", "cdelt1": 1, "cdelt2": 1, "ctype1": "HPLN-TAN",
              "ctype2": "HPLT-TAN", "cunit1": "arcsec", "cunit2": "arcsec", "crpix1": 32,
              "crpix2": 32, "crval1": 0, "crval2": 0, "date-obs": "2020-01-01T00:00:00",
              "hgln_obs": 0, "hglt_obs": 0, "dsun_obs": 1.5e11, "rsun_ref": 6.96e8}
    m = sunpy_map.Map(noisy, header)
    fig = render(plot_comparison(m, sunpy_map.Map(denoised, header)))
    assert type(fig.axes[0]).__name__ == "WCSAxes"


def test_plot_scatter(pair):
    _, noisy, denoised = pair
    fig = render(plot_scatter(noisy * u.G, denoised * u.G, bins=50))
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[0] == "y = x" and labels[1].startswith("fit: slope")
    assert "G" in ax.get_xlabel()
    fit = ax.get_lines()[1].get_ydata()
    y_x = ax.get_lines()[0].get_ydata()
    assert fit[1] - fit[0] < y_x[1] - y_x[0]  # smoothing lowers the slope
    fig = render(plot_scatter(noisy, denoised, limits=(-3, 3)))
    assert fig.axes[0].get_xlim() == (-3, 3)


def test_plot_histograms(pair):
    truth, noisy, denoised = pair
    fig = render(plot_histograms(noisy - truth, denoised - truth, range=4.0,
                                 reference=np.zeros_like(truth) + np.random.default_rng(
                                     1).normal(0, 0.1, truth.shape), log=True))
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 3
    assert ax.get_yscale() == "log"
    assert ax.get_legend_handles_labels()[1][0].startswith("initial: σ = ")
    fig = render(plot_histograms(noisy, denoised, range=4.0, labels=["raw", "TDR"]))
    assert fig.axes[0].get_legend_handles_labels()[1][1].startswith("TDR: σ = ")
    with pytest.raises(ValueError, match="labels"):
        plot_histograms(noisy, denoised, labels=["raw"])


def test_plot_histograms_share_the_initial_window(pair):
    """Without range, every histogram is fitted over the initial image's window."""
    _, noisy, denoised = pair
    fig = render(plot_histograms(noisy, 0.3 * denoised, center=None))
    ax = fig.axes[0]
    patches = list(ax.patches)
    assert len(patches) == 2
    # the same window: both stairs span the same values
    spans = [tuple(np.round(p.get_path().vertices[[0, -1], 0], 9)) for p in patches]
    assert spans[0] == spans[1]
    valid = np.isfinite(noisy)
    half = 5 * float(mad_std(noisy[valid]))
    sigma, _ = noise_level(np.where(valid, 0.3 * denoised, np.nan), range=half,
                           center=float(np.nanmedian(noisy)))
    assert ax.get_legend_handles_labels()[1][1] == f"denoised: σ = {sigma:.3g}"


def test_plot_comparison_snr_methods(pair):
    _, noisy, denoised = pair
    fig = render(plot_comparison(noisy, denoised, snr_method="global", noise=1.0))
    assert fig.axes[3].get_title() == "SNR of denoised"
    render(plot_comparison(noisy, denoised, noise=1.0))  # noise given: global
    with pytest.raises(ValueError, match="method='global'"):
        plot_comparison(noisy, denoised, snr_method="residual", noise=1.0)
    render(plot_comparison(noisy, noisy))  # every pixel unchanged: an empty SNR panel


def test_plot_power_spectra(pair):
    truth, noisy, denoised = pair
    fig = render(plot_power_spectra(noisy, denoised, reference=truth))
    top, bottom = fig.axes
    assert len(top.get_lines()) >= 3
    f_dev = deviation_frequency(noisy, denoised).value
    marker = [line for line in bottom.get_lines() if line.get_linestyle() == ":"][0]
    assert marker.get_xdata()[0] == pytest.approx(f_dev)
    assert bottom.get_xlim()[1] == pytest.approx(0.5)


def test_plot_r_sweep(pair):
    _, noisy, denoised = pair
    table = r_sweep(noisy * u.G, denoised * u.G, [0.5, 1.0, 2.0, np.inf] * u.G)
    fig = render(plot_r_sweep(table))
    assert len(fig.axes) == 4
    assert "G" in fig.axes[2].get_xlabel()
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels == ["finite R", "R = ∞", "noise level of initial"]
    with pytest.raises(ValueError, match="r_sweep"):
        plot_r_sweep(table[["R", "noise_level"]])


def test_fig_argument_is_reused(pair):
    _, noisy, denoised = pair
    fig = plt.figure()
    for function in (plot_scatter, plot_power_spectra, plot_histograms):
        assert function(noisy, denoised, fig=fig) is fig
        render(fig)
    assert plot_comparison(noisy, denoised, fig=fig) is fig
    assert len([ax for ax in fig.axes if ax.get_images()]) == 4


def test_bare_figure_leaves_pyplot_alone(pair):
    """A Figure made without pyplot is drawn into; pyplot gains no figure."""
    import io

    _, noisy, denoised = pair
    before = plt.get_fignums()
    for function in (plot_comparison, plot_scatter, plot_histograms, plot_power_spectra):
        fig = Figure(figsize=(8, 3))
        assert function(noisy, denoised, fig=fig) is fig
        fig.savefig(io.BytesIO(), format="png")
    assert plt.get_fignums() == before


def test_import_without_matplotlib(monkeypatch):
    """The module imports without matplotlib; its functions say how to get it."""
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    spec = importlib.util.spec_from_file_location("tdrdenoise._vis_copy",
                                                  visualization.__file__)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    image = np.random.default_rng(2).normal(size=(16, 16))
    calls = [(name, (image, image)) for name in module.__all__ if name != "plot_r_sweep"]
    for name, args in calls + [("plot_r_sweep", (r_sweep(image, image, [1.0]),))]:
        with pytest.raises(ImportError, match="pip install matplotlib"):
            getattr(module, name)(*args)
