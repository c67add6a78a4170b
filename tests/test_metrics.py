"""Tests of tdrdenoise.metrics on small generated images with known truth."""
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.modeling.models import Gaussian1D
from astropy.nddata import CCDData, NDData, StdDevUncertainty
from astropy.table import QTable
from scipy import ndimage

from tdrdenoise import metrics
from tdrdenoise.metrics import (absolute_error, deviation_frequency, detect_sources, evaluate,
                                linear_coefficient, mean_squared_error, noise_level,
                                pearson_cc, power_spectrum, psnr, r_sweep, residual_flux,
                                restored_fraction, snr_map, ssim)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
KINDS = ["ndarray", "quantity", "ccddata", "nddata"]
SIGMA = 8.09


def wrap(kind, data, unit=u.G, **kwargs):
    """``data`` in the container ``kind`` (with ``unit`` unless an ndarray)."""
    if kind == "ndarray":
        return data
    if kind == "quantity":
        return data * unit
    if kind == "ccddata":
        return CCDData(data, unit=unit, **kwargs)
    if kind == "nddata":
        return NDData(data, unit=unit, **kwargs)
    raise ValueError(kind)


def value(kind, x, unit=u.G):
    """A scalar argument matching the container: plain for ndarray, else a Quantity."""
    return x if kind == "ndarray" else x * unit


def strip(x):
    return x.value if isinstance(x, u.Quantity) else x


@pytest.fixture(scope="module")
def magnetogram():
    """Noise of sigma 8.09 plus strong, sparse signal (sunspots and network)."""
    rng = np.random.default_rng(5)
    image = rng.normal(0, SIGMA, (400, 400))
    signal = np.zeros_like(image)
    idx = rng.choice(image.size, 800, replace=False)
    signal.flat[idx] = rng.choice([-1, 1], idx.size) * rng.uniform(300, 1500, idx.size)
    signal = ndimage.maximum_filter(np.abs(signal), 3) * np.sign(
        ndimage.uniform_filter(signal, 3) + 1e-9)
    return image + signal


@pytest.fixture(scope="module")
def field():
    """A smooth structured field of order 1."""
    yy, xx = np.mgrid[:128, :128].astype(float)
    return np.sin(xx / 5.0) * np.cos(yy / 7.0) + 0.5 * np.sin((xx + yy) / 11.0)


# ---------------------------------------------------------------------- noise_level
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("window", [20.0, None])
def test_noise_level_recovers_sigma(magnetogram, kind, window):
    assert np.mean(np.abs(magnetogram) > 100) > 0.02  # the signal is there and strong
    rng = None if window is None else value(kind, window)
    sigma, model = noise_level(wrap(kind, magnetogram), range=rng)
    if kind == "ndarray":
        assert isinstance(sigma, float)
    else:
        assert sigma.unit == u.G
    assert strip(sigma) == pytest.approx(SIGMA, rel=0.02)
    assert isinstance(model, Gaussian1D)
    assert model.stddev.value == pytest.approx(strip(sigma))
    assert abs(model.mean.value) < 0.5


def test_noise_level_plain_std_is_fooled(magnetogram):
    """The signal makes the plain standard deviation useless: the fit is needed."""
    assert np.std(magnetogram) > 5 * SIGMA


def test_noise_level_excludes_nan_and_masked(magnetogram):
    image = magnetogram.copy()
    image[:40] = np.nan
    image[100:200, 100:200] = 5.0  # a flat patch inside the window, masked below
    mask = np.zeros(image.shape, bool)
    mask[100:200, 100:200] = True
    sigma, _ = noise_level(CCDData(image, unit="G", mask=mask), range=20 * u.G)
    assert sigma.value == pytest.approx(SIGMA, rel=0.02)
    unmasked, _ = noise_level(np.where(mask, 5.0, image), range=20.0)
    assert abs(unmasked / SIGMA - 1) > 0.05  # the patch would have spoiled it


def test_noise_level_center(magnetogram):
    offset = magnetogram + 1000.0
    sigma, model = noise_level(offset, range=20.0, center=None)
    assert sigma == pytest.approx(SIGMA, rel=0.02)
    assert model.mean.value == pytest.approx(1000.0, abs=0.5)
    sigma, _ = noise_level(offset * u.G, range=2 * u.mT, center=100 * u.mT)
    assert sigma.value == pytest.approx(SIGMA, rel=0.02)
    with pytest.raises(ValueError, match="center=None"):
        noise_level(offset, range=20.0)


