import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData, NDData, StdDevUncertainty, VarianceUncertainty
from astropy.wcs import WCS

from tdrdenoise import TDRModel, TDRUserWarning, tdr_denoise

from .conftest import smooth_field

FAST = dict(fine_tune_steps=1, n_predictions=2, seed=0, progress=False)


def make_wcs(shape):
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crpix = [shape[1] / 2, shape[0] / 2]
    wcs.wcs.crval = [53.4, -36.14]
    wcs.wcs.cdelt = [-1e-5, 1e-5]
    return wcs


def make_ccd(noisy, unit="G"):
    header = fits.Header({"OBJECT": "NGC 1365", "EXPTIME": 10.0, "FILTER": "F555W"})
    mask = np.zeros(noisy.shape, bool)
    mask[3, 4] = True
    return CCDData(noisy.copy(), unit=unit, mask=mask, meta=header, wcs=make_wcs(noisy.shape),
                   uncertainty=StdDevUncertainty(np.full(noisy.shape, 0.3)))


def test_ccddata_keeps_everything(noisy, unit_model):
    ccd = make_ccd(noisy)
    out, restored = tdr_denoise(ccd, unit_model, R=0.2 * u.G, return_restored_mask=True,
                                **FAST)
    for key in ("OBJECT", "EXPTIME", "FILTER"):
        assert out.meta[key] == ccd.meta[key]
    assert out.wcs.wcs.compare(ccd.wcs.wcs)
    assert out.unit == u.G
    # the mask: input mask OR restored pixels; the restored mask alone is returned too
    np.testing.assert_array_equal(out.mask, ccd.mask | restored)
    assert restored.any() and not restored.all()
    # restored pixels carry the input values and the input uncertainty
    np.testing.assert_array_equal(out.data[restored], ccd.data[restored])
    assert isinstance(out.uncertainty, StdDevUncertainty)
    np.testing.assert_array_equal(out.uncertainty.array[restored], 0.3)
    # provenance, ccdproc style
    assert out.meta["HIERARCH TDR_DENOISE"] == "TDRDENOI"
    record = out.meta["TDRDENOI"]
    assert "R=0.2 G" in record and f"fingerprint={unit_model.fingerprint}" in record
    assert "n_predictions=2" in record and "fine_tune_steps=1" in record
    valid = ~ccd.mask
    assert out.meta["TDRRFRAC"] == pytest.approx(restored[valid].mean(), abs=1e-6)


def test_ccddata_masked_pixel_untouched(noisy, unit_model):
    ccd = make_ccd(noisy)
    ccd.data[3, 4] = 1e6  # a cosmic ray, masked
    out = tdr_denoise(ccd, unit_model, **FAST)
    assert out.data[3, 4] == 1e6 and out.mask[3, 4]
    assert out.uncertainty.array[3, 4] == 0.3


def test_ccddata_fits_roundtrip(tmp_path, noisy, unit_model):
    out = tdr_denoise(make_ccd(noisy), unit_model, R=0.2 * u.G, **FAST)
    path = tmp_path / "out.fits"
    out.write(path)
    back = CCDData.read(path)
    np.testing.assert_array_equal(back.data, out.data)
    np.testing.assert_array_equal(back.mask, out.mask)
    assert back.unit == u.G
    assert back.header["TDRDENOI"] == out.meta["TDRDENOI"]
    assert back.header["OBJECT"] == "NGC 1365"


def test_uncertainty_is_ensemble_std(noisy, unit_model):
    ccd = CCDData(noisy, unit="G")
    out = tdr_denoise(ccd, unit_model, fine_tune_steps=0, n_predictions=3, seed=2,
                      progress=False)
    mean, std = unit_model.predict(ccd, n_predictions=3, seed=2, progress=False)
    np.testing.assert_array_equal(out.data, mean)
    np.testing.assert_array_equal(out.uncertainty.array, std)
    assert not out.mask.any()
    assert out.meta["TDRRFRAC"] == 0


def test_restored_without_input_uncertainty_gets_noise_scale(noisy, unit_model):
    out, restored = tdr_denoise(NDData(noisy, unit="G"), unit_model, R=0.1 * u.G,
                                return_restored_mask=True, **FAST)
    np.testing.assert_allclose(out.uncertainty.array[restored],
                               unit_model.normalization["scale"])


