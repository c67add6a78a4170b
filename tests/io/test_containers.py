"""Every container kind through one fixture: same kind back, metadata kept, input intact."""
import copy

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits

from tdrdenoise import restore, tdr_denoise
from tdrdenoise.io.containers import repack, unpack

FAST = dict(fine_tune_steps=1, n_predictions=2, seed=0, progress=False)


def _values(obj):
    return np.asarray(getattr(obj, "data", obj.value if isinstance(obj, u.Quantity) else obj))


def test_unpack_repack_roundtrip(container, noisy):
    image = container(noisy)
    img = unpack(image, "image")
    assert img.data.shape == noisy.shape and img.data.dtype == np.float64
    back = repack(img, img.data, mask=img.invalid, std=np.full(noisy.shape, 0.1))
    assert type(back) is type(image) and back is not image
    np.testing.assert_array_equal(_values(back), noisy)
    if container.kind not in ("ndarray", "masked"):
        assert back.unit == u.G
    if container.kind == "map":
        assert back.plot_settings["cmap"] == image.plot_settings["cmap"]
        assert back.meta["telescop"] == "SDO/HMI"
        np.testing.assert_array_equal(back.mask, img.invalid)
        assert back.uncertainty is not None


def test_same_kind_back_metadata_kept_input_untouched(container, noisy, unit_model):
    image = container(noisy)
    before = copy.deepcopy(image)
    out = tdr_denoise(image, unit_model, R=0.2 * u.G, **FAST)
    assert type(out) is type(image) and out is not image
    assert _values(out).shape == noisy.shape
    np.testing.assert_array_equal(_values(image), _values(before))
    if container.kind in ("quantity", "nddata", "ccddata", "map"):
        assert out.unit == u.G
    if container.kind in ("masked", "nddata", "ccddata", "map"):
        assert out.mask[3, 4]  # the input mask is kept
        np.testing.assert_array_equal(np.asarray(image.mask), np.asarray(before.mask))
    if container.kind in ("nddata", "ccddata"):
        assert out.wcs.wcs.compare(image.wcs.wcs)
        assert out.meta["OBJECT"] == "NGC 1365" and out.meta["EXPTIME"] == 10.0
        assert "TDRDENOI" in out.meta and "TDRDENOI" not in image.meta
    if container.kind == "map":
        assert out.reference_coordinate == image.reference_coordinate
        assert out.meta["telescop"] == "SDO/HMI" and "tdrdenoi" in out.meta
        assert "tdrdenoi" not in image.meta
        assert type(out).__name__ == "HMIMap"


def test_restore_keeps_quantities(container, noisy):
    if container.kind != "quantity":
        pytest.skip("restore takes arrays and Quantities")
    image = container(noisy)
    out, mask = restore(image, image + 1 * u.G, 0.5 * u.G)
    assert out.unit == u.G and mask.all()
    np.testing.assert_array_equal(out.value, noisy)


def test_restore_refuses_containers(noisy):
    from astropy.nddata import CCDData
    with pytest.raises(TypeError, match="initial must be an array or a Quantity"):
        restore(CCDData(noisy, unit="G"), noisy, 1.0)


# ----------------------------------------------------------------- provenance


def _meta(kind, noisy, unit_model, add_keyword):
    from ..conftest import make_container
    out = tdr_denoise(make_container(kind, noisy), unit_model, R=0.2 * u.G,
                      add_keyword=add_keyword, **FAST)
    return out.meta


@pytest.mark.parametrize("kind", ["ccddata", "map"])
def test_add_keyword_default(kind, noisy, unit_model):
    meta = _meta(kind, noisy, unit_model, True)
    get = (lambda k: meta[k.lower()]) if kind == "map" else meta.__getitem__
    assert get("TDRDENOI").startswith("R=0.2 G") and 0 <= get("TDRRFRAC") <= 1


def test_add_keyword_default_in_fits_header(noisy, unit_model):
    from astropy.nddata import CCDData
    ccd = CCDData(noisy, unit="G", meta=fits.Header({"OBJECT": "x"}))
    meta = tdr_denoise(ccd, unit_model, **FAST).meta
    assert meta["HIERARCH TDR_DENOISE"] == "TDRDENOI" and "TDRRFRAC" in meta