def test_noise_level_errors(magnetogram):
    with pytest.raises(ValueError, match="positive"):
        noise_level(magnetogram, range=-1.0)
    with pytest.raises(u.UnitsError, match="range"):
        noise_level(magnetogram * u.G, range=20 * u.m)
    with pytest.raises(u.UnitsError, match="has a unit but the image has none"):
        noise_level(magnetogram, range=20 * u.G)
    with pytest.raises(ValueError, match="no valid pixels"):
        noise_level(np.full((8, 8), np.nan))
    with pytest.raises(TypeError):
        noise_level("image")


# ---------------------------------------------------------------------- paired metrics
@pytest.mark.parametrize("kind", KINDS)
def test_linear_coefficient_identity_is_one(field, kind):
    noisy = field + np.random.default_rng(0).normal(0, 0.3, field.shape)
    assert linear_coefficient(wrap(kind, noisy), wrap(kind, noisy)) == 1.0
    assert linear_coefficient(wrap(kind, noisy), wrap(kind, 2 * noisy + 3)) == \
        pytest.approx(2.0)


def test_linear_coefficient_of_shrinkage(field):
    rng = np.random.default_rng(1)
    noisy = field + rng.normal(0, 0.3, field.shape)
    # a denoiser that halves the strong features has a coefficient near 0.5
    assert linear_coefficient(noisy, 0.5 * field) == pytest.approx(
        0.5 * np.var(field) / np.var(noisy), rel=0.05)
    with pytest.raises(ValueError, match="constant"):
        linear_coefficient(np.ones((8, 8)), noisy[:8, :8])


@pytest.mark.parametrize("kind", KINDS)
def test_errors_and_residual_flux_keep_units(kind):
    initial = np.array([[0.0, 1.0], [2.0, 3.0]])
    denoised = np.array([[1.0, 1.0], [0.0, 3.0]])
    ae = absolute_error(wrap(kind, initial), wrap(kind, denoised))
    mse = mean_squared_error(wrap(kind, initial), wrap(kind, denoised))
    mean, mean_abs = residual_flux(wrap(kind, initial), wrap(kind, denoised))
    assert strip(ae) == 0.75 and strip(mse) == 1.25
    assert strip(mean) == 0.25 and strip(mean_abs) == 0.75
    if kind != "ndarray":
        assert ae.unit == u.G and mean.unit == u.G and mean_abs.unit == u.G
        assert mse.unit == u.G ** 2


def test_units_are_converted_and_checked(field):
    image = field * u.G
    assert absolute_error(image, image.to(u.mT)).value == pytest.approx(0, abs=1e-12)
    assert mean_squared_error(image, image.to(u.mT) * 1.1).unit == u.G ** 2
    with pytest.raises(u.UnitsError, match="denoised"):
        absolute_error(image, field * u.m)
    with pytest.raises(ValueError, match="same shape"):
        absolute_error(field, field[:10])