def test_variance_uncertainty_converted(noisy, unit_model):
    ccd = CCDData(noisy, unit="G", uncertainty=VarianceUncertainty(np.full(noisy.shape, 4.0)))
    out, restored = tdr_denoise(ccd, unit_model, R=0.1 * u.G, return_restored_mask=True,
                                **FAST)
    np.testing.assert_allclose(out.uncertainty.array[restored], 2.0)


def test_R_zero_returns_input(noisy, tiny_model):
    out = tdr_denoise(noisy, tiny_model, R=0, **FAST)
    np.testing.assert_array_equal(out, noisy)


def test_R_inf_is_the_ensemble_mean(noisy, tiny_model):
    out = tdr_denoise(noisy, tiny_model, R=np.inf, fine_tune_steps=0, n_predictions=2,
                      seed=1, progress=False)
    mean, _ = tiny_model.predict(noisy, n_predictions=2, seed=1, progress=False)
    np.testing.assert_array_equal(out, mean)


def test_restore_bound_holds(noisy, tiny_model):
    out = tdr_denoise(noisy, tiny_model, R=0.25, **FAST)
    assert np.all(np.abs(out - noisy) <= 0.25)


def test_R_in_other_unit(noisy, unit_model):
    a = tdr_denoise(noisy * u.G, unit_model, R=0.2 * u.G, **FAST)
    b = tdr_denoise(noisy * u.G, unit_model, R=0.02 * u.mT, **FAST)
    np.testing.assert_array_equal(a, b)


def test_nan_stays_nan_and_masked(noisy, unit_model):
    data = noisy.copy()
    data[:6, :6] = np.nan  # off the limb
    out, restored = tdr_denoise(CCDData(data, unit="G"), unit_model, R=0.2 * u.G,
                                return_restored_mask=True, **FAST)
    assert np.all(np.isnan(out.data[:6, :6]))
    assert out.mask[:6, :6].all() and not restored[:6, :6].any()
    assert np.all(np.isnan(out.uncertainty.array[:6, :6]))
    assert np.all(np.isfinite(out.data[6:, 6:]))


def test_masked_array_mask(noisy, tiny_model):
    mask = np.zeros(noisy.shape, bool)
    mask[5, :] = True
    image = np.ma.MaskedArray(noisy, mask=mask)
    out, restored = tdr_denoise(image, tiny_model, R=0.2, return_restored_mask=True, **FAST)
    np.testing.assert_array_equal(out.mask, mask | restored)
    np.testing.assert_array_equal(out.data[5], noisy[5])


def _exact_input(dtype, rng):
    """An image of ``dtype`` whose values test exactness (large offsets, big integers)."""
    dtype = np.dtype(dtype)
    base = smooth_field() * 3
    if dtype == np.float64:
        return 1e8 + base + rng.normal(0, 1, base.shape)
    if dtype.kind == "f":
        return (base + rng.normal(0, 0.3, base.shape)).astype(dtype)
    if dtype == np.int64:
        return 2**60 + np.round((base + rng.normal(0, 1, base.shape)) * 1e5).astype(np.int64)
    offset = 3000 if dtype.kind == "u" else 0
    if dtype == np.int32:
        offset = 2**27  # beyond float32's exact integers
    return (offset + np.round((base + rng.normal(0, 1, base.shape)) * 100)).astype(dtype)


EXACT_DTYPES = [np.float32, np.float64, ">f8", np.int16, np.int32, np.int64, np.uint16]
OUT_DTYPES = {"float32": np.float32, "float64": np.float64, ">f8": np.float64,
              "int16": np.float32, "uint16": np.float32, "int32": np.float64,
              "int64": np.float64}


@pytest.fixture(params=EXACT_DTYPES, ids=lambda d: np.dtype(d).str)
def exact_case(request):
    image = _exact_input(request.param, np.random.default_rng(0))
    model = TDRModel(patch_size=32, batch_size=2, device="cpu").fit(image, steps=1, seed=0,
                                                                    progress=False)
    return image, model, OUT_DTYPES[np.dtype(request.param).name if np.dtype(
        request.param).isnative else ">f8"]


