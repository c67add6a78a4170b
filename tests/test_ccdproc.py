"""tdrdenoise inside ccdproc reduction chains and over an ImageFileCollection."""
import os

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData

ccdproc = pytest.importorskip("ccdproc")

from tdrdenoise import TDRModel, tdr_denoise  # noqa: E402
from tdrdenoise.batch import denoise_collection  # noqa: E402
from tdrdenoise.io import read_image, write_image  # noqa: E402

FAST = dict(fine_tune_steps=1, n_predictions=2, seed=0, progress=False)
SHAPE = (48, 48)


def raw_frame(seed, n_cosmics=6):
    """A sky frame in electrons with a few sharp cosmic-ray hits."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SHAPE[0], :SHAPE[1]]
    sky = 200 + 40 * np.exp(-((xx - 24) ** 2 + (yy - 20) ** 2) / 60.0)
    data = rng.normal(sky, 10.0)
    hits = np.column_stack([rng.integers(4, SHAPE[0] - 4, n_cosmics),
                            rng.integers(4, SHAPE[1] - 4, n_cosmics)])
    data[hits[:, 0], hits[:, 1]] += 3000.0
    header = fits.Header({"OBJECT": "test field", "FILTER": "F555W", "EXPTIME": 10.0})
    return CCDData(data, unit="electron", meta=header), hits


@pytest.fixture(scope="module")
def model():
    ccd, _ = raw_frame(100)
    clean = ccdproc.cosmicray_lacosmic(ccd, sigclip=5, gain_apply=False)
    return TDRModel(patch_size=32, batch_size=2, device="cpu").fit(
        clean, steps=3, seed=0, progress=False)


def test_chain_after_lacosmic(model):
    raw, hits = raw_frame(1)
    raw = CCDData(raw.data / 2, unit="adu", meta=raw.meta)
    electrons = ccdproc.gain_correct(raw, 2 * u.electron / u.adu)
    clean = ccdproc.cosmicray_lacosmic(electrons, sigclip=5, gain_apply=False)
    cr = clean.mask.copy()
    assert cr[hits[:, 0], hits[:, 1]].all()  # lacosmic found the hits
    out = tdr_denoise(clean, model, R=15 * u.electron, **FAST)
    assert isinstance(out, CCDData) and out.unit == u.electron
    # the cosmic-ray pixels stay masked and come out untouched
    assert out.mask[cr].all()
    np.testing.assert_array_equal(out.data[cr], clean.data[cr])
    assert np.isfinite(out.uncertainty.array[~cr]).all()
    # ccdproc-style provenance: the cards of the earlier steps and ours, original
    # cards kept (ccdproc 2.5 logs gain_correct but not cosmicray_lacosmic)
    assert "gain_correct" in out.meta
    assert "R=15 electron" in out.meta["TDRDENOI"]
    assert out.meta["OBJECT"] == "test field"
    # the input of the step is not changed
    np.testing.assert_array_equal(clean.mask, cr)
    # and the chain goes on: NDData arithmetic keeps mask and uncertainty
    trimmed = ccdproc.trim_image(out[2:-2, 2:-2])
    assert trimmed.mask.sum() == out.mask[2:-2, 2:-2].sum()
    assert trimmed.uncertainty.array.shape == trimmed.shape


def test_script_as_a_new_user_writes_it(model, tmp_path):
    """CCDData from FITS -> cosmic-ray cleaning -> tdr_denoise -> write."""
    raw, _ = raw_frame(2)
    raw.write(tmp_path / "raw.fits")
    ccd = CCDData.read(tmp_path / "raw.fits")
    ccd = ccdproc.cosmicray_lacosmic(ccd, sigclip=5, gain_apply=False)
    result = tdr_denoise(ccd, model, R=15 * u.electron, **FAST)
    result.write(tmp_path / "clean.fits")
    back = CCDData.read(tmp_path / "clean.fits")
    np.testing.assert_array_equal(back.mask, result.mask)
    assert "TDRDENOI" in back.meta and "TDRRFRAC" in back.meta
    # write_image does the same, atomically and protecting the input
    with pytest.raises(ValueError, match="input file"):
        write_image(result, tmp_path / "raw.fits", overwrite=True,
                    inputs=[tmp_path / "raw.fits"])
    write_image(result, tmp_path / "clean2.fits")
    assert read_image(tmp_path / "clean2.fits").meta["TDRRFRAC"] == back.meta["TDRRFRAC"]


def test_image_file_collection(model, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for i, band in enumerate(["F555W", "F555W", "F814W"]):
        ccd, _ = raw_frame(10 + i, n_cosmics=0)
        ccd.meta["FILTER"] = band
        ccd.write(raw / f"img{i}.fits")
    collection = ccdproc.ImageFileCollection(raw)
    out = tmp_path / "out"
    table = denoise_collection(collection, model, R=15 * u.electron, output_dir=out,
                               filters={"filter": "F555W"}, **FAST)
    assert list(table["status"]) == ["done", "done"]
    assert sorted(os.listdir(out)) == ["img0_tdr.fits", "img1_tdr.fits"]
    # the outputs form a collection of their own, with the provenance cards
    done = ccdproc.ImageFileCollection(out, keywords=["filter", "tdrdenoi", "tdrrfrac"])
    assert set(done.summary["filter"]) == {"F555W"}
    assert all("R=15 electron" in value for value in done.summary["tdrdenoi"])
    # all files, no filter; the two done are skipped
    table = denoise_collection(collection, model, R=15 * u.electron, output_dir=out, **FAST)
    assert list(table["status"]) == ["skipped", "skipped", "done"]
    with pytest.raises(TypeError, match="ImageFileCollection"):
        denoise_collection([str(raw / "img0.fits")], model)


def test_collection_ext(model, tmp_path):
    """A collection of compressed files read with ext=1 denoises HDU 1."""
    raw = tmp_path / "raw"
    raw.mkdir()
    ccd, _ = raw_frame(20, n_cosmics=0)
    header = ccd.meta.copy()
    header["BUNIT"] = "electron"
    fits.HDUList([fits.PrimaryHDU(),
                  fits.CompImageHDU(ccd.data.astype(np.float32), header)]).writeto(
        raw / "comp.fits")
    collection = ccdproc.ImageFileCollection(raw, ext=1)
    table = denoise_collection(collection, model, R=15 * u.electron,
                               output_dir=tmp_path / "out", **FAST)
    assert list(table["status"]) == ["done"]
