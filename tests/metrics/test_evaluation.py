"""Tests of tdrdenoise.metrics.evaluation: evaluate and r_sweep."""
import numpy as np
import pytest
from astropy import units as u
from astropy.nddata import CCDData
from astropy.stats import mad_std
from astropy.table import QTable
from scipy import ndimage

from tdrdenoise.metrics import (absolute_error, evaluate, large_scale_damage, linear_coefficient,
                                noise_level, psnr, r_sweep, restored_fraction, ssim)

from .helpers import DATA, KINDS, SIGMA, strip, value, wrap


BASE_COLUMNS = ["mode", "noise_initial", "noise_denoised", "absolute_error",
                "mean_squared_error", "pearson_cc", "linear_coefficient", "residual_mean",
                "restored_fraction", "deviation_frequency", "damage_ratio",
                "net_change_sigma"]


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


# ---------------------------------------------------------------------- one window
def test_evaluate_fits_every_image_over_the_initial_window(magnetogram):
    """The denoised histogram is fitted over the initial image's window, not its own."""
    initial = magnetogram[:200, :200]
    denoised = 0.3 * initial  # its own 5 x MAD window would be 3 times narrower
    table = evaluate(initial, denoised)
    half = 5 * mad_std(initial)
    assert table["noise_denoised"][0] == pytest.approx(noise_level(denoised, range=half)[0])
    assert table["noise_initial"][0] == pytest.approx(noise_level(initial, range=half)[0])
    own = noise_level(denoised, range=5 * mad_std(denoised))[0]
    assert table["noise_denoised"][0] != pytest.approx(own, rel=1e-6)
    # center=None: the initial image's median for both
    shifted = evaluate(initial + 100.0, denoised + 95.0, center=None)
    assert shifted["noise_denoised"][0] == pytest.approx(
        noise_level(denoised + 95.0, range=half, center=float(np.median(initial)) + 100.0)[0])
    sweep = r_sweep(initial, denoised, [np.inf])
    assert sweep["noise_level"][0] == pytest.approx(table["noise_denoised"][0])


# ---------------------------------------------------------------------- damage columns
def test_evaluate_damage_columns(field):
    rng = np.random.default_rng(16)
    truth = 10 * field
    noisy = truth + rng.normal(0, 1.0, truth.shape)
    table = evaluate(noisy, truth - 0.5, center=None, smoothing=4)
    damage = large_scale_damage(noisy, truth - 0.5, smoothing=4)
    assert table["damage_ratio"][0] == pytest.approx(damage.ratio)
    assert table["net_change_sigma"][0] == pytest.approx(damage.net_change)
    assert table["net_change_sigma"][0] == pytest.approx(
        table["residual_mean"][0] / damage.sigma)
    # a noise sample sets the unit of the ratio, as in large_scale_damage
    sample = ndimage.gaussian_filter(rng.normal(0, 1.0, (96, 96)), 1.0)
    with_sample = evaluate(noisy, truth - 0.5, center=None, smoothing=4,
                           noise_sample=sample)
    expected = large_scale_damage(noisy, truth - 0.5, smoothing=4, noise_sample=sample)
    assert with_sample["damage_ratio"][0] == pytest.approx(expected.ratio)
    assert with_sample["damage_ratio"][0] < table["damage_ratio"][0]
    assert with_sample["net_change_sigma"][0] == pytest.approx(expected.net_change)


# ---------------------------------------------------------------------- restored pixels
def tdr_output(initial, denoised, R, card=True, dtype=np.float32):
    """A CCDData as tdr_denoise returns it: restored pixels in the mask, a TDRDENOI card."""
    data = initial.data
    valid = np.isfinite(data)
    if initial.mask is not None:
        valid &= ~initial.mask
    restored = valid & (np.abs(denoised - data) > R)
    out = np.where(restored | ~valid, data, denoised).astype(dtype)
    meta = {"TDRDENOI": f"R={R}, model=in-memory"} if card else {}
    return CCDData(out, unit=initial.unit, mask=restored | ~valid, meta=meta), restored


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_evaluate_counts_restored_pixels(field, dtype):
    rng = np.random.default_rng(17)
    noisy = 10 * field + rng.normal(0, 1.0, field.shape)
    noisy[0, :4] = np.nan
    mask = np.zeros(field.shape, bool)
    mask[5, :3] = True  # masked in the input: stays out
    initial = CCDData(noisy, unit="adu", mask=mask)
    out, restored = tdr_output(initial, ndimage.gaussian_filter(np.nan_to_num(noisy), 1.0),
                               1.0, dtype=dtype)
    assert 0.05 < restored.mean() < 0.9
    n_valid = noisy.size - 4 - 3
    table = evaluate(initial, out, center=None)
    assert table.meta["n_valid"] == n_valid
    assert table["restored_fraction"][0] == pytest.approx(restored.sum() / n_valid)
    values = u.Quantity(out.data, out.unit)  # what one had to pass before
    same = evaluate(initial, values, center=None)
    for name in ["noise_denoised", "absolute_error", "linear_coefficient", "damage_ratio"]:
        assert strip(same[name][0]) == pytest.approx(strip(table[name][0]), rel=1e-6), name
    # the paired metrics share the unpacking
    assert restored_fraction(initial, out) == pytest.approx(restored.sum() / n_valid)
    expected = absolute_error(initial, values).value
    assert absolute_error(initial, out).value == pytest.approx(expected)
    assert absolute_error(out, initial).value == pytest.approx(expected)  # either order


def test_masked_pixels_without_the_card_stay_masked(field):
    noisy = 10 * field + np.random.default_rng(18).normal(0, 1.0, field.shape)
    initial = CCDData(noisy, unit="adu")
    out, restored = tdr_output(initial, 10 * field, 1.0, card=False)
    table = evaluate(initial, out, center=None)
    assert table.meta["n_valid"] == noisy.size - restored.sum()
    assert table["restored_fraction"][0] == 0.0
    # with the card, a masked pixel whose value differs is a bad pixel, not a restored one
    out, restored = tdr_output(initial, 10 * field, 1.0)
    out.data[0, 0] += 5.0
    out.mask[0, 0] = True
    assert evaluate(initial, out, center=None).meta["n_valid"] == noisy.size - 1