def test_R_zero_is_the_input_bit_for_bit(exact_case):
    image, model, _ = exact_case
    out = tdr_denoise(image, model, R=0, **FAST)
    assert out.dtype == image.dtype.newbyteorder("=") and out.dtype.isnative
    np.testing.assert_array_equal(out, image)


def test_output_dtype_and_exact_restored_pixels(exact_case):
    image, model, out_dtype = exact_case
    out, restored = tdr_denoise(image, model, R=0.5 * model.normalization["scale"],
                                return_restored_mask=True, **FAST)
    assert out.dtype == out_dtype and np.isfinite(out).all()
    assert restored.any() and not restored.all()
    if out_dtype == np.float64 and image.dtype == np.int64:
        # no float holds integers beyond 2**53: restored pixels are the nearest float64
        np.testing.assert_array_equal(out[restored], image[restored].astype(np.float64))
    else:
        np.testing.assert_array_equal(out[restored], image[restored])
    mean, std = model.predict(image, n_predictions=2, seed=0, progress=False)
    assert mean.dtype == out_dtype and std.dtype == out_dtype
    assert np.abs(mean.astype(float) - image.astype(float)).max() < 20 * \
        model.normalization["scale"]


def test_values_beyond_float32_never_become_inf():
    rng = np.random.default_rng(0)
    image = 1e39 * (1 + 1e-3 * (smooth_field() + rng.normal(0, 0.3, (64, 64))))
    model = TDRModel(patch_size=32, batch_size=2, device="cpu").fit(image, steps=1, seed=0,
                                                                    progress=False)
    out = tdr_denoise(image, model, R=np.inf, **FAST)
    assert out.dtype == np.float64 and np.isfinite(out).all()
    assert np.abs(out / image - 1).max() < 1e-2
    spiked = smooth_field() + rng.normal(0, 0.3, (64, 64))
    spiked[9, 9] = 1e300
    with pytest.warns(TDRUserWarning, match="1 extreme pixel"):
        out = tdr_denoise(spiked, model.fine_tune(image, steps=0), R=np.inf,
                          **dict(FAST, fine_tune_steps=0))
    assert out[9, 9] == 1e300 and np.isfinite(out).all()


@pytest.mark.parametrize("dtype", [">f4", ">f8", np.int16, np.uint16])
def test_dtypes(noisy, tiny_model, dtype):
    image = (noisy * 100).astype(dtype) if np.dtype(dtype).kind in "iu" else noisy.astype(dtype)
    if np.dtype(dtype).kind == "u":
        image = (noisy * 100 + 500).astype(dtype)
    model = tiny_model
    if np.dtype(dtype).kind in "iu":
        model = TDRModel(patch_size=32, batch_size=2, device="cpu").fit(image, steps=1, seed=0,
                                                                        progress=False)
    out = tdr_denoise(image, model, **FAST)
    assert out.dtype.kind == "f" and out.dtype.isnative
    assert np.all(np.isfinite(out))


def test_keyword_only(noisy, tiny_model):
    with pytest.raises(TypeError, match="positional"):
        tdr_denoise(noisy, tiny_model, 0.5)


def test_bad_model(noisy):
    with pytest.raises(TypeError, match="model must be a TDRModel"):
        tdr_denoise(noisy, "model.tdr")
    with pytest.raises(RuntimeError, match="needs a trained model"):
        tdr_denoise(noisy, TDRModel(device="cpu"))


@pytest.mark.parametrize("R, error, match", [
    (-1, ValueError, "non-negative"),
    (np.nan, ValueError, "non-negative"),
    (5 * u.s, u.UnitsError, "cannot be converted"),
])
def test_bad_R(noisy, unit_model, R, error, match):
    with pytest.raises(error, match=match):
        tdr_denoise(CCDData(noisy, unit="G"), unit_model, R=R, **FAST)


