"""Tests of tdrdenoise.batch: many files, sequentially and on a dask LocalCluster."""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData

from tdrdenoise import TDRModel
from tdrdenoise.batch import denoise_collection, denoise_files

ROOT = Path(__file__).resolve().parents[1]
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
    # by default the input's type is kept
    table = denoise_files([path], model, output_dir=tmp_path / "a", progress=False, **FAST)
    with fits.open(table["output"][0]) as hdul:
        assert hdul[0].data.dtype == np.dtype(">f8")
        assert hdul["UNCERT"].data.dtype == np.dtype(">f8")
    # float32 on request
    with pytest.warns(UserWarning, match="rounded"):
        table = denoise_files([path], model, output_dir=tmp_path / "b", dtype=np.float32,
                              progress=False, **FAST)
    assert fits.getdata(table["output"][0]).dtype == np.dtype(">f4")
    for wrong in (np.complex128, bool, "S4", "no such type"):
        with pytest.raises(TypeError, match="dtype must be None .* or a real numeric"):
            denoise_files([path], model, output_dir=tmp_path / "c", dtype=wrong)
    with pytest.raises(TypeError, match="dtype=float16 cannot be written: FITS files hold "
                                        "32- and 64-bit floats"):
        denoise_files([path], model, output_dir=tmp_path / "c", dtype=np.float16)


def test_integer_dtypes_are_checked_by_value(tmp_path, model):
    """Integer types are accepted, and refused or warned about by the values of each
    file: what they cannot hold fails, rounding warns."""
    path = tmp_path / "counts.fits"
    data = 1000 + np.random.default_rng(0).normal(0, 3, (40, 40))
    fits.PrimaryHDU(data, fits.Header({"BUNIT": "adu"})).writeto(path)
    with pytest.warns(UserWarning, match="dtype=int32 would change"):
        table = denoise_files([path], model, output_dir=tmp_path / "b", dtype="int32",
                              progress=False, **FAST)
    assert list(table["status"]) == ["done"]
    out = fits.getdata(table["output"][0])
    assert out.dtype.kind == "i" and abs(float(out.mean()) - 1000) < 5
    # values an integer type cannot hold: the file fails, saying why
    data[0, 0] = 1e6
    fits.PrimaryHDU(data, fits.Header({"BUNIT": "adu"})).writeto(path, overwrite=True)
    table = denoise_files([path], model, output_dir=tmp_path / "c", dtype=np.int16,
                          progress=False, **FAST)
    assert list(table["status"]) == ["failed"]
    assert "outside [-32768, 32767]" in table["error"][0]
    assert not os.path.exists(table["output"][0])


def test_r0_dtype_refused_before_denoising(tmp_path, model, monkeypatch):
    """At R=0 a type that cannot hold the input exactly fails before the work."""
    import tdrdenoise.denoise

    path = tmp_path / "f64.fits"
    fits.PrimaryHDU(np.full((40, 40), 1 + 2.0 ** -40), fits.Header({"BUNIT": "adu"})
                    ).writeto(path)
    monkeypatch.setattr(tdrdenoise.denoise, "tdr_denoise",
                        lambda *a, **k: pytest.fail("denoised although refused"))
    table = denoise_files([path], model, R=0, output_dir=tmp_path / "o", dtype=np.float32,
                          progress=False, **FAST)
    assert list(table["status"]) == ["failed"]
    assert "would change 1600 of the 1600 input values" in table["error"][0]
    assert "R=0 must return exactly" in table["error"][0]


def _extreme_float64(tmp_path):
    """A float64 image that float32 cannot hold: 1e8 + noise, 1 + 2**-40, 2**24 + 1, 1e39."""
    data = 1e8 + np.random.default_rng(1).normal(0, 1, (48, 48))
    data[0, :4] = 1 + 2.0 ** -40
    data[1, :4] = 16777217.0
    data[2, :2] = 1e39
    path = tmp_path / "extreme.fits"
    fits.PrimaryHDU(data, fits.Header({"BUNIT": "adu"})).writeto(path)
    return path, data


def test_r0_exact_for_float64_extremes(tmp_path, model):
    path, data = _extreme_float64(tmp_path)
    with np.errstate(over="ignore"):
        assert len(np.unique(data.astype(np.float32))) < len(np.unique(data)) / 100
    table = denoise_files([path], model, R=0, output_dir=tmp_path / "out", progress=False,
                          **FAST)
    assert list(table["status"]) == ["done"]
    out = fits.getdata(table["output"][0])
    assert out.dtype == np.dtype(">f8")
    np.testing.assert_array_equal(out, data)  # every pixel, bit for bit


