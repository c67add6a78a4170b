"""Network input scaling and extreme pixels (fill values, saturation)."""
import warnings

import numpy as np
import pytest
from astropy.nddata import CCDData

from tdrdenoise import TDRModel, TDRUserWarning, tdr_denoise
from tdrdenoise.prediction.normalization import (OUTLIER_THRESHOLD, extreme_pixels, forward,
                                                 inverse, make_normalization, network_input)

from ..conftest import smooth_field

TINY = dict(patch_size=32, batch_size=2, device="cpu")
FAST = dict(n_predictions=2, seed=0, progress=False)


def image(shape=(64, 64), seed=1):
    return smooth_field(shape) + np.random.default_rng(seed).normal(0, 0.3, shape)


def test_forward_inverse_roundtrip():
    data = image()
    norm = make_normalization(data, np.zeros(data.shape, bool))
    assert norm["transform"] == "linear" and norm["outlier_threshold"] == OUTLIER_THRESHOLD
    assert 0.25 < norm["scale"] < 0.4
    np.testing.assert_allclose(inverse(forward(data, norm, 2.0), norm, 2.0), data,
                               rtol=0, atol=1e-12)


def test_constant_image_refused():
    with pytest.raises(ValueError, match="constant"):
        make_normalization(np.ones((32, 32)), np.zeros((32, 32), bool))


@pytest.mark.parametrize("value", [-1e30, 1e30, 65535.0, -32768.0])
def test_fill_values_are_extreme(value):
    data = image()
    data[5, 7] = value
    invalid = np.zeros(data.shape, bool)
    found = extreme_pixels(data, invalid)
    assert found[5, 7] and found.sum() == 1


def test_bright_real_signal_is_not_extreme():
    data = image()
    data[30, 30] += 100 * 0.3  # a 100-sigma star
    assert not extreme_pixels(data, np.zeros(data.shape, bool)).any()


def test_network_input_hides_extreme_and_warns_once():
    data = image()
    data[3, 3], data[40, 50] = -1e30, np.inf
    invalid = ~np.isfinite(data)
    norm = make_normalization(data, invalid)
    with pytest.warns(TDRUserWarning, match="1 extreme pixel") as record:
        z, valid, extreme, _ = network_input(data, invalid, norm)
    assert len(record) == 1
    assert extreme[3, 3] and not extreme[40, 50] and extreme.sum() == 1
    assert not valid[3, 3] and not valid[40, 50]
    assert z.dtype == np.float32 and np.isfinite(z).all() and z[3, 3] == 0


def test_z_overflow_is_extreme_even_without_threshold():
    data = image()
    data[3, 3] = 1e300
    norm = make_normalization(data, np.zeros(data.shape, bool), outlier_threshold=np.inf)
    with pytest.warns(TDRUserWarning, match="too large for the network"):
        z, valid, extreme, _ = network_input(data, np.zeros(data.shape, bool), norm)
    assert extreme[3, 3] and np.isfinite(z).all()


def test_minus_1e30_in_training():
    """One fill value: a finite model whose R=inf output differs from the input and
    restores 0 %; the fill value comes out untouched and masked."""
    data = image()
    data[10, 12] = -1e30
    ccd = CCDData(data, unit="adu")
    with pytest.warns(TDRUserWarning, match="1 extreme pixel"):
        model = TDRModel(**TINY).fit(ccd, steps=3, seed=0, progress=False)
    assert np.isfinite(model.history[-1]["final_loss"])
    assert 0.2 < model.normalization["scale"] < 0.5
    model.to_bytes()  # finite weights: savable
    with pytest.warns(TDRUserWarning, match="1 extreme pixel") as record:
        out = tdr_denoise(ccd, model, R=np.inf, fine_tune_steps=1, **FAST)
    assert len(record) == 1  # once per call, not once per step
    assert out.meta["TDRRFRAC"] == 0
    assert out.data[10, 12] == -1e30 and out.mask[10, 12] and out.mask.sum() == 1
    assert np.isfinite(out.data).all()
    others = np.ones(data.shape, bool)
    others[10, 12] = False
    assert not np.array_equal(out.data[others], data[others])
    assert np.abs(out.data[others] - data[others]).max() < 3


