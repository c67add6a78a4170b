"""Wiener refinement (``tdrdenoise/_wiener.py``) and its ``refine`` option (its header
record and type checks are in test_calibration.py, beside those of ``calibrate``)."""
import numpy as np
import pytest
from scipy import ndimage

from tdrdenoise import TDRModel, tdr_denoise
from tdrdenoise._wiener import MIN_WINDOWS, PATCH, dct_matrix, noise_table, refine


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
        # the mean changes toward the truth; the spread does not
        assert mse(out, truth) < mse(raw, truth)
        np.testing.assert_array_equal(out_std, raw_std)
        if method == "ensemble":
            opts.update(fine_tune_steps=0)
        np.testing.assert_allclose(tdr_denoise(image, model, refine=False, **opts), raw,
                                   rtol=1e-6)
        np.testing.assert_allclose(tdr_denoise(image, model, **opts), out, rtol=1e-6)