def test_smaller_dtype_refused_or_warned(tmp_path, model):
    path, data = _extreme_float64(tmp_path)
    # 1e39 would become inf: refused whatever R
    table = denoise_files([path], model, R=0, output_dir=tmp_path / "a", dtype=np.float32,
                          progress=False, **FAST)
    assert list(table["status"]) == ["failed"]
    assert "inf" in table["error"][0] and "--dtype input" in table["error"][0]
    assert not os.path.exists(table["output"][0])
    # values float32 rounds: refused at R=0 (which must return them) ...
    data[2, :2] = 1e8
    fits.PrimaryHDU(data, fits.Header({"BUNIT": "adu"})).writeto(path, overwrite=True)
    table = denoise_files([path], model, R=0, output_dir=tmp_path / "b", dtype=np.float32,
                          progress=False, **FAST)
    assert list(table["status"]) == ["failed"]
    assert "R=0" in table["error"][0] and "would change" in table["error"][0]
    # ... and written with a warning otherwise
    with pytest.warns(UserWarning, match="would change .* input values"):
        table = denoise_files([path], model, R=1.0, output_dir=tmp_path / "c",
                              dtype=np.float32, progress=False, **FAST)
    assert list(table["status"]) == ["done"]
    assert fits.getdata(table["output"][0]).dtype == np.dtype(">f4")


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
        assert f"model={model_path.name}," in header["TDRDENOI"]
        assert str(model_path.parent) not in header["TDRDENOI"]
        assert f"fingerprint={model.fingerprint}" in header["TDRDENOI"]
        again = denoise_files(files, model, R=0.5, output_dir=out_dir, client=client,
                              device="cpu", progress=False, **FAST)
        assert list(again["status"]) == ["skipped", "failed", "skipped"]
    # same numbers as a sequential run with the same seed
    seq = denoise_files(files[:1], model, R=0.5, output_dir=tmp_path / "seq",
                        progress=False, **FAST)
    np.testing.assert_allclose(fits.getdata(seq["output"][0]),
                               fits.getdata(table["output"][0]), rtol=1e-5, atol=1e-6)


def test_single_file_name(files, model, tmp_path):
    # a str or a Path is one file, not a sequence of characters
    for name, out_dir in ((files[0], "a"), (Path(files[2]), "b")):
        table = denoise_files(name, model, output_dir=tmp_path / out_dir, progress=False,
                              **FAST)
        assert len(table) == 1 and list(table["status"]) == ["done"]
        assert table["input"][0] == os.fspath(name)


def test_options_are_keyword_only(files, model, tmp_path):
    with pytest.raises(TypeError, match="positional"):
        denoise_files(files, model, 0.5)
    ccdproc = pytest.importorskip("ccdproc")
    collection = ccdproc.ImageFileCollection(os.path.dirname(files[0]))
    with pytest.raises(TypeError, match="positional"):
        denoise_collection(collection, model, 0.5)


@pytest.mark.parametrize("options, error, match", [
    ({"R": True}, TypeError, "R must be a number"),
    ({"R": "5"}, TypeError, "R must be a number"),
    ({"R": -1.0}, ValueError, "R must be a non-negative number"),
    ({"n_predictions": 2.9}, ValueError, "n_predictions .* whole number"),
    ({"n_predictions": 0}, ValueError, "n_predictions must be an integer >= 1"),
    ({"n_predictions": True}, TypeError, "n_predictions"),
    ({"fine_tune_steps": -1}, ValueError, "fine_tune_steps must be an integer >= 0"),
    ({"tile_size": 0}, ValueError, "tile_size must be an integer >= 1"),
    ({"seed": -1}, ValueError, "seed must be an integer with 0 <= seed < 2"),
    ({"seed": 2**70}, ValueError, "seed must be an integer with 0 <= seed < 2"),
    ({"seed": "1"}, TypeError, "seed must be")])
def test_options_checked_before_work(files, model, tmp_path, options, error, match):
    out_dir = tmp_path / "out"
    with pytest.raises(error, match=match):
        denoise_files(files, model, output_dir=out_dir, progress=False,
                      **{**FAST, **options})
    assert not out_dir.exists()  # nothing was done


def test_output_dir_problems_found_before_work(files, model, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("tdrdenoise.denoise.tdr_denoise",
                        lambda *a, **k: calls.append(a) or pytest.fail("denoised"))
    # a regular file where the output folder should be
    not_a_dir = tmp_path / "out.fits"
    not_a_dir.write_text("a file")
    with pytest.raises(NotADirectoryError, match=r"output_dir .*out\.fits.* is a file, "
                                                 "not a folder"):
        denoise_files(files, model, output_dir=not_a_dir, progress=False)
    with pytest.raises(NotADirectoryError, match="a folder above it is a file"):
        denoise_files(files, model, output_dir=not_a_dir / "sub", progress=False)
    # a folder where nothing can be written (simulated: tests may run as root)
    locked = tmp_path / "locked"
    locked.mkdir()
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and os.path.samefile(dir, locked):
            raise PermissionError(13, "Permission denied")
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    with pytest.raises(PermissionError, match=r"output_dir .*locked.* is not writable"):
        denoise_files(files, model, output_dir=locked, progress=False)
    assert calls == []


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0,
                    reason="needs POSIX permissions that apply (not root)")