def test_1e30_pixel_in_prediction_stays_local():
    clean = image()
    model = TDRModel(**TINY).fit(clean, steps=3, seed=0, progress=False)
    dirty = clean.copy()
    dirty[32, 32] = 1e30
    ref = tdr_denoise(clean, model, R=np.inf, fine_tune_steps=0, **FAST)
    with pytest.warns(TDRUserWarning):
        out = tdr_denoise(dirty, model, R=np.inf, fine_tune_steps=0, **FAST)
    assert out[32, 32] == 1e30
    yy, xx = np.mgrid[:64, :64]
    far = np.hypot(yy - 32, xx - 32) >= 10
    assert np.abs(out[far] - ref[far]).max() < 0.5 * model.normalization["scale"]


def test_1e4_sigma_pixel_does_not_spoil_the_model():
    truth = smooth_field((96, 96))
    clean = truth + np.random.default_rng(5).normal(0, 0.3, truth.shape)
    spiked = clean.copy()
    spiked[8, 8] += 1e4 * 0.3
    yy, xx = np.mgrid[:96, :96]
    far = np.hypot(yy - 8, xx - 8) >= 40

    def error(train_image):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TDRUserWarning)
            model = TDRModel(**TINY).fit(train_image, steps=20, seed=0, progress=False)
            mean, _ = model.predict(train_image, n_predictions=4, seed=0, progress=False)
        return float(np.mean((mean[far] - truth[far]) ** 2))

    assert error(spiked) <= 1.05 * error(clean)


# ---------------------------------------------------------------- bright structure
from scipy import ndimage  # noqa: E402

from tdrdenoise.prediction.noise import neighbour_correlation, white_fraction  # noqa: E402
from tdrdenoise.prediction.normalization import (  # noqa: E402
    BRIGHT_THRESHOLD, bright_pixels, choose_shuffle, describe_noise, impulse_clustering,
    impulse_diagnostics, impulse_fraction, impulse_pixels)


def test_bright_pixels_held_out():
    z = np.random.default_rng(0).normal(size=(64, 64))
    z[10:15, 10:15] = 50.0          # a bright extended source (5 x 5 pixels)
    z[40, 40] = 80.0                # an isolated bright pixel (hot pixel, cosmic ray)
    z[50, 20] = -60.0               # and a negative one (magnetograms)
    valid = np.ones(z.shape, bool)
    held = bright_pixels(z, valid, BRIGHT_THRESHOLD)
    assert held[10:15, 10:15].all() and held[40, 40] and held[50, 20]
    assert held.sum() == 27
    # invalid pixels are never held out, and np.inf holds nothing out
    valid[12, 12] = False
    assert not bright_pixels(z, valid)[12, 12]
    assert not bright_pixels(z, valid, np.inf).any()


def bright_scene(seed=1):
    """A smooth field with white noise of sigma 0.3 and a bright 8 x 8 source (40, more
    than 100 noise sigmas), its rows and columns."""
    data = image((96, 96), seed)
    data[30:38, 50:58] += 40.0
    return data, (slice(30, 38), slice(50, 58))


def test_bright_pixels_are_denoised_without_the_network():
    data, src = bright_scene()
    truth = data - np.random.default_rng(1).normal(0, 0.3, data.shape)
    model = TDRModel(**TINY).fit(data, steps=3, seed=0, progress=False)
    ccd = CCDData(data, unit="adu")
    out, restored = tdr_denoise(ccd, model, R=np.inf, fine_tune_steps=0,
                                return_restored_mask=True, **FAST)
    # the Wiener refinement denoises the held-out source: closer to the truth than
    # the observation, its flux kept, not masked, its error bar the refinement's
    err_out = np.sqrt(np.mean((out.data[src] - truth[src]) ** 2))
    err_in = np.sqrt(np.mean((data[src] - truth[src]) ** 2))
    assert err_out < 0.8 * err_in
    assert abs(out.data[src].sum() / data[src].sum() - 1) < 0.01
    assert not out.mask[src].any() and not restored.any()
    sigma = out.uncertainty.array[src]
    assert np.all(sigma > 0) and np.all(sigma < model.noise_sigma)
    assert 0.5 < err_out / np.sqrt(np.mean(sigma ** 2)) < 2.0
    assert out.meta["TDRRFRAC"] == 0
    # the rest of the image is denoised
    assert np.abs(out.data - data)[:20, :20].mean() > 0.05
    # predict() gives the same values
    mean, std = model.predict(data, **FAST)
    np.testing.assert_allclose(mean[src], out.data[src])
    np.testing.assert_allclose(std[src], sigma, rtol=1e-6)