def test_invalid_pixels_are_excluded_from_pairs(field):
    initial = field.copy()
    denoised = field.copy()
    initial[0, :5] = np.nan
    denoised[1, :5] = 1e6  # masked below
    mask = np.zeros(field.shape, bool)
    mask[1, :5] = True
    ccd = CCDData(denoised, unit="G", mask=mask)
    assert absolute_error(initial * u.G, ccd).value == 0.0
    assert pearson_cc(initial, np.ma.MaskedArray(denoised, mask)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no pixel valid"):
        absolute_error(np.full((4, 4), np.nan), np.zeros((4, 4)))


def test_pearson_cc(field):
    assert pearson_cc(field, field) == pytest.approx(1.0)
    assert pearson_cc(field, -3 * field + 1) == pytest.approx(-1.0)
    noise = np.random.default_rng(2).normal(size=field.shape)
    assert abs(pearson_cc(field, noise)) < 0.05
    assert np.isnan(pearson_cc(field, np.ones_like(field)))


def test_restored_fraction():
    initial = np.arange(10.0).reshape(2, 5)
    denoised = initial + np.array([[0, 0.5, 1.5, 3, 0], [0, 0, 0, 2, 0.1]])
    assert restored_fraction(initial, denoised, R=1.0) == 0.3
    assert restored_fraction(initial, denoised, R=np.inf) == 0.0
    assert restored_fraction(initial * u.G, denoised * u.G, R=0.1 * u.mT) == 0.3
    assert restored_fraction(initial, denoised) == 0.5  # pixels equal to initial
    # a float32 output restored from float64 input still counts as equal
    assert restored_fraction(initial + 0.1, (denoised + 0.1).astype(np.float32)) == 0.5
    with pytest.raises(ValueError, match="non-negative"):
        restored_fraction(initial, denoised, R=-1)


# ---------------------------------------------------------------------- Fourier
@pytest.mark.parametrize("window", [None, "hann"])
def test_white_noise_spectrum_is_flat(window):
    sigma = 2.0
    noise = np.random.default_rng(3).normal(0, sigma, (256, 256)) * u.G
    freq, power = power_spectrum(noise, window=window)
    assert freq.unit == u.pix ** -1 and power.unit == u.G ** 2
    assert freq[0].value == pytest.approx(1 / 256) and freq[-1].value == pytest.approx(0.5)
    assert np.all(np.diff(freq.value) > 0)
    # flat at sigma**2: the same mean power at low and at high frequencies
    f = freq.value
    low = np.mean(power.value[(f > 0.05) & (f <= 0.25)])
    high = np.mean(power.value[f > 0.25])
    assert low == pytest.approx(sigma ** 2, rel=0.05)
    assert high == pytest.approx(sigma ** 2, rel=0.05)


def test_smooth_image_spectrum_falls(field):
    noise = np.random.default_rng(4).normal(size=(128, 128))
    freq, power = power_spectrum(ndimage.gaussian_filter(noise, 2.0))
    assert power[-1] < 1e-3 * power[0]
    with pytest.raises(ValueError, match="window"):
        power_spectrum(noise, window="bartlett")


def test_power_spectrum_ignores_nan():
    noise = np.random.default_rng(5).normal(size=(128, 128))
    holed = noise.copy()
    holed[:5, :5] = np.nan
    _, p_full = power_spectrum(noise)
    _, p_holed = power_spectrum(holed)
    assert np.all(np.isfinite(p_holed))
    np.testing.assert_allclose(p_holed, p_full, rtol=0.05)


def lowpass(image, cutoff):
    """``image`` with every Fourier mode above ``cutoff`` pix^-1 removed."""
    ny, nx = image.shape
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(ny), np.fft.fftfreq(nx), indexing="ij"))
    return np.fft.ifft2(np.fft.fft2(image) * (k <= cutoff)).real


@pytest.mark.parametrize("cutoff", [0.1, 0.28])
def test_deviation_frequency_of_lowpass(cutoff):
    noise = np.random.default_rng(6).normal(size=(200, 200))
    f = deviation_frequency(noise, lowpass(noise, cutoff))
    assert f.unit == u.pix ** -1
    assert f.value == pytest.approx(cutoff, abs=0.011)


def test_deviation_frequency_never():
    noise = np.random.default_rng(7).normal(size=(100, 100))
    assert deviation_frequency(noise, noise).value == 0.5
    assert deviation_frequency(noise, 1.1 * noise).value == 0.5  # 0.04 dex < 0.1
    assert deviation_frequency(noise, 1.1 * noise, tolerance=0.03).value < 0.05
    holed = noise.copy()
    holed[10:20, 10:20] = np.nan
    assert deviation_frequency(holed, noise).value == 0.5  # filled the same way
    with pytest.raises(ValueError, match="tolerance"):
        deviation_frequency(noise, noise, tolerance=0)


# ---------------------------------------------------------------------- SNR
def test_snr_map_uses_noise_of_initial():
    rng = np.random.default_rng(8)
    truth = np.full((128, 128), 10.0)
    initial = truth + rng.normal(0, 2.0, truth.shape)
    initial[0, 0] = np.nan
    snr = snr_map(initial * u.G, truth * u.G)
    assert np.isnan(snr[0, 0])
    assert np.nanmedian(snr) == pytest.approx(5.0, rel=0.03)
    np.testing.assert_allclose(snr_map(initial, truth, noise=4.0)[1:], 2.5)
    np.testing.assert_allclose(snr_map(initial * u.G, -truth * u.G, noise=0.4 * u.mT)[1:],
                               2.5)
    with pytest.raises(ValueError, match="positive"):
        snr_map(initial, truth, noise=0.0)


def test_snr_map_uses_uncertainty():
    initial = np.random.default_rng(9).normal(0, 1.0, (32, 32))
    ccd = CCDData(initial, unit="adu", uncertainty=StdDevUncertainty(np.full((32, 32), 2.0)))
    np.testing.assert_allclose(snr_map(ccd, np.full((32, 32), 6.0)), 3.0)


