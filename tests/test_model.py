import numpy as np
import pytest
import torch
from astropy import units as u
from astropy.nddata import CCDData

from tdrdenoise import TDRModel

from .conftest import smooth_field


def mse(a, b):
    return float(np.mean((np.asarray(a) - b) ** 2))


def test_short_fit_lowers_mse(truth, noisy):
    model = TDRModel(patch_size=32, batch_size=4, device="cpu").fit(
        noisy, steps=80, seed=0, progress=False)
    mean, std = model.predict(noisy, n_predictions=8, seed=0, progress=False)
    assert mse(mean, truth) < 0.5 * mse(noisy, truth)
    assert np.all(std > 0) and np.all(np.isfinite(std))


def test_fit_records(noisy, tiny_model):
    norm = tiny_model.normalization
    assert norm["median"] == pytest.approx(np.median(noisy))
    assert 0.2 < norm["scale"] < 0.6  # noise sigma is 0.3, the signal adds a little
    assert tiny_model.unit is None
    record = tiny_model.history[-1]
    assert record["action"] == "fit" and record["steps"] == 3 and record["seed"] == 0
    assert "trained 3 steps" in repr(tiny_model)


def test_fit_is_reproducible(noisy):
    def fit(seed):
        return TDRModel(patch_size=32, batch_size=2, device="cpu").fit(
            noisy, steps=2, seed=seed, progress=False)

    a, b, c = fit(5), fit(5), fit(6)
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_fit_stores_unit(unit_model):
    assert unit_model.unit == u.G


def test_fine_tune_leaves_base_unchanged(noisy, tiny_model):
    before = tiny_model.fingerprint
    n_history = len(tiny_model.history)
    tuned = tiny_model.fine_tune(noisy[::-1], steps=2, seed=0)
    assert tiny_model.fingerprint == before
    assert len(tiny_model.history) == n_history
    assert tuned.fingerprint != before
    assert tuned.history[-1]["action"] == "fine_tune"
    assert tuned.normalization == tiny_model.normalization
    assert tiny_model.fine_tune(noisy, steps=0).fingerprint == before


def test_predict_seeded(noisy, tiny_model):
    a = tiny_model.predict(noisy, n_predictions=2, seed=3, progress=False)
    b = tiny_model.predict(noisy, n_predictions=2, seed=3, progress=False)
    c = tiny_model.predict(noisy, n_predictions=2, seed=4, progress=False)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


def test_predict_quantity_in_input_unit(noisy, unit_model):
    mean, std = unit_model.predict(noisy * u.G, n_predictions=2, seed=0, progress=False)
    assert mean.unit == u.G and std.unit == u.G
    mean_mt, std_mt = unit_model.predict((noisy * u.G).to(u.mT), n_predictions=2, seed=0,
                                         progress=False)
    assert mean_mt.unit == u.mT
    np.testing.assert_allclose(mean_mt.to_value(u.G), mean.value, rtol=1e-5, atol=1e-5)


def test_single_prediction_has_nan_std(noisy, tiny_model):
    # one pass has no spread; without the refinement there is no error model either
    mean, std = tiny_model.predict(noisy, n_predictions=1, seed=0, progress=False,
                                   refine=False)
    assert np.all(np.isfinite(mean)) and np.all(np.isnan(std))
    # the refinement's error model needs no ensemble
    mean, std = tiny_model.predict(noisy, n_predictions=1, seed=0, progress=False)
    assert np.all(np.isfinite(mean)) and np.all(std > 0)


# ----------------------------------------------------------------- odd inputs


@pytest.mark.parametrize("convert", [
    lambda a: a.astype(">f8"),                       # big-endian FITS data
    lambda a: (a * 1000).astype(np.int32),           # integer image
    lambda a: np.pad(a, ((0, 0), (0, 10)))[:, ::1][:, 5:69].T.copy().T,  # strided copy
    lambda a: np.stack([a, a])[1],                   # slice of a cube
    lambda a: a[:45, :50],                           # not a multiple of 32
])
def test_odd_arrays_work(noisy, tiny_model, convert):
    image = convert(noisy)
    mean, std = tiny_model.predict(image, n_predictions=2, seed=0, progress=False)
    assert mean.shape == image.shape and np.all(np.isfinite(mean))
    assert mean.dtype.isnative


def test_nan_pixels_excluded(noisy, tiny_model):
    image = noisy.copy()
    image[10:20, 10:20] = np.nan
    image[0, :] = np.inf
    mean, std = tiny_model.predict(image, n_predictions=2, seed=0, progress=False)
    assert np.all(np.isnan(mean[10:20, 10:20])) and np.all(np.isinf(mean[0]))
    assert np.all(np.isnan(std[10:20, 10:20]))
    assert np.all(np.isfinite(mean[1:, :10]))
    model = TDRModel(patch_size=32, batch_size=2, device="cpu").fit(image, steps=2, seed=0,
                                                                    progress=False)
    assert np.isfinite(model.history[-1]["final_loss"])


