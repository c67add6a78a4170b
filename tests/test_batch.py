"""Tests of tdrdenoise.batch: many files, sequentially and on a dask LocalCluster."""
import os

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData

from tdrdenoise import TDRModel
from tdrdenoise.batch import denoise_files

FAST = dict(fine_tune_steps=1, n_predictions=2, seed=0)


def write_frame(path, seed, shape=(40, 48)):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    data = (np.sin(xx / 5.0) + rng.normal(0, 0.3, shape)).astype(np.float32)
    header = fits.Header({"BUNIT": "adu", "OBJECT": f"field {seed}", "EXPTIME": 10.0})
    fits.PrimaryHDU(data, header).writeto(path)
    return path


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    frame = write_frame(folder / "train.fits", 99)
    model = TDRModel(patch_size=32, batch_size=2, device="cpu").fit(
        CCDData.read(frame), steps=3, seed=0, progress=False)
    path = folder / "model.tdr"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def model(model_path):
    return TDRModel.load(model_path, device="cpu")


@pytest.fixture
def files(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    good = [write_frame(raw / f"frame{i}.fits", i) for i in range(2)]
    bad = raw / "broken.fits"
    bad.write_text("not a FITS file")
    return [str(good[0]), str(bad), str(good[1])]


def test_sequential(files, model, tmp_path):
    before = {f: open(f, "rb").read() for f in files}
    out_dir = tmp_path / "out"
    table = denoise_files(files, model, R=0.5 * u.adu, output_dir=out_dir, progress=False,
                          **FAST)
    assert list(table["input"]) == files
    assert list(table["status"]) == ["done", "failed", "done"]
    assert "broken.fits" in table["input"][1] and table["error"][1]
    assert table.meta["n_done"] == 2 and table.meta["n_failed"] == 1
    assert all(0 <= f <= 1 for f in table["restored_fraction"][[0, 2]])
    assert np.isnan(table["restored_fraction"][1])
    assert sorted(os.listdir(out_dir)) == ["frame0_tdr.fits", "frame1_tdr.fits"]
    assert {f: open(f, "rb").read() for f in files} == before  # inputs untouched
    with fits.open(table["output"][0]) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "MASK", "UNCERT"]
        header = hdul[0].header
        assert header["OBJECT"] == "field 0" and header["EXPTIME"] == 10.0
        assert header["BUNIT"] == "adu"
        assert "R=0.5 adu" in header["TDRDENOI"]
        assert header["TDRRFRAC"] == pytest.approx(table["restored_fraction"][0], abs=1e-6)

    # re-run: what is done is skipped, the bad file fails again
    again = denoise_files(files, model, R=0.5 * u.adu, output_dir=out_dir, progress=False,
                          **FAST)
    assert list(again["status"]) == ["skipped", "failed", "skipped"]
    # overwrite=True redoes the outputs; skip_existing=False reports them as failed
    redo = denoise_files(files[:1], model, output_dir=out_dir, overwrite=True,
                         progress=False, **FAST)
    assert list(redo["status"]) == ["done"]
    strict = denoise_files(files[:1], model, output_dir=out_dir, skip_existing=False,
                           progress=False)
    assert list(strict["status"]) == ["failed"] and "exists" in strict["error"][0]


def test_outputs_never_hit_inputs(files, model, tmp_path):
    # no suffix, no output_dir: the output name would be the input itself
    table = denoise_files(files[:1], model, suffix="", progress=False, **FAST)
    assert list(table["status"]) == ["failed"] and "input file" in table["error"][0]
    # two inputs of the same name from two folders into one output folder
    other = tmp_path / "other"
    other.mkdir()
    twin = write_frame(other / "frame0.fits", 5)
    table = denoise_files([files[0], twin], model, output_dir=tmp_path / "out",
                          progress=False, **FAST)
    assert list(table["status"]) == ["done", "failed"]
    assert "also the output" in table["error"][1]


def test_beside_inputs(files, model):
    table = denoise_files(files[:1], model, progress=False, **FAST)
    assert table["output"][0] == files[0].replace(".fits", "_tdr.fits")
    assert os.path.isfile(table["output"][0])


def test_output_dtype(tmp_path, model):
    path = tmp_path / "f64.fits"
    data = np.random.default_rng(0).normal(size=(40, 40))
    fits.PrimaryHDU(data, fits.Header({"BUNIT": "adu"})).writeto(path)
    table = denoise_files([path], model, output_dir=tmp_path / "a", progress=False, **FAST)
    with fits.open(table["output"][0]) as hdul:
        assert hdul[0].data.dtype == np.dtype(">f4")
        assert hdul["UNCERT"].data.dtype == np.dtype(">f4")
    table = denoise_files([path], model, output_dir=tmp_path / "b", dtype=None,
                          progress=False, **FAST)
    assert fits.getdata(table["output"][0]).dtype == np.dtype(">f8")


def test_unit_mismatch_is_per_file(files, model, tmp_path):
    table = denoise_files(files[:1], model, R=5 * u.G, output_dir=tmp_path / "o",
                          progress=False, **FAST)
    assert list(table["status"]) == ["failed"] and "UnitsError" in table["error"][0]


def test_argument_errors(files, model):
    with pytest.raises(TypeError, match="TDRModel"):
        denoise_files(files, "model.tdr")
    with pytest.raises(TypeError, match="n_prediction"):
        denoise_files(files, model, n_prediction=2)
    with pytest.raises(RuntimeError, match="trained"):
        denoise_files(files, TDRModel(device="cpu"))
    assert len(denoise_files([], model, progress=False)) == 0


def test_dask_local_cluster(files, model, model_path, tmp_path):
    distributed = pytest.importorskip("distributed")
    out_dir = tmp_path / "dask"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, worker_dashboard_address=None) \
            as cluster, distributed.Client(cluster) as client:
        table = denoise_files(files, model, R=0.5, output_dir=out_dir, client=client,
                              device="cpu", progress=False, **FAST)
        assert list(table["status"]) == ["done", "failed", "done"]
        assert table["error"][1]
        # the model travelled as its file: the provenance names the original file
        header = fits.getheader(table["output"][0])
        assert f"model={model_path}" in header["TDRDENOI"]
        assert f"fingerprint={model.fingerprint}" in header["TDRDENOI"]
        again = denoise_files(files, model, R=0.5, output_dir=out_dir, client=client,
                              device="cpu", progress=False, **FAST)
        assert list(again["status"]) == ["skipped", "failed", "skipped"]
    # same numbers as a sequential run with the same seed
    seq = denoise_files(files[:1], model, R=0.5, output_dir=tmp_path / "seq",
                        progress=False, **FAST)
    np.testing.assert_allclose(fits.getdata(seq["output"][0]),
                               fits.getdata(table["output"][0]), rtol=1e-5, atol=1e-6)