# ---------------------------------------------------------------------- reference
def test_psnr():
    reference = np.zeros((16, 16))
    reference[0, 0] = 2.0
    image = reference + 0.1
    assert psnr(image, reference, data_range=1.0) == pytest.approx(20.0)
    assert psnr(image, reference) == pytest.approx(20 + 20 * np.log10(2))  # range 2
    assert psnr(image * u.G, reference * u.G, data_range=0.1 * u.mT) == pytest.approx(20.0)
    assert psnr(reference, reference) == np.inf
    with pytest.raises(ValueError, match="data_range"):
        psnr(image, reference, data_range=0)


def test_ssim(field):
    rng = np.random.default_rng(10)
    noisy = field + rng.normal(0, 0.3, field.shape)
    assert ssim(field, field) == 1.0
    value = ssim(noisy, field, data_range=3.0)
    assert 0 < value < 1
    assert ssim(ndimage.gaussian_filter(noisy, 1.0), field, data_range=3.0) > value
    holed = noisy.copy()
    holed[40:44, 50:60] = np.nan
    assert ssim(holed, field, data_range=3.0) == pytest.approx(value, abs=0.01)
    with pytest.raises(ValueError, match="too small"):
        ssim(field[:8, :8], field[:8, :8])


def test_ssim_matches_scikit_image(field):
    structural_similarity = pytest.importorskip("skimage.metrics").structural_similarity
    noisy = field + np.random.default_rng(11).normal(0, 0.3, field.shape)
    expected = structural_similarity(noisy, field, data_range=3.0, gaussian_weights=True,
                                     sigma=1.5, use_sample_covariance=False)
    assert ssim(noisy, field, data_range=3.0) == pytest.approx(expected, rel=1e-9)


# ---------------------------------------------------------------------- evaluate
BASE_COLUMNS = ["mode", "noise_initial", "noise_denoised", "absolute_error",
                "mean_squared_error", "pearson_cc", "linear_coefficient", "residual_mean",
                "residual_mean_abs", "restored_fraction", "deviation_frequency"]


@pytest.mark.parametrize("kind", KINDS)
def test_evaluate_modes(field, kind):
    rng = np.random.default_rng(12)
    truth = 10 * field
    noisy = truth + rng.normal(0, 1.0, truth.shape)
    other = truth + rng.normal(0, 1.0, truth.shape)
    denoised = ndimage.gaussian_filter(noisy, 1.0)
    args = [wrap(kind, x) for x in (noisy, denoised, truth, other)]

    table = evaluate(args[0], args[1], range=value(kind, 30.0), center=None)
    assert isinstance(table, QTable) and len(table) == 1
    assert table.colnames == BASE_COLUMNS
    assert table["mode"][0] == "original"
    assert table["deviation_frequency"].unit == u.pix ** -1
    assert table["linear_coefficient"][0] == pytest.approx(linear_coefficient(noisy,
                                                                              denoised))
    if kind != "ndarray":
        assert table["noise_initial"].unit == u.G
        assert table["mean_squared_error"].unit == u.G ** 2
    assert table.meta["n_valid"] == noisy.size

    table = evaluate(args[0], args[1], reference=args[2], center=None, data_range=20.0)
    assert table["mode"][0] == "original+reference"
    assert table["psnr"][0] == pytest.approx(psnr(denoised, truth, data_range=20.0))
    assert table["ssim"][0] == pytest.approx(ssim(denoised, truth, data_range=20.0))
    assert table["psnr"][0] > table["psnr_initial"][0]
    assert table["ssim"][0] > table["ssim_initial"][0]
    assert strip(table["mse_reference"][0]) == pytest.approx(np.mean((denoised - truth) ** 2))

    table = evaluate(args[0], args[1], independent=args[3], center=None)
    assert table["mode"][0] == "original+independent"
    assert strip(table["noise_variance"][0]) == pytest.approx(1.0, rel=0.05)
    assert strip(table["mse_n2n"][0]) == pytest.approx(np.mean((denoised - truth) ** 2),
                                                       rel=0.15)
    if kind != "ndarray":
        assert table["mse_n2n"].unit == u.G ** 2

    table = evaluate(*args, center=None)
    assert table["mode"][0] == "original+reference+independent"
    assert "Noise2Noise" in table.meta["mode"]