def test_bright_pixels_come_back_as_observed_without_refinement():
    data, src = bright_scene()
    model = TDRModel(**TINY).fit(data, steps=3, seed=0, progress=False)
    out = tdr_denoise(CCDData(data, unit="adu"), model, R=np.inf, fine_tune_steps=0,
                      refine=False, **FAST)
    np.testing.assert_array_equal(out.data[src], data[src])
    mean, std = model.predict(data, refine=False, **FAST)
    np.testing.assert_array_equal(mean[src], data[src])
    assert np.isnan(std[src]).all()
    # with bright_threshold=np.inf the network sees (and changes) the source too
    all_in = TDRModel(bright_threshold=np.inf, **TINY).fit(data, steps=3, seed=0,
                                                           progress=False)
    out2 = tdr_denoise(CCDData(data, unit="adu"), all_in, R=np.inf, fine_tune_steps=0,
                       refine=False, **FAST)
    assert np.abs(out2.data[src] - data[src]).max() > 0


def test_bright_held_out_of_training():
    data = image((96, 96))
    data[30:38, 50:58] += 40.0
    norm = make_normalization(data, np.zeros(data.shape, bool))
    z, valid, extreme, _ = network_input(data, np.zeros(data.shape, bool), norm)
    assert not valid[30:38, 50:58].any() and not extreme.any()
    assert (z[30:38, 50:58] == 0).all()


# ---------------------------------------------------------------- correlated noise
def correlated(shape=(128, 128), seed=0, width=0.93):
    white = np.random.default_rng(seed).normal(size=shape)
    noise = ndimage.gaussian_filter(white, width)
    return noise / noise.std()


def test_neighbour_correlation():
    white = np.random.default_rng(0).normal(size=(128, 128))
    assert abs(neighbour_correlation(white)) < 0.05
    assert 0.6 < neighbour_correlation(correlated()) < 0.9   # lag-1 correlation 0.75
    invalid = np.zeros(white.shape, bool)
    invalid[:, :64] = True
    assert abs(neighbour_correlation(np.where(invalid, 1e6, white), invalid)) < 0.1
    assert neighbour_correlation(np.ones((8, 8))) == 0.0


def test_white_fraction():
    field = smooth_field((128, 128))
    white = np.random.default_rng(0).normal(size=field.shape)
    assert white_fraction(field) < 0.1            # a smooth signal alone
    assert white_fraction(white) > 0.9             # white noise alone
    assert 0.2 < white_fraction(field + 0.05 * white) < 0.6
    invalid = np.zeros(field.shape, bool)
    invalid[:, :64] = True
    assert white_fraction(np.where(invalid, 1e6, field), invalid) < 0.1
    assert white_fraction(np.ones((8, 8))) == 1.0  # no differences: cannot tell


def test_choose_shuffle():
    none = np.zeros((128, 128), bool)
    field = smooth_field((128, 128))
    assert choose_shuffle(field + 0.3 * np.random.default_rng(0).normal(size=none.shape),
                          none) == 1
    # moderately correlated noise (a 0.6 px kernel):
    # stride 2; strongly correlated (0.93 px, lag-1 correlation 0.75): stride 3
    assert choose_shuffle(field + 0.3 * correlated(width=0.6), none) == 2
    assert choose_shuffle(field + 0.3 * correlated(), none) == 3
    assert choose_shuffle(field + 0.3 * correlated(), none, 1) == 1
    assert choose_shuffle(field, none, 3) == 3
    # salt and pepper: white impulses that robust statistics do not see
    rng = np.random.default_rng(1)
    salt = field.copy()
    hit = rng.random(salt.shape) < 0.05
    salt[hit] = rng.choice([-5.0, 5.0], hit.sum())
    assert impulse_fraction(salt, none) > 0.03
    assert choose_shuffle(salt, none) == 1