def test_unwritable_output_dir(files, model, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match="not writable"):
            denoise_files(files, model, output_dir=locked, progress=False, **FAST)
    finally:
        locked.chmod(0o755)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pids")
def test_claims_and_stale_files(files, model, tmp_path):
    from tdrdenoise.io.files import host_name as _host

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    # what a run killed outright left behind: a lock and a half-written temporary
    (out_dir / ".frame0_tdr.fits.tdrdenoise.lock").write_text(
        f"tdrdenoise {proc.pid}@{_host()}\n")
    part = out_dir / f".frame0_tdr.fits.tdrdenoise-{proc.pid}@{_host()}.x1y2z3_a.part"
    part.write_bytes(b"half a file")
    # a file another run (this process stands for it) is working on
    (out_dir / ".frame1_tdr.fits.tdrdenoise.lock").write_text(
        f"tdrdenoise {os.getpid()}@{_host()}\n")
    table = denoise_files(files, model, output_dir=out_dir, progress=False, **FAST)
    assert list(table["status"]) == ["done", "failed", "skipped"]
    assert "being written by another run" in table["error"][2]
    assert table.meta["n_failed"] == 1 and table.meta["n_skipped"] == 1
    assert sorted(os.listdir(out_dir)) == [".frame1_tdr.fits.tdrdenoise.lock",
                                           "frame0_tdr.fits"]


def test_model_in_non_ascii_folder(files, model_path, tmp_path):
    """The header names the model file, not its folder, in printable ASCII."""
    folder = tmp_path / "données"
    folder.mkdir()
    moved = TDRModel.load(model_path, device="cpu")
    moved.save(folder / "modèle.tdr")
    table = denoise_files(files[:1], TDRModel.load(folder / "modèle.tdr", device="cpu"),
                          R=0.5, output_dir=tmp_path / "out", progress=False, **FAST)
    assert list(table["status"]) == ["done"], table["error"][0]
    record = fits.getheader(table["output"][0])["TDRDENOI"]
    assert "model=mod\\xe8le.tdr," in record and "donn" not in record
    assert f"fingerprint={moved.fingerprint}" in record


def test_foreign_hidden_files_survive(files, model, tmp_path):
    """Other programs' locks and temporaries beside the inputs are never deleted."""
    folder = os.path.dirname(files[0])
    old = 0  # 1970: older than any age limit
    foreign = {".pipeline.lock": "not a pid", ".notes.abcd1234.part": "draft",
               ".frame0_tdr.fits.lock": "12@somewhere\n",
               ".frame0_tdr.fits.123@nohost.abc_1234.part": "x"}
    for name, text in foreign.items():
        path = os.path.join(folder, name)
        with open(path, "w") as fh:
            fh.write(text)
        os.utime(path, (old, old))
    table = denoise_files(files, model, progress=False, **FAST)  # no output_dir
    assert list(table["status"]) == ["done", "failed", "done"]
    for name, text in foreign.items():
        with open(os.path.join(folder, name)) as fh:
            assert fh.read() == text


def test_output_is_a_folder(files, model, tmp_path):
    (tmp_path / "out" / "frame0_tdr.fits").mkdir(parents=True)
    table = denoise_files(files[:1], model, output_dir=tmp_path / "out", progress=False,
                          **FAST)
    assert list(table["status"]) == ["failed"] and "is a folder" in table["error"][0]


def test_written_meanwhile_is_skipped(files, model, tmp_path, monkeypatch):
    """An output another run writes while this one denoises is kept and skipped."""
    import tdrdenoise.denoise

    out_dir = tmp_path / "out"
    real = tdrdenoise.denoise.tdr_denoise

    def racing(image, model, **kwargs):
        result = real(image, model, **kwargs)
        (out_dir / "frame0_tdr.fits").write_bytes(b"theirs")  # a run without claims
        return result

    monkeypatch.setattr(tdrdenoise.denoise, "tdr_denoise", racing)
    table = denoise_files(files[:1], model, output_dir=out_dir, progress=False, **FAST)
    assert list(table["status"]) == ["skipped"]
    assert "another run" in table["error"][0]
    assert (out_dir / "frame0_tdr.fits").read_bytes() == b"theirs"
    assert os.listdir(out_dir) == ["frame0_tdr.fits"]