@pytest.mark.parametrize("cosmic_rays", [False, True])
def test_n2n_estimate_is_unbiased(field, cosmic_rays):
    """truth + two noise draws; d = truth + known error: the estimate is the true MSE."""
    truth = np.tile(10 * field, (4, 4))  # 512 x 512
    estimates, true_mse, raw = [], [], []
    for seed in range(4):
        rng = np.random.default_rng(100 + seed)
        obs_a = truth + rng.normal(0, 1.0, truth.shape)
        obs_b = truth + rng.normal(0, 1.0, truth.shape)
        error = rng.normal(0, 0.5, truth.shape) + 0.1 * (truth - truth.mean()) / 10
        if cosmic_rays:
            hits = rng.choice(truth.size, truth.size // 500, replace=False)
            obs_b.flat[hits] += rng.uniform(30, 300, hits.size)
        table = evaluate(obs_a, truth + error, independent=obs_b, center=None)
        estimates.append(table["mse_n2n"][0])
        raw.append(table["mse_independent"][0])
        true_mse.append(np.mean(error ** 2))
        if cosmic_rays:
            assert table["n2n_clipped_fraction"][0] >= 0.0019
    assert np.mean(estimates) == pytest.approx(np.mean(true_mse), rel=0.03)
    # without the noise correction the raw score would be off by sigma**2 = 1
    assert np.mean(raw) == pytest.approx(np.mean(true_mse) + 1.0, rel=0.03)


def test_evaluate_shape_and_unit_errors(field):
    with pytest.raises(ValueError, match="same shape"):
        evaluate(field, field, reference=field[:5])
    with pytest.raises(u.UnitsError, match="independent"):
        evaluate(field * u.G, field * u.G, independent=field * u.s, center=None)


# ---------------------------------------------------------------------- r_sweep
@pytest.mark.parametrize("kind", KINDS)
def test_r_sweep(magnetogram, kind):
    initial = magnetogram[:200, :200]
    denoised = ndimage.gaussian_filter(initial, 1.5)
    Rs = [0.0, 2.0, 5.0, 10.0, 20.0, np.inf]
    if kind != "ndarray":
        Rs = [R * u.G for R in Rs[:-1]] + [np.inf * u.G]
    table = r_sweep(wrap(kind, initial), wrap(kind, denoised), Rs, range=value(kind, 20.0))
    assert table.colnames == ["R", "restored_fraction", "noise_level", "linear_coefficient",
                              "deviation_frequency"]
    assert len(table) == 6
    frac = np.asarray(table["restored_fraction"])
    assert frac[0] == 1.0 and frac[-1] == 0.0
    assert np.all(np.diff(frac) <= 0)
    assert table["linear_coefficient"][0] == 1.0
    assert table["linear_coefficient"][-1] == pytest.approx(linear_coefficient(initial,
                                                                               denoised))
    assert table["deviation_frequency"][0].value == 0.5
    assert table["deviation_frequency"][-1].value < 0.2
    noise = np.array([strip(x) for x in table["noise_level"]])
    assert noise[0] == pytest.approx(strip(table.meta["noise_initial"]))
    assert noise[0] == pytest.approx(SIGMA, rel=0.03)
    assert noise[-1] < 0.5 * noise[0]
    if kind != "ndarray":
        assert table["R"].unit == u.G and table["noise_level"].unit == u.G


def test_r_sweep_converts_and_checks_R(magnetogram):
    initial = magnetogram[:64, :64] * u.G
    denoised = ndimage.gaussian_filter(magnetogram[:64, :64], 1.0) * u.G
    table = r_sweep(initial, denoised, [0.5, 1.0] * u.mT)
    np.testing.assert_allclose(table["R"].to_value(u.G), [5.0, 10.0])
    with pytest.raises(ValueError, match="non-negative"):
        r_sweep(initial, denoised, [-1 * u.G])
    with pytest.raises(ValueError, match="at least one"):
        r_sweep(initial, denoised, [])
    with pytest.raises(u.UnitsError):
        r_sweep(initial, denoised, [1 * u.s])


# ---------------------------------------------------------------------- detect_sources
@pytest.fixture(scope="module")
def faint_sources():
    """Noise of sigma 1 and 25 faint extended sources: 8 x 8 plateaus of 3.3 sigma.

    Per pixel, noise pushes a third of each plateau below a 3-sigma threshold and
    breaks it into small pieces; a denoised image keeps it whole.
    """
    truth = np.zeros((200, 200))
    for i in range(5):
        for j in range(5):
            truth[20 + 35 * i:28 + 35 * i, 20 + 35 * j:28 + 35 * j] = 3.3
    return truth, truth + np.random.default_rng(13).normal(0, 1.0, truth.shape)


def test_detect_sources_finds_fainter_sources(faint_sources):
    pytest.importorskip("photutils")
    truth, noisy = faint_sources
    denoised = truth + 0.1 * (noisy - truth)  # a good denoiser
    kwargs = dict(npixels=20, connectivity=4)
    result = detect_sources(CCDData(noisy, unit="adu"), CCDData(denoised, unit="adu"),
                            **kwargs)
    assert result["threshold"].unit == u.adu
    assert result["threshold"].value == pytest.approx(3.0, rel=0.1)  # 3 sigma
    assert result["n_denoised"] == 25  # every source, no false one
    assert result["n_initial"] < 20
    assert result["n_new"] >= 25 - result["n_initial"]
    assert result["segm_denoised"].shape == noisy.shape
    # the same threshold on both: giving it explicitly changes nothing
    same = detect_sources(noisy, denoised, threshold=result["threshold"].value, **kwargs)
    assert (same["n_initial"], same["n_denoised"]) == (result["n_initial"], 25)


def test_detect_sources_nothing_found():
    pytest.importorskip("photutils")
    flat = np.zeros((32, 32))
    result = detect_sources(flat, flat, threshold=1.0)
    assert result["n_initial"] == result["n_denoised"] == result["n_new"] == 0
    assert result["segm_initial"] is None


def test_detect_sources_needs_photutils(monkeypatch):
    monkeypatch.setitem(sys.modules, "photutils.segmentation", None)
    with pytest.raises(ImportError, match="pip install photutils"):
        detect_sources(np.zeros((8, 8)), np.zeros((8, 8)))


# ---------------------------------------------------------------------- sunpy Map
def test_map_input(magnetogram):
    sunpy_map = pytest.importorskip("sunpy.map")
    header = {"bunit": "G", "cdelt1": 1, "cdelt2": 1, "ctype1": "HPLN-TAN",
              "ctype2": "HPLT-TAN", "cunit1": "arcsec", "cunit2": "arcsec", "crpix1": 1,
              "crpix2": 1, "crval1": 0, "crval2": 0, "date-obs": "2020-01-01T00:00:00",
              "hgln_obs": 0, "hglt_obs": 0, "dsun_obs": 1.5e11, "rsun_ref": 6.96e8}
    image = magnetogram.copy()
    image[:50] = np.nan  # off-disk
    m = sunpy_map.Map(image, header)
    sigma, _ = noise_level(m, range=20 * u.G)
    assert sigma.unit == u.G
    assert sigma.value == pytest.approx(SIGMA, rel=0.02)
    table = evaluate(m, sunpy_map.Map(ndimage.gaussian_filter(magnetogram, 1.0), header),
                     range=20 * u.G)
    assert table.meta["n_valid"] == image[50:].size


# ---------------------------------------------------------------------- shared data
@pytest.mark.data
def test_mdi_noise_level():
    sunpy_map = pytest.importorskip("sunpy.map")
    m = sunpy_map.Map(DATA / "mdi" / "mdi.fd_m_96m_lev182.20101015_000000_TAI.data.fits")
    sigma, _ = noise_level(m, range=20 * u.G)
    assert sigma.value == pytest.approx(11.9, rel=0.02)  # the paper's method: ~11.9 G


@pytest.mark.data
def test_hst_independent_exposures():
    obs = [CCDData.read(DATA / "hst" / f"NGC1365_F555W_10s_obs{i}.fits") for i in (2, 3)]
    smoothed = ndimage.gaussian_filter(obs[0].data, 1.0) * obs[0].unit
    table = evaluate(obs[0], smoothed, independent=obs[1])
    assert table["noise_variance"].unit == u.count ** 2 / u.s ** 2
    sigma = np.sqrt(table["noise_variance"][0].value)
    assert 0.08 < sigma < 0.12  # background noise of a 10 s F555W exposure
    assert 0 < table["mse_n2n"][0] < table["noise_variance"][0]
    raw = evaluate(obs[0], obs[0], independent=obs[1])
    assert raw["mse_n2n"][0].value == pytest.approx(raw["noise_variance"][0].value)


def test_all_is_complete():
    for name in metrics.__all__:
        assert callable(getattr(metrics, name))