@pytest.mark.parametrize("width, stride", [(0.6, 2), (0.93, 3)])
def test_pixel_shuffled_model_on_correlated_noise(width, stride):
    shape = (70, 83)  # sizes no stride divides: sub-images of unequal size
    data = smooth_field(shape) + 0.3 * correlated(shape, width=width)
    model = TDRModel(**TINY).fit(data, steps=3, seed=0, progress=False)
    assert model.stride == stride and model.normalization["pixel_shuffle"] == stride
    assert model.history[-1]["image_shape"][0] == stride ** 2
    mean, std = model.predict(data, method="ensemble", **FAST)
    assert mean.shape == shape and np.isfinite(mean).all() and (std >= 0).all()
    tuned = model.fine_tune(data, steps=2, seed=0)
    assert tuned.stride == stride
    again, _ = model.predict(data, method="ensemble", **FAST)
    np.testing.assert_array_equal(mean, again)
    # the student works on the whole image, whatever the stride
    student, _ = model.predict(data, seed=0, progress=False)
    assert student.shape == shape and np.isfinite(student).all()
    # the stride survives a round trip through bytes
    assert TDRModel.from_bytes(model.to_bytes(), device="cpu").stride == stride


def test_bad_options_named():
    with pytest.raises(ValueError, match="pixel_shuffle"):
        TDRModel(pixel_shuffle=5)
    with pytest.raises(ValueError, match="pixel_shuffle"):
        TDRModel(pixel_shuffle=True)
    with pytest.raises(ValueError, match="bright_threshold"):
        TDRModel(bright_threshold=0)


def test_impulse_noise_pixels_are_inpainted():
    rng = np.random.default_rng(3)
    clean = smooth_field((96, 96))
    noisy = clean + rng.normal(0, 0.01, clean.shape)
    hit = rng.random(clean.shape) < 0.05
    noisy[hit] = rng.choice([-3.0, 3.0], hit.sum())
    model = TDRModel(**TINY).fit(noisy, steps=3, seed=0, progress=False)
    norm = model.normalization
    assert norm["impulse_noise"] is True and norm["bright_threshold"] == np.inf
    z, seen, extreme, impulse = network_input(noisy, np.zeros(noisy.shape, bool), norm)
    assert impulse[hit].mean() > 0.9 and not seen[impulse].any()
    assert impulse[~hit].mean() < 0.01
    out = tdr_denoise(noisy, model, R=np.inf, fine_tune_steps=0, **FAST)
    # every impulse is replaced by the network's value, not kept as observed
    assert (out[hit] != noisy[hit]).all()
    # white Gaussian noise is not impulse noise
    plain = TDRModel(**TINY).fit(image(), steps=1, seed=0, progress=False)
    assert plain.normalization["impulse_noise"] is False


def test_pure_impulse_noise_changes_only_the_impulses():
    rng = np.random.default_rng(4)
    clean = smooth_field((96, 96))
    noisy = clean.copy()
    hit = rng.random(clean.shape) < 0.05
    noisy[hit] = rng.choice([-3.0, 3.0], hit.sum())
    model = TDRModel(**TINY).fit(noisy, steps=3, seed=0, progress=False)
    norm = model.normalization
    assert norm["impulse_noise"] is True and norm["impulse_only"] is True
    out = tdr_denoise(noisy, model, R=np.inf, fine_tune_steps=0, **FAST)
    _, _, _, impulse = network_input(noisy, np.zeros(noisy.shape, bool), norm)
    # the spared pixels carry no noise: they come back bit for bit
    np.testing.assert_array_equal(out[~impulse], noisy[~impulse])
    assert (out[hit & impulse] != noisy[hit & impulse]).all()
    # so does predict's mean
    mean, _ = model.predict(noisy, **FAST)
    np.testing.assert_array_equal(mean[~impulse], noisy[~impulse])
    # impulses among white noise: every pixel is denoised
    mixed = TDRModel(**TINY).fit(noisy + rng.normal(0, 0.05, clean.shape), steps=1,
                                 seed=0, progress=False)
    assert mixed.normalization["impulse_noise"] is True
    assert mixed.normalization["impulse_only"] is False


def spots(shape=(128, 128), seed=5):
    """A magnetogram-like scene: correlated noise of sigma 1 and, on 2 % of the
    pixels, plage elements 1-2 px wide of +-50 to 400 (many 5-sigma candidates,
    side by side)."""
    rng = np.random.default_rng(seed)
    data = correlated(shape, seed=seed)
    elements = np.where(rng.random(shape) < 0.02,
                        rng.choice([-1.0, 1.0], shape) * rng.uniform(50, 400, shape), 0.0)
    return data + ndimage.gaussian_filter(elements, 0.7) * 2 * np.pi * 0.49


