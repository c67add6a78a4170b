"""Level calibration (``tdrdenoise/prediction/calibration.py``) and its ``calibrate`` option
(the checks of the option are shared with ``refine``, the Wiener refinement)."""
import numpy as np
import pytest
from astropy import units as u
from astropy.nddata import CCDData
from scipy import ndimage

from tdrdenoise import TDRModel, tdr_denoise
from tdrdenoise.prediction.calibration import LEVEL_EDGES, MIN_BIN_PIXELS, calibrate, level_weights

FAST = dict(fine_tune_steps=0, n_predictions=2, seed=0, progress=False)


def stars(shape=(256, 256), n=60, peak=12.0, width=1.5, seed=0):
    """Gaussian stars (``width`` px) of peaks up to ``peak`` on a flat background."""
    rng = np.random.default_rng(seed)
    truth = np.zeros(shape)
    ys, xs = rng.integers(8, shape[0] - 8, n), rng.integers(8, shape[1] - 8, n)
    truth[ys, xs] = rng.uniform(0.3, 1.0, n) * peak * 2 * np.pi * width ** 2
    return ndimage.gaussian_filter(truth, width)


def test_biased_levels_get_the_wiener_weight():
    rng = np.random.default_rng(0)
    truth = np.zeros((200, 200))
    truth[50:150, 50:150] = 8.0
    y = truth + rng.normal(size=truth.shape)
    d = np.where(truth > 0, 6.0, 0.0)  # pulls the plateau down by 2 sigma
    w, s = level_weights(y, d, np.ones(y.shape, bool))
    # E(y - d)² = 1 + 4 on the plateau: w = 1 - 1 / 5
    assert w[50:150, 50:150].mean() == pytest.approx(0.8, abs=0.02)
    assert s[50:150, 50:150].mean() == pytest.approx(1.0, abs=0.05)
    assert not w[truth == 0].any() and not s[truth == 0].any()
    out, std = calibrate(y, d, np.full(y.shape, 0.5), np.ones(y.shape, bool))
    # the calibrated plateau is much closer to the truth than the biased one
    assert abs(np.mean(out[50:150, 50:150]) - 8.0) < 0.45
    np.testing.assert_allclose(std[w > 0], np.hypot((1 - w[w > 0]) * 0.5, w[w > 0] * s[w > 0]),
                               rtol=1e-6)
    assert std[0, 0] == 0.5 and out[0, 0] == d[0, 0]


@pytest.mark.parametrize("noise", ["white", "signal-dependent", "correlated"])
def test_unbiased_denoiser_is_left_alone(noise):
    """With d equal to the truth every bin's excess is noise: nothing changes,
    whatever the noise does with the level or between neighbours."""
    rng = np.random.default_rng(1)
    truth = stars(peak=40.0, width=0.8) + np.linspace(0, 6, 256)[None, :]
    white = rng.normal(size=truth.shape)
    if noise == "white":
        y = truth + white
    elif noise == "signal-dependent":  # variance grows with the signal, as for Poisson
        y = truth + white * np.sqrt(1 + truth)
    else:
        kernel = ndimage.gaussian_filter(white, 0.9)
        y = truth + kernel / kernel.std()
    w, _ = level_weights(y, truth, np.ones(y.shape, bool))
    # weights of a few per cent at most (sampling noise of the bins' estimates), which
    # change the squared error by a fraction of that squared
    assert w.mean() < 0.02 and np.quantile(w, 0.99) < 0.1


def test_star_peaks_pulled_down_are_given_back():
    """The bias of sharp residuals also raises the bins' noise estimates, so the
    weights err low; extended peaks flattened by 30 % still get most of it back."""
    rng = np.random.default_rng(2)
    truth = stars()
    y = truth + rng.normal(size=truth.shape)
    d = truth * 0.7  # a denoiser that flattens every star by 30 %
    out, _ = calibrate(y, d, np.zeros_like(y), np.ones(y.shape, bool))
    bright = truth > 4
    assert np.mean((out - truth)[bright] ** 2) < 0.7 * np.mean((d - truth)[bright] ** 2)
    faint = truth < 0.5
    np.testing.assert_array_equal(out[faint & (d < 0.5)], d[faint & (d < 0.5)])


def test_sparse_bins_are_merged_outward():
    """Levels too rare for a bin of their own are measured together."""
    rng = np.random.default_rng(3)
    truth = np.zeros((120, 120))
    # three plateaus of 36 pixels each (fewer than MIN_BIN_PIXELS), at 4.5, 5.5, 7 sigma
    for i, level in enumerate((4.5, 5.5, 7.0)):
        truth[20 + 30 * i:26 + 30 * i, 20:26] = level
    assert 36 < MIN_BIN_PIXELS < 3 * 36
    y = truth + rng.normal(size=truth.shape)
    d = np.where(truth > 0, truth - 2.5, 0.0)
    w, _ = level_weights(y, d, np.ones(y.shape, bool))
    assert (w[truth > 0] > 0.5).all()
    assert not w[truth == 0].any()