def test_concurrent_runs_split_the_work(files, model_path, tmp_path):
    """Two processes on the same files and folder: each output written once, no failure."""
    raw = os.path.dirname(files[0])
    frames = [write_frame(os.path.join(raw, f"many{i}.fits"), 10 + i) for i in range(6)]
    out_dir = tmp_path / "out"
    go = tmp_path / "go"
    script = (
        "import json, os, sys, time\n"
        "from tdrdenoise import TDRModel\n"
        "from tdrdenoise.batch import denoise_files\n"
        "model = TDRModel.load(sys.argv[1], device='cpu')\n"
        "print('ready', flush=True)\n"
        "while not os.path.exists(sys.argv[2]):\n"
        "    time.sleep(0.01)\n"
        "table = denoise_files(sys.argv[4:], model, output_dir=sys.argv[3], progress=False,\n"
        "                      fine_tune_steps=2, n_predictions=4, seed=0)\n"
        "print(json.dumps([list(table['status']), list(table['error'])]), flush=True)\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(model_path), str(go),
                               str(out_dir)] + frames, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready"
        go.write_text("")
        results = [proc.communicate(timeout=300) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode == 0, err
    status = [json.loads(out)[0] for out, _ in results]
    for i in range(len(frames)):
        column = sorted(s[i] for s in status)
        assert column in (["done", "skipped"], ["skipped", "done"]), column
    assert sorted(os.listdir(out_dir)) == [f"many{i}_tdr.fits" for i in range(6)]
    for name in os.listdir(out_dir):
        assert "TDRDENOI" in fits.getheader(out_dir / name)


def test_model_payload_round_trip(model, model_path):
    """The model goes to the workers as to_bytes() and is rebuilt once per device."""
    from tdrdenoise import batch

    payload = batch._model_payload(model)
    assert payload["key"] == model.fingerprint and payload["name"] == model.path
    assert isinstance(payload["bytes"], bytes) and model.path == str(model_path)
    batch._WORKER_MODELS.clear()
    try:
        back = batch._worker_model(payload, "cpu")
        assert back.fingerprint == model.fingerprint and back.path == model.path
        assert batch._worker_model(payload, "cpu") is back  # rebuilt only once
    finally:
        batch._WORKER_MODELS.clear()


def test_noise_multiple_per_file_and_ambient(model, tmp_path):
    """Issue 25: --R 3sigma is each file's UNCERT where it has one, else the model's
    noise; fill reaches tdr_denoise and its record."""
    from tdrdenoise.restore import NoiseMultiple
    raw = tmp_path / "raw"
    raw.mkdir()
    plain = write_frame(raw / "plain.fits", 1)
    with_unc = raw / "with_unc.fits"
    ccd = CCDData.read(write_frame(raw / "tmp.fits", 2))
    ccd.uncertainty = np.full(ccd.shape, 0.25, np.float32)
    ccd.write(with_unc)
    table = denoise_files([str(plain), str(with_unc)], model, R=NoiseMultiple(2),
                          output_dir=tmp_path / "out", progress=False, fill="ambient",
                          **FAST)
    assert list(table["status"]) == ["done", "done"], list(table["error"])
    assert table.meta["R"] == "2sigma"
    sigma = model.noise_sigma
    headers = [fits.getheader(p) for p in table["output"]]
    assert f"R=2sigma of the model noise ({2 * sigma:g} adu)" in headers[0]["TDRDENOI"]
    assert "R=2sigma of the input uncertainty (per-pixel 0.5..0.5 adu)" in \
        headers[1]["TDRDENOI"]
    assert all("fill=ambient" in h["TDRDENOI"] for h in headers)


def test_per_pixel_array_R(model, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    frame = write_frame(raw / "f.fits", 3)
    R = np.full((40, 48), 0.5) * u.adu
    table = denoise_files([str(frame)], model, R=R, output_dir=tmp_path / "out",
                          progress=False, **FAST)
    assert table["status"][0] == "done"
    assert table.meta["R"] == "per-pixel array of shape (40, 48) in adu"
    ref = denoise_files([str(frame)], model, R=0.5 * u.adu, output_dir=tmp_path / "ref",
                        progress=False, **FAST)
    np.testing.assert_array_equal(fits.getdata(table["output"][0]),
                                  fits.getdata(ref["output"][0]))
    wrong = denoise_files([str(frame)], model, R=np.ones((3, 3)) * u.adu,
                          output_dir=tmp_path / "wrong", progress=False, **FAST)
    assert wrong["status"][0] == "failed"
    assert "R has shape (3, 3) but the image has shape (40, 48)" in wrong["error"][0]