def test_sharp_structure_is_not_impulse_noise():
    none = np.zeros((128, 128), bool)
    data = spots()
    fraction, clustering, impulsive = impulse_diagnostics(data, none)
    # many candidates, but in clusters: structure, not salt and pepper
    assert fraction > 0.025 and clustering > 0.2 and not impulsive
    norm = make_normalization(data, none)
    assert norm["impulse_noise"] is False and norm["bright_threshold"] == BRIGHT_THRESHOLD
    assert norm["impulse_fraction"] == pytest.approx(fraction, abs=1e-5)
    # random impulses on the same scene are
    rng = np.random.default_rng(6)
    salt = data.copy()
    hit = rng.random(salt.shape) < 0.05
    salt[hit] = rng.choice([-1e3, 1e3], hit.sum())
    assert abs(impulse_clustering(impulse_pixels(salt, none) & hit)) < 0.02
    assert impulse_diagnostics(smooth_field((128, 128)) + np.where(hit, 50.0, 0.0),
                               none)[2]
    assert impulse_clustering(np.zeros((8, 8), bool)) == 0.0


def test_noise_detection_can_be_overridden_and_is_shown():
    data = spots()
    forced = TDRModel(impulse_noise=True, **TINY).fit(data, steps=1, seed=0,
                                                      progress=False)
    norm = forced.normalization
    assert norm["impulse_noise"] is True and norm["pixel_shuffle"] == 1
    assert "noise=impulse" in repr(forced) or "noise=impulse-only" in repr(forced)
    assert TDRModel(**TINY).fit(data, steps=1, seed=0,
                                progress=False).normalization["impulse_noise"] is False
    data = smooth_field((128, 128)) + 0.3 * correlated()
    auto = TDRModel(**TINY).fit(data, steps=1, seed=0, progress=False)
    assert "noise=correlated" in repr(auto)
    assert auto.noise_description.startswith("correlated noise (neighbour correlation")
    assert "impulse_noise" in auto.noise_description
    out = tdr_denoise(CCDData(data, unit="G"), auto, fine_tune_steps=0, **FAST)
    assert "noise=correlated, shuffle=3, bright=20sigma" in out.meta["TDRDENOI"]
    # the setting survives a round trip, and a model file of an older version
    # (without the measured values) is still described
    again = TDRModel.from_bytes(auto.to_bytes(), device="cpu")
    assert again.impulse_noise is False and again.noise_description == \
        auto.noise_description
    old = {k: v for k, v in auto.normalization.items()
           if k not in ("noise_correlation", "impulse_fraction", "impulse_clustering")}
    assert describe_noise(old).startswith("correlated noise; pixel shuffle 3")
    assert TDRModel().noise_description is None
    with pytest.raises(ValueError, match="impulse_noise"):
        TDRModel(impulse_noise="yes")


def _real_frames():
    from ..conftest import SHARED_DATA
    return sorted(SHARED_DATA.glob("hmi_sharp/*.fits")) + sorted(
        SHARED_DATA.glob("mdi/*.fits")) + sorted(SHARED_DATA.glob("hst/*.fits"))


@pytest.mark.data
def test_no_real_frame_is_taken_for_impulse_noise():
    """Issue 23: every SHARP, MDI and HST frame of ../shared/data is real data, not
    salt and pepper (8 of the 21 SHARP maps were before the clustering test); the
    synthetic salt-and-pepper frames still are."""
    from astropy.io import fits

    from ..conftest import SHARED_DATA
    frames = _real_frames()
    assert len(frames) >= 25
    for path in frames:
        with fits.open(path) as hdul:
            data = next(h.data for h in hdul if h.data is not None).astype(np.float64)
        invalid = ~np.isfinite(data)
        fraction, clustering, impulsive = impulse_diagnostics(data, invalid)
        assert not impulsive, f"{path.name}: {fraction:.4f} {clustering:.3f}"
        # far from the threshold: the decision is not a close call
        assert clustering > 0.15 or fraction < 0.01, path.name
    for path in sorted(SHARED_DATA.glob("synthetic/salt_pepper/*.fits")):
        data = fits.getdata(path).astype(np.float64)
        assert impulse_diagnostics(data, np.zeros(data.shape, bool))[2], path.name