def test_add_keyword_false(noisy, unit_model):
    meta = _meta("ccddata", noisy, unit_model, False)
    assert not any(k.startswith("TDR") for k in meta)
    assert set(meta) == {"OBJECT", "EXPTIME"}


def test_add_keyword_name(noisy, unit_model):
    meta = _meta("ccddata", noisy, unit_model, "DENOISED")
    assert meta["DENOISED"].startswith("R=0.2 G") and "TDRDENOI" not in meta
    assert "TDRRFRAC" in meta


def test_add_keyword_ccdproc_keyword(noisy, unit_model):
    ccdproc = pytest.importorskip("ccdproc")
    meta = _meta("ccddata", noisy, unit_model, ccdproc.Keyword("calstat", value="denoised"))
    assert meta["calstat"] == "denoised" and "TDRDENOI" not in meta


def test_add_keyword_card_and_dict(noisy, unit_model):
    meta = _meta("ccddata", noisy, unit_model, fits.Card("PIPESTEP", "tdr", "a comment"))
    assert meta["PIPESTEP"] == "tdr" and "TDRDENOI" not in meta
    meta = _meta("ccddata", noisy, unit_model, {"STEP1": "tdr", "STEP2": 2})
    assert meta["STEP1"] == "tdr" and meta["STEP2"] == 2


def test_add_keyword_map_history(noisy, unit_model):
    meta = _meta("map", noisy, unit_model, "denoised")
    assert meta["denoised"].startswith("R=0.2 G")
    assert "denoised: R=0.2 G" in meta["history"]


@pytest.mark.parametrize("bad", [3, ["TDR"], ""])
def test_add_keyword_bad(noisy, unit_model, bad):
    error = ValueError if bad == "" else TypeError
    with pytest.raises(error, match="add_keyword"):
        _meta("ccddata", noisy, unit_model, bad)


def test_cast_data_refuses_overflow_and_counts_rounding():
    from astropy.nddata import CCDData, StdDevUncertainty

    from tdrdenoise.io.containers import cast_data, cast_problems

    values = np.array([[1.0, 1 + 2.0 ** -40, 16777217.0, 1e39, np.nan, np.inf]])
    assert cast_problems(values, np.float32) == (1, 2, 1e39)
    assert cast_problems(values, np.float64) == (0, 0, 0.0)
    ccd = CCDData(values[:, :3].copy(), unit="adu",
                  uncertainty=StdDevUncertainty(np.ones((1, 3))))
    assert cast_data(ccd, np.float32, source=values[:, :3]) == 2
    assert ccd.data.dtype == np.float32 and ccd.uncertainty.array.dtype == np.float32
    big = CCDData(values[:, 3:4].copy(), unit="adu")
    with pytest.raises(ValueError, match="would become inf.*dtype=None"):
        cast_data(big, np.float32)
    assert big.data.dtype == np.float64  # left as it was


def test_array_errors_of_other_kinds_are_not_called_ragged():
    """Only lists and tuples get the ragged-rows message: another container's own
    ValueError reaches the caller as it is."""
    from astropy.nddata import NDData

    class Unconvertible:
        shape = (4, 4)
        ndim = 2
        dtype = np.dtype(float)

        def __array__(self, dtype=None, copy=None):
            raise ValueError("this device buffer cannot be read as an array")

    ndd = NDData(np.zeros((4, 4)))
    ndd._data = Unconvertible()
    with pytest.raises(ValueError, match="^this device buffer cannot be read") as info:
        unpack(ndd, "image")
    assert "nested" not in str(info.value)


@pytest.mark.parametrize("ragged, detail", [
    ([[1.0, 2.0, 3.0], [4.0, 5.0]], "row lengths 2, 3"),
    ([[1.0, 2.0], 3.0], "numbers and rows mixed")])
def test_ragged_list_message(ragged, detail, unit_model):
    from tdrdenoise.io.containers import unpack_images

    for call in (lambda: unpack(ragged, "image"), lambda: unpack_images(ragged),
                 lambda: tdr_denoise(ragged, unit_model, **FAST)):
        with pytest.raises(ValueError, match=f"image is a nested list whose rows are not "
                                             f"all of one length \\({detail}\\).*equal "
                                             "length: pad or crop"):
            call()
