"""Wiener refinement (``tdrdenoise/prediction/wiener.py``) and its ``refine`` option (its header
record and type checks are in test_calibration.py, beside those of ``calibrate``)."""
import numpy as np
import pytest
from scipy import ndimage

from tdrdenoise import TDRModel, tdr_denoise
from tdrdenoise.prediction.wiener import (MIN_WINDOWS, PATCH, dct_matrix, noise_profile,
                                          noise_table, refine)


def scene(shape=(128, 128), seed=0):
    """Fine structure (a few px) on a smooth background, and white noise of sigma 1."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    truth = 6 * np.sin(xx / 3.0) * np.cos(yy / 4.0) + 0.05 * xx
    return truth, truth + rng.normal(size=shape)


def mse(a, b):
    return float(np.mean((a - b) ** 2))


def test_dct_matrix_is_orthonormal():
    for k in (4, PATCH):
        b = dct_matrix(k)
        np.testing.assert_allclose(b @ b.T, np.eye(k), atol=1e-12)
    # row 0 is the mean: a constant window has one coefficient
    np.testing.assert_allclose(dct_matrix(8) @ np.ones(8), [np.sqrt(8)] + [0] * 7,
                               atol=1e-12)


def test_refinement_gives_back_what_an_oversmoothed_pilot_lost():
    truth, y = scene()
    pilot = ndimage.gaussian_filter(y, 2.0)  # loses most of the fine structure
    valid = np.ones(y.shape, bool)
    out = refine(y, pilot, valid)
    assert mse(out, truth) < 0.5 * mse(pilot, truth)
    # and removes noise: far below the observation's error (1 per pixel)
    assert mse(out, truth) < 0.3 * mse(y, truth)


def test_flat_pilot_keeps_flat_and_inputs_unchanged():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(64, 80)).astype(np.float32)
    pilot = np.zeros_like(y)
    valid = np.ones(y.shape, bool)
    copies = y.copy(), pilot.copy()
    out = refine(y, pilot, valid)
    # a pilot without structure lets no coefficient of the noise through
    np.testing.assert_array_equal(out, 0.0)
    assert out.dtype == np.float32 and out.shape == y.shape
    np.testing.assert_array_equal(y, copies[0], strict=True)
    np.testing.assert_array_equal(pilot, copies[1], strict=True)


def test_invalid_pixels_keep_the_pilot_and_do_not_leak():
    truth, y = scene((96, 96), seed=2)
    y[40:50, 40:50] = np.nan  # invalid: never read
    valid = np.isfinite(y)
    pilot = ndimage.gaussian_filter(np.where(valid, y, 0.0), 1.0)
    out = refine(np.where(valid, y, 0.0), pilot, valid)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[~valid], pilot[~valid])
    # the value under the invalid pixels does not matter
    other = refine(np.where(valid, y, 1e6), pilot, valid)
    np.testing.assert_allclose(other, out, rtol=0, atol=1e-4)


def test_small_images_are_left_alone():
    y = np.random.default_rng(3).normal(size=(PATCH - 1, 40)).astype(np.float32)
    pilot = 0.5 * y
    assert refine(y, pilot, np.ones(y.shape, bool)) is pilot
    # correlated noise needs enough windows to measure its spectrum
    y = np.random.default_rng(3).normal(size=(40, 40)).astype(np.float32)
    assert (40 // PATCH) ** 2 < MIN_WINDOWS
    np.testing.assert_array_equal(refine(y, 0.5 * y, np.ones(y.shape, bool), stride=2),
                                  0.5 * y)
    # a residual without noise measures nothing: the pilot, not NaN
    y = np.random.default_rng(3).normal(size=(200, 200)).astype(np.float32)
    assert refine(y, y, np.ones(y.shape, bool), stride=2) is y


def test_noise_table_measures_white_and_correlated_noise():
    rng = np.random.default_rng(4)
    white = rng.normal(0.0, 2.0, (480, 480))
    valid = np.ones(white.shape, bool)
    table = noise_table(white, valid)
    assert table.shape == (PATCH, PATCH)
    np.testing.assert_allclose(table, 4.0, rtol=0.25)
    correlated = ndimage.gaussian_filter(white, 1.0)
    table = noise_table(correlated, valid)
    # low frequencies carry the correlated noise, high ones almost none
    assert table[0, 0] > 20 * table[-1, -1]
    # windows with an invalid pixel are not used; too few valid ones: None
    valid[:, 12:] = False
    assert noise_table(white, valid) is None


def test_correlated_noise_needs_the_table():
    """With correlated noise the white assumption keeps noise that the measured
    table removes."""
    rng = np.random.default_rng(5)
    truth = ndimage.gaussian_filter(rng.normal(size=(256, 256)), 4.0) * 20
    noise = ndimage.gaussian_filter(rng.normal(size=truth.shape), 1.0) * 3.5
    y = truth + noise
    pilot = ndimage.gaussian_filter(y, 2.5)
    valid = np.ones(y.shape, bool)
    white = refine(y, pilot, valid, stride=1)
    measured = refine(y, pilot, valid, stride=2)
    assert mse(measured, truth) < mse(white, truth)
    assert mse(measured, truth) < mse(y, truth)


@pytest.fixture(scope="module")
def fine_model():
    """A briefly trained model on fine structure, which it still smooths away."""
    truth, image = scene((96, 96), seed=6)
    model = TDRModel(patch_size=32, batch_size=2, device="cpu").fit(
        image, steps=12, seed=0, progress=False, distil_steps=8)
    return model, truth, image


def test_option_off_gives_the_calibrated_values(fine_model):
    model, truth, image = fine_model
    for method in ("student", "ensemble"):
        opts = dict(method=method, seed=0, progress=False)
        if method == "ensemble":
            opts.update(n_predictions=2)
        raw, raw_std = model.predict(image, refine=False, **opts)
        out, out_std = model.predict(image, **opts)
        # the mean changes toward the truth, and the uncertainty becomes the error
        # model of the refined value: the network's spread is not its error
        assert mse(out, truth) < mse(raw, truth)
        assert not np.array_equal(out_std, raw_std)
        # of the right size (a pilot this rough makes the error model cautious)
        ratio = np.sqrt(mse(out, truth) / np.mean(out_std ** 2))
        assert 0.4 < ratio < 1.5, ratio
        if method == "ensemble":
            opts.update(fine_tune_steps=0)
        np.testing.assert_allclose(tdr_denoise(image, model, refine=False, **opts), raw,
                                   rtol=1e-6)
        np.testing.assert_allclose(tdr_denoise(image, model, **opts), out, rtol=1e-6)


# ------------------------------------------------------------------- error model
def reliability(err, sigma, parts=5):
    """RMS(error) / RMS(sigma) in ``parts`` groups of pixels sorted by sigma."""
    order = np.argsort(sigma.ravel())
    e2, s2 = (err ** 2).ravel(), (sigma ** 2).ravel()
    return [float(np.sqrt(e2[c].mean() / s2[c].mean())) for c in np.array_split(order, parts)]


@pytest.mark.parametrize("pilot_sigma", [1.0, 2.0])
def test_error_model_matches_the_error_of_the_refined_estimate(pilot_sigma):
    truth, y = scene((192, 192), seed=3)
    pilot = ndimage.gaussian_filter(y, pilot_sigma)
    valid = np.ones(y.shape, bool)
    out, var = refine(y, pilot, valid, error=True)
    # the estimate is the one refine returns without the error model
    np.testing.assert_array_equal(out, refine(y, pilot, valid))
    assert var.dtype == np.float32 and np.all(var > 0)
    err, sigma = out - truth, np.sqrt(var)
    # an error bar: RMS error / RMS sigma near 1 overall and in each fifth
    ratios = reliability(err, sigma)
    assert all(0.7 < r < 1.4 for r in ratios), ratios
    assert 0.55 < np.mean(np.abs(err) <= sigma) < 0.85
    # and far below the noise (1): it is the denoised value's error, not the noise's
    assert np.sqrt(np.mean(var)) < 0.7


def test_error_model_follows_noise_that_grows_with_the_signal():
    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[:160, :160]
    truth = 4.0 + 3.0 * np.sin(xx / 9.0) * np.cos(yy / 11.0) + 0.04 * xx
    noise_sd = np.sqrt(truth / truth.mean())  # Poisson-like, unit variance on average
    y = truth + noise_sd * rng.normal(size=truth.shape)
    pilot = ndimage.gaussian_filter(y, 1.5)
    valid = np.ones(y.shape, bool)
    levels, variances = noise_profile(y, pilot, valid)
    assert np.all(np.diff(levels) > 0)
    bright, faint = truth > np.quantile(truth, 0.8), truth < np.quantile(truth, 0.2)
    ratio = (np.interp(pilot[bright], levels, variances).mean()
             / np.interp(pilot[faint], levels, variances).mean())
    expected = (noise_sd[bright] ** 2).mean() / (noise_sd[faint] ** 2).mean()
    assert 0.7 * expected < ratio < 1.3 * expected
    out, var = refine(y, pilot, valid, error=True)
    # the error bars are wider where the noise is stronger, as the errors are
    err = out - truth
    assert var[bright].mean() > 1.3 * var[faint].mean()
    assert (err[bright] ** 2).mean() > 1.3 * (err[faint] ** 2).mean()


def test_noise_profile_of_white_noise_is_its_variance():
    rng = np.random.default_rng(5)
    y = 2.0 * rng.normal(size=(128, 128))
    pilot = np.mgrid[:128, :128][1] / 128.0  # a smooth pilot: bins are bands
    valid = np.ones(y.shape, bool)
    levels, variances = noise_profile(y, pilot, valid)
    np.testing.assert_allclose(variances, 4.0, rtol=0.25)
    np.testing.assert_allclose(variances.mean(), 4.0, rtol=0.05)
    # relative to the median bin without ``absolute``
    np.testing.assert_allclose(noise_profile(y, pilot, valid, absolute=False)[1].mean(),
                               1.0, rtol=0.05)
    # a large image is sampled: the same answer
    big = 2.0 * rng.normal(size=(1500, 1500))
    levels, variances = noise_profile(big, np.mgrid[:1500, :1500][0] / 1500.0,
                                      np.ones(big.shape, bool))
    np.testing.assert_allclose(variances.mean(), 4.0, rtol=0.05)
    # too few pixels: None
    small = np.zeros((8, 8), bool)
    small[:2, :2] = True
    assert noise_profile(y[:8, :8], pilot[:8, :8], small) is None


def test_error_variance_is_nan_where_nothing_was_refined():
    truth, y = scene((64, 64), seed=6)
    valid = np.ones(y.shape, bool)
    valid[:, :5] = False
    pilot = ndimage.gaussian_filter(y, 1.0)
    out, var = refine(y, pilot, valid, error=True)
    assert np.all(np.isnan(var[:, :5])) and np.all(np.isfinite(var[:, 5:]))
    # smaller than a window: nothing refined, the pilot back and no variance
    out, var = refine(y[:8, :8], pilot[:8, :8], valid[:8, :8], error=True)
    np.testing.assert_array_equal(out, pilot[:8, :8])
    assert np.all(np.isnan(var))