@pytest.mark.parametrize("option, error, match", [
    ({"R": True}, TypeError, "^R must be a number"),
    ({"R": "5"}, TypeError, "^R must be a number"),
    ({"R": -1}, ValueError, "^R must be a non-negative number"),
    ({"n_predictions": 2.9}, ValueError, "^n_predictions must be an integer >= 1"),
    ({"n_predictions": 0}, ValueError, "^n_predictions must be an integer >= 1"),
    ({"n_predictions": "16"}, TypeError, "^n_predictions must be an integer"),
    ({"fine_tune_steps": -1}, ValueError, "^fine_tune_steps must be an integer >= 0"),
    ({"fine_tune_steps": True}, TypeError, "^fine_tune_steps must be an integer"),
    ({"tile_size": 0}, ValueError, "^tile_size must be an integer >= 1"),
    ({"tile_size": 64.5}, ValueError, "^tile_size must be an integer >= 1"),
    ({"seed": -1}, ValueError, "^seed must be an integer with 0 <= seed < 2"),
    ({"seed": 2**70}, ValueError, "^seed must be an integer with 0 <= seed < 2"),
    ({"seed": 1.5}, ValueError, "^seed must be an integer"),
    ({"seed": "0"}, TypeError, "^seed must be an integer"),
    ({"fill": "mean"}, ValueError, "^fill must be 'initial' or 'ambient'"),
    ({"R": np.array([1.0, -1.0])}, ValueError, "^R must be zero or positive at every pixel"),
])
def test_bad_options_fail_before_any_work(unit_model, option, error, match):
    """Each option is checked, and named, before the image is even looked at."""
    options = {**FAST, **option}
    with pytest.raises(error, match=match):
        tdr_denoise(np.zeros((3, 3)), unit_model, **options)  # a bad image too


def test_whole_float_options_accepted(noisy, unit_model):
    out = tdr_denoise(CCDData(noisy, unit="G"), unit_model, R=np.inf,
                      **{**FAST, "n_predictions": 2.0, "seed": np.int64(0)})
    assert "n_predictions=2," in out.meta["TDRDENOI"] and "seed=0" in out.meta["TDRDENOI"]


def test_unit_mismatch(noisy, unit_model):
    with pytest.raises(u.UnitsError, match="trained on images in 'G'"):
        tdr_denoise(CCDData(noisy, unit="electron/s"), unit_model, **FAST)


def test_wrong_dimensions(unit_model):
    with pytest.raises(ValueError, match="2-D image"):
        tdr_denoise(np.zeros((3, 32, 32)), unit_model)


@pytest.mark.slow
@pytest.mark.data
def test_active_regions_keep_their_strong_field_flux():
    """Issue 23: trained on one HMI SHARP active region, the defaults (R = inf) change
    the unsigned flux of the strong-field pixels (> 20 noise sigmas) of other
    regions at other times by at most 2 % (it was up to -19 %), and take no real map
    for impulse noise (a few minutes on 2 cores)."""
    from tdrdenoise.metrics import noise_level

    from .conftest import SHARED_DATA

    def sharp(name):
        path = SHARED_DATA / f"hmi_sharp/hmi.sharp_cea_720s.{name}_TAI.magnetogram.fits"
        with warnings.catch_warnings():  # SHARP headers hold NaN cards astropy fixes
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            return CCDData.read(path, hdu=1, unit="G")

    model = TDRModel(device="cpu").fit(sharp("1446.20120306_142400"), steps=150, seed=0,
                                       progress=False)
    assert model.normalization["impulse_noise"] is False
    assert model.normalization["pixel_shuffle"] > 1  # the correlated noise is handled
    for name in ("1425.20120306_202400", "1449.20120307_142400",
                 "1460.20120307_142400"):
        ccd = sharp(name)
        out = tdr_denoise(ccd, model, seed=0, progress=False)
        x, d = ccd.data.astype(np.float64), out.data.astype(np.float64)
        sigma = noise_level(x, 20.0)[0]
        strong = np.abs(x) > 20 * sigma
        change = np.abs(d[strong]).sum() / np.abs(x[strong]).sum() - 1
        assert strong.sum() > 100 and abs(change) <= 0.02, (name, change)
        # the noise is removed: the noise level falls by at least a third
        assert noise_level(d, 20.0)[0] < 0.67 * sigma, name