def test_only_used_pixels_are_measured_and_changed():
    rng = np.random.default_rng(4)
    truth = np.zeros((200, 200))
    truth[50:150, 50:150] = 8.0
    y = truth + rng.normal(size=truth.shape)
    y[0, :10] = np.nan
    d = np.where(truth > 0, 6.0, 0.0)
    use = np.ones(y.shape, bool)
    use[60:70, 60:70] = False
    y0, d0 = y.copy(), d.copy()
    w, _ = level_weights(y, d, use)
    assert not w[~use].any() and not w[0, :10].any()
    assert w[80, 80] > 0.7
    np.testing.assert_array_equal(y, y0, strict=True)
    np.testing.assert_array_equal(d, d0, strict=True)
    # nothing measurable: every weight zero
    assert not level_weights(y, d, np.zeros(y.shape, bool))[0].any()
    assert not level_weights(y, d, use, scale=0.0)[0].any()


def test_levels_are_symmetric():
    """Negative structure (opposite-polarity fields) is treated like positive."""
    rng = np.random.default_rng(5)
    truth = np.zeros((200, 200))
    truth[20:80, 20:80] = 8.0
    truth[120:180, 120:180] = -8.0
    y = truth + rng.normal(size=truth.shape)
    d = truth * 0.75
    w, _ = level_weights(y, d, np.ones(y.shape, bool))
    assert w[50, 50] > 0.7 and w[150, 150] > 0.7
    assert abs(w[50, 50] - w[150, 150]) < 0.1
    assert len(LEVEL_EDGES) < 127  # bin labels fit int8 on both sides


@pytest.fixture(scope="module")
def star_model():
    """A briefly trained model on plateaus of 8, 14 and -10 sigma (below the bright
    threshold, so the network sees them), which it still flattens."""
    rng = np.random.default_rng(6)
    truth = np.zeros((96, 96))
    truth[16:48, 16:48], truth[56:88, 40:72], truth[8:24, 60:90] = 8.0, 14.0, -10.0
    image = truth + rng.normal(0, 1.0, truth.shape)
    model = TDRModel(patch_size=32, batch_size=2, device="cpu").fit(
        image, steps=12, seed=0, progress=False, distil_steps=8)
    return model, image


def test_option_off_gives_the_network_values(star_model):
    model, image = star_model
    for method in ("student", "ensemble"):
        # the calibration alone (the Wiener refinement has its tests)
        opts = dict(method=method, seed=0, progress=False, refine=False)
        if method == "ensemble":
            opts.update(n_predictions=2)
        raw, raw_std = model.predict(image, calibrate=False, **opts)
        cal, cal_std = model.predict(image, **opts)
        if method == "ensemble":
            opts.update(fine_tune_steps=0)
        assert cal.shape == raw.shape
        changed = cal != raw
        # a barely trained network is far from the plateaus: they move toward y
        assert changed.mean() > 0.1
        assert np.all(np.abs(cal - image)[changed] <= np.abs(raw - image)[changed] + 1e-6)
        # tdr_denoise at R=inf returns the same values as predict
        out = tdr_denoise(image, model, calibrate=False, **opts)
        np.testing.assert_allclose(out, raw, rtol=1e-6)
        np.testing.assert_allclose(tdr_denoise(image, model, **opts), cal, rtol=1e-6)


@pytest.mark.parametrize("name", ["calibrate", "refine"])
def test_header_records_option_false(star_model, name):
    """calibrate=False and refine=False (the Wiener refinement) are recorded."""
    model, image = star_model
    ccd = CCDData(image, unit=u.adu)
    on = tdr_denoise(ccd, model, **FAST)
    off = tdr_denoise(ccd, model, **{name: False}, **FAST)
    assert f"{name}=False" in off.meta["TDRDENOI"]
    assert name not in on.meta["TDRDENOI"]
    # R=0 is still exact whatever the option
    for flag in (True, False):
        back = tdr_denoise(ccd, model, R=0, **{name: flag}, **FAST)
        np.testing.assert_array_equal(back.data, ccd.data, strict=True)


@pytest.mark.parametrize("name", ["calibrate", "refine"])
def test_option_must_be_a_bool(star_model, tmp_path, name):
    model, image = star_model
    with pytest.raises(TypeError, match=f"{name} must be True or False; got 'no'"):
        tdr_denoise(image, model, **{name: "no"}, **FAST)
    with pytest.raises(TypeError, match=f"{name} must be True or False; got None"):
        model.predict(image, **{name: None})
    from tdrdenoise.batch import denoise_files
    with pytest.raises(TypeError, match=f"{name} must be True or False; got 1"):
        denoise_files([str(tmp_path / "none.fits")], model, **{name: 1})


def test_calibrate_keeps_dtypes_and_inputs():
    rng = np.random.default_rng(7)
    truth = np.zeros((120, 120), np.float32)
    truth[30:90, 30:90] = 9.0
    y = (truth + rng.normal(size=truth.shape)).astype(np.float32)
    d = (truth * 0.7).astype(np.float32)
    std = np.full(y.shape, 0.4, np.float32)
    copies = [a.copy() for a in (y, d, std)]
    mean, spread = calibrate(y, d, std, np.ones(y.shape, bool))
    assert mean.dtype == np.float32 and spread.dtype == np.float32
    for a, b in zip((y, d, std), copies):
        np.testing.assert_array_equal(a, b, strict=True)
    assert mean[60, 60] > d[60, 60] and spread[60, 60] > 0.4 * 0.3