def test_masked_values_never_seen(noisy):
    """Masked pixels influence neither training nor prediction, whatever their value."""
    mask = np.zeros(noisy.shape, bool)
    mask[20:30, 5:40] = True
    a = np.ma.MaskedArray(np.where(mask, 0.0, noisy), mask=mask)
    b = np.ma.MaskedArray(np.where(mask, 1e6, noisy), mask=mask)
    ma = TDRModel(patch_size=32, batch_size=2, device="cpu").fit(a, steps=3, seed=0,
                                                                 progress=False)
    mb = TDRModel(patch_size=32, batch_size=2, device="cpu").fit(b, steps=3, seed=0,
                                                                 progress=False)
    assert ma.fingerprint == mb.fingerprint
    pa = ma.predict(a, n_predictions=2, seed=0, progress=False)[0]
    pb = ma.predict(b, n_predictions=2, seed=0, progress=False)[0]
    np.testing.assert_array_equal(pa[~mask], pb[~mask])
    np.testing.assert_array_equal(pb[mask], 1e6)


def test_ccddata_mask_excluded(noisy, tiny_model):
    mask = np.zeros(noisy.shape, bool)
    mask[:, 7] = True  # a bad column
    ccd = CCDData(np.where(mask, 5e4, noisy), unit="adu", mask=mask)
    mean, _ = tiny_model.predict(ccd, n_predictions=2, seed=0, progress=False)
    ref, _ = tiny_model.predict(np.ma.MaskedArray(noisy, mask), n_predictions=2, seed=0,
                                progress=False)
    np.testing.assert_array_equal(mean[~mask], ref[~mask])


@pytest.mark.parametrize("image, error, match", [
    (np.zeros((4, 32, 32)), ValueError, "must be a 2-D image"),
    (np.zeros(100), ValueError, "must be a 2-D image"),
    (np.zeros((8, 64)), ValueError, "at least 16 x 16"),
    (np.full((32, 32), np.nan), ValueError, "no valid pixels"),
    (np.ones((32, 32)), ValueError, "constant"),
    (np.zeros((32, 32), complex), ValueError, "real numbers"),
    ("image.fits", TypeError, "must be a CCDData"),
    (np.ma.MaskedArray(np.ones((32, 32)), mask=np.ones((32, 32), bool)), ValueError,
     "no valid pixels"),
])
def test_fit_bad_input(image, error, match):
    with pytest.raises(error, match=match):
        TDRModel(device="cpu").fit(image, steps=1, progress=False)


def test_fit_bad_steps(noisy):
    with pytest.raises(ValueError, match="steps must be at least 1"):
        TDRModel(device="cpu").fit(noisy, steps=0)


def test_too_few_valid_pixels():
    image = np.full((32, 32), np.nan)
    image[:5, :5] = np.random.default_rng(0).normal(size=(5, 5))
    with pytest.raises(ValueError, match="only 25 valid pixels"):
        TDRModel(device="cpu").fit(image, steps=1)


def test_predict_untrained(noisy):
    with pytest.raises(RuntimeError, match="call fit"):
        TDRModel(device="cpu").predict(noisy)


def test_predict_bad_n(noisy, tiny_model):
    with pytest.raises(ValueError, match="n_predictions must be at least 1"):
        tiny_model.predict(noisy, n_predictions=0)


def test_predict_unit_mismatch(noisy, unit_model):
    with pytest.raises(u.UnitsError, match="trained on images in 'G'"):
        unit_model.predict(CCDData(noisy, unit="adu"), n_predictions=1)