# ------------------------------------------------------------------ issue 25: R per pixel, fill
def test_per_pixel_R_array(noisy, unit_model):
    ccd = make_ccd(noisy)
    scalar, m_scalar = tdr_denoise(ccd, unit_model, R=0.2 * u.G, return_restored_mask=True,
                                   **FAST)
    R = np.full(noisy.shape, 0.2)
    R[:, : noisy.shape[1] // 2] = np.inf  # left half: nothing restored
    out, restored = tdr_denoise(ccd, unit_model, R=R * u.G, return_restored_mask=True, **FAST)
    half = noisy.shape[1] // 2
    assert not restored[:, :half].any()
    np.testing.assert_array_equal(restored[:, half:], m_scalar[:, half:])
    np.testing.assert_array_equal(out.data[:, half:], scalar.data[:, half:])
    assert "R=per-pixel 0.2..inf G" in out.meta["TDRDENOI"]
    np.testing.assert_array_equal(ccd.data, noisy)  # input not modified


def test_per_pixel_R_wrong_shape(noisy, unit_model):
    with pytest.raises(ValueError, match=r"R has shape \(3, 4\) but the image has shape "
                                         rf"\({noisy.shape[0]}, {noisy.shape[1]}\)"):
        tdr_denoise(CCDData(noisy, unit="G"), unit_model, R=np.ones((3, 4)) * u.G, **FAST)


def test_noise_multiple_uses_the_input_uncertainty(noisy, unit_model):
    from tdrdenoise.restore import NoiseMultiple
    ccd = make_ccd(noisy)  # uncertainty 0.3 G everywhere
    a = tdr_denoise(ccd, unit_model, R=0.6 * u.G, **FAST)
    b = tdr_denoise(ccd, unit_model, R=NoiseMultiple(2), **FAST)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert "R=2sigma of the input uncertainty (per-pixel 0.6..0.6 G)" in b.meta["TDRDENOI"]


def test_noise_multiple_falls_back_to_the_model_noise(noisy, unit_model):
    from tdrdenoise.restore import NoiseMultiple
    sigma = unit_model.noise_sigma
    a = tdr_denoise(CCDData(noisy, unit="G"), unit_model, R=1.5 * sigma * u.G, **FAST)
    b = tdr_denoise(CCDData(noisy, unit="G"), unit_model, R=NoiseMultiple(1.5), **FAST)
    np.testing.assert_array_equal(a.data, b.data)
    assert f"R=1.5sigma of the model noise ({1.5 * sigma:g} G)" in b.meta["TDRDENOI"]


def test_fill_ambient(noisy, unit_model):
    from tdrdenoise.restore import ambient_values
    ccd = make_ccd(noisy)
    ccd.data[3, 4] = 1e6  # masked: neither restored nor a neighbour
    plain, m_plain = tdr_denoise(ccd, unit_model, R=0.2 * u.G, return_restored_mask=True,
                                 **FAST)
    denoised = tdr_denoise(ccd, unit_model, R=np.inf, **FAST)
    out, restored = tdr_denoise(ccd, unit_model, R=0.2 * u.G, fill="ambient",
                                return_restored_mask=True, **FAST)
    # the same pixels are restored and masked; only their values differ
    np.testing.assert_array_equal(restored, m_plain)
    np.testing.assert_array_equal(out.mask, plain.mask)
    np.testing.assert_array_equal(out.data[~restored], plain.data[~restored])
    usable = ~restored & ~ccd.mask
    expected = ambient_values(denoised.data, usable, ccd.data)
    np.testing.assert_allclose(out.data[restored], expected[restored], rtol=1e-6)
    assert out.data[3, 4] == 1e6
    assert "fill=ambient" in out.meta["TDRDENOI"]
    assert "fill=" not in plain.meta["TDRDENOI"]
    np.testing.assert_array_equal(ccd.data[~ccd.mask], noisy[~ccd.mask])


def test_fill_R0(noisy, tiny_model):
    image = noisy.astype(np.float32)
    out = tdr_denoise(image, tiny_model, R=0, fill="initial", **FAST)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, image)
    # the network changes every pixel: with R=0 no pixel is left to take a value
    # from, and the ambient fill falls back to the initial values
    ambient = tdr_denoise(image, tiny_model, R=0, fill="ambient", **FAST)
    np.testing.assert_array_equal(ambient, image)