@pytest.mark.parametrize("kwargs, match", [
    ({"keep_prob": 1.0}, "keep_prob"),
    ({"dropout": 1.0}, "dropout"),
    ({"width": 0}, "width"),
    ({"patch_size": 8}, "patch_size"),
    ({"device": "tpu9"}, "device must be"),
])
def test_bad_constructor(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TDRModel(**kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
def test_cuda_missing_is_clear():
    with pytest.raises(ValueError, match="no CUDA GPU"):
        TDRModel(device="cuda")


def test_auto_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert TDRModel().device.type == expected


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_agrees_with_cpu(tmp_path):
    """Without dropout the passes differ only by the input masks, drawn on the CPU for
    both devices: the two devices must give the same ensemble to float32 tolerance."""
    image = smooth_field((96, 80)) + np.random.default_rng(0).normal(0, 0.2, (96, 80))
    model = TDRModel(width=8, dropout=0.0, patch_size=32, batch_size=2, device="cpu")
    model.fit(image, steps=3, seed=0, progress=False)
    model.save(tmp_path / "m.tdr")
    on_gpu = TDRModel.load(tmp_path / "m.tdr", device="cuda")
    cpu_mean, _ = model.predict(image, n_predictions=2, seed=0, progress=False)
    gpu_mean, _ = on_gpu.predict(image, n_predictions=2, seed=0, progress=False)
    np.testing.assert_allclose(gpu_mean, cpu_mean, rtol=0, atol=1e-3 * np.ptp(image))
    # the distilled student is deterministic: the same result on both devices
    cpu_fast, cpu_std = model.predict(image, method="student")
    gpu_fast, gpu_std = on_gpu.predict(image, method="student")
    np.testing.assert_allclose(gpu_fast, cpu_fast, rtol=0, atol=1e-3 * np.ptp(image))
    np.testing.assert_allclose(gpu_std, cpu_std, rtol=1e-2, atol=1e-4 * np.ptp(image))


def test_small_image_smaller_than_patch():
    image = smooth_field((20, 24)) + np.random.default_rng(0).normal(0, 0.2, (20, 24))
    model = TDRModel(patch_size=64, batch_size=2, device="cpu").fit(image, steps=2, seed=0,
                                                                    progress=False)
    mean, _ = model.predict(image, n_predictions=2, seed=0, progress=False)
    assert mean.shape == (20, 24)


def test_keyboard_interrupt_keeps_partial_training(noisy):
    from tdrdenoise import TDRUserWarning
    model = TDRModel(patch_size=32, batch_size=2, device="cpu")

    def interrupt(step):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.warns(TDRUserWarning, match="interrupted after 2 of 10 steps"):
        with pytest.raises(KeyboardInterrupt):
            model.fit(noisy, steps=10, seed=0, progress=False, callback=interrupt)
    assert model.is_fitted and model.history[-1]["steps"] == 2


@pytest.mark.parametrize("call", ["fit", "fine_tune", "predict"])
def test_options_are_keyword_only(noisy, tiny_model, call):
    with pytest.raises(TypeError, match="positional"):
        getattr(tiny_model, call)(noisy, 2)


# ----------------------------------------------------------------- several images
def _series(noisy):
    """Three exposures of one field, of two sizes."""
    rng = np.random.default_rng(7)
    base = noisy - np.random.default_rng(42).normal(0, 0.3, noisy.shape)  # the truth
    return [noisy, base + rng.normal(0, 0.3, base.shape),
            base[:48, :56] + rng.normal(0, 0.3, (48, 56))]


def _fit(image, **kwargs):
    kwargs.setdefault("steps", 2)
    return TDRModel(patch_size=32, batch_size=2, device="cpu").fit(
        image, seed=0, progress=False, **kwargs)


def test_fit_on_a_series(noisy):
    series = _series(noisy)
    model = _fit(series)
    record = model.history[-1]
    assert record["images"] == 3
    assert record["image_shapes"] == [[64, 64], [64, 64], [48, 56]]
    # the first image sets the normalisation; the others are trained on
    assert model.normalization == _fit(noisy).normalization
    assert model.fingerprint != _fit(noisy).fingerprint
    assert model.fingerprint == _fit(tuple(series)).fingerprint  # reproducible
    assert model.student is not None
    # one image in a list is that image
    assert _fit([noisy]).fingerprint == _fit(noisy).fingerprint
    assert "images" not in _fit([noisy]).history[-1]
    mean, _ = model.predict(series[2], method="student")
    assert mean.shape == (48, 56)


def test_fit_on_a_series_learns(truth, noisy):
    """Several exposures train a model that denoises each of them."""
    series = _series(noisy)
    model = _fit(series, steps=80)
    for image in series[1:2]:
        mean, _ = model.predict(image, n_predictions=8, seed=0, progress=False)
        assert mse(mean, truth) < 0.5 * mse(image, truth)


def test_fit_on_a_series_of_containers(noisy):
    """Units of the others are converted to the first's; the model takes that unit."""
    series = [CCDData(noisy, unit="G"), (noisy[::-1] * 1e-4) * u.T,
              CCDData(noisy.T.copy(), unit="G")]
    model = _fit(series, distil_steps=0)
    assert model.unit == u.G and model.history[-1]["images"] == 3
    # the same images in gauss give the same model
    same = _fit([noisy * u.G, noisy[::-1] * u.G, CCDData(noisy.T.copy(), unit="G")],
                distil_steps=0)
    assert same.fingerprint == model.fingerprint


def test_fit_rows_as_lists_is_one_image(noisy):
    """A list of rows (numbers) is one image, not a series."""
    model = _fit(noisy.tolist(), distil_steps=0)
    assert model.history[-1]["image_shape"] == [64, 64]
    assert "images" not in model.history[-1]


@pytest.mark.parametrize("make, error, match", [
    (lambda n: [], ValueError, "empty list"),
    (lambda n: [n, "frame2.fits"], TypeError, "element 2 of the list is a str"),
    (lambda n: [n, np.zeros((8, 64))], ValueError, "image 2 of 2 is 8 x 64 pixels"),
    (lambda n: [n, np.full((32, 32), np.nan)], ValueError, "image 2 of 2 has no valid"),
    (lambda n: [n, np.zeros((2, 32, 32))], ValueError, "image 2 of 2 must be a 2-D"),
    (lambda n: [n * u.G, n * u.s], u.UnitsError, "image 2 of 2 is in 's'"),
])
def test_fit_series_errors_leave_the_model_alone(noisy, make, error, match):
    model = _fit(noisy, distil_steps=0)
    before = model.fingerprint, model.normalization, model.unit
    with pytest.raises(error, match=match):
        model.fit(make(noisy), steps=1, progress=False)
    assert (model.fingerprint, model.normalization, model.unit) == before


def test_array_level_methods_are_deprecated(noisy, tiny_model):
    """The pass-through methods of TDRModel (documented, but private in use) warn for
    one release and give what the stage functions give."""
    from astropy.utils.exceptions import AstropyDeprecationWarning

    from tdrdenoise.io.containers import unit_factor
    from tdrdenoise.prediction.normalization import network_input, noise_in_image_unit
    from tdrdenoise.prediction.options import PredictionOptions
    from tdrdenoise.prediction.pipeline import predict_arrays

    invalid = np.zeros(noisy.shape, bool)
    with pytest.warns(AstropyDeprecationWarning, match="unit_factor"):
        assert tiny_model.unit_factor(None) == unit_factor(None, tiny_model.unit, "image")
    with pytest.warns(AstropyDeprecationWarning, match="network_input"):
        z, valid, _, _ = tiny_model.network_input(noisy, invalid)
    expected = network_input(noisy, invalid, tiny_model.normalization)
    np.testing.assert_array_equal(z, expected[0])
    with pytest.warns(AstropyDeprecationWarning, match="noise_scale"):
        assert tiny_model.noise_scale() == noise_in_image_unit(tiny_model.normalization)
    assert tiny_model.noise_sigma == noise_in_image_unit(tiny_model.normalization)
    with pytest.warns(AstropyDeprecationWarning, match="predict_arrays"):
        mean, _ = tiny_model.predict_arrays(z, valid, method="ensemble", n_predictions=2,
                                            seed=0, progress=False)
    options = PredictionOptions(method="ensemble", n_predictions=2, seed=0, progress=False)
    np.testing.assert_array_equal(mean, predict_arrays(tiny_model, z, valid, 1.0, options)[0])
    with pytest.warns(AstropyDeprecationWarning, match="fine_tune_arrays"):
        tuned = tiny_model.fine_tune_arrays(z, valid, steps=1, seed=0)
    assert tuned is not tiny_model


@pytest.mark.parametrize("to", ["G", "mT"])
def test_unit_factor_within_rounding_of_one(to):
    """The one unit conversion (io.containers.unit_factor) gives what astropy's
    conversion gives, also for a scale within float rounding of 1, which astropy takes
    as exactly 1 (values come back unchanged, as they did before the conversion was
    shared)."""
    from tdrdenoise.io.containers import unit_factor
    from tdrdenoise.restore import restore

    near = u.def_unit(f"near_{to}", (1 + 2 ** -52) * u.Unit(to))
    values = np.array([1e8 + 1.0, 1 + 2 ** -40, 16777217.0, 1e39, -0.0, np.nan])
    factor = unit_factor(near, u.Unit(to), "image")
    assert factor == 1.0
    expected = (values * near).to_value(to)
    np.testing.assert_array_equal(values * factor, expected)
    np.testing.assert_array_equal(values * factor, values)
    far = u.def_unit(f"far_{to}", (1 + 2 ** -20) * u.Unit(to))
    assert unit_factor(far, u.Unit(to), "image") == (1 * far).to_value(to) != 1.0
    # restore converts the denoised image with it, also at a scale near 1
    out, _ = restore(values * u.Unit(to), values * near, R=np.inf)
    np.testing.assert_array_equal(out.value, values)


def test_unit_factor_refuses_a_conversion_with_an_offset():
    """With an equivalency that has an offset enabled (degrees Celsius to kelvin) no
    factor converts the values: a clear error, not a wrong factor."""
    from tdrdenoise.io.containers import unit_factor

    assert unit_factor(u.K, u.mK, "image") == 1000.0
    with u.set_enabled_equivalencies(u.temperature()):
        with pytest.raises(u.UnitConversionError, match="not a scaling"):
            unit_factor(u.deg_C, u.K, "image")
    with pytest.raises(u.UnitConversionError, match="trained on images in 'K'"):
        unit_factor(u.G, u.K, "image")
