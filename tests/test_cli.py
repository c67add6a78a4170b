"""Tests of the tdrdenoise command line, in-process through main()."""
import argparse
import inspect
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits

from tdrdenoise import cli
from tdrdenoise.cli import main, parse_R
from tdrdenoise.restore import NoiseMultiple

TINY = ["--device", "cpu", "--seed", "0"]
FAST = ["--fine-tune-steps", "1", "--n-predictions", "2"]


def write_frame(path, seed, shape=(40, 40), bunit="count / s"):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    data = (np.cos(yy / 4.0) + rng.normal(0, 0.3, shape)).astype(np.float32)
    header = fits.Header({"OBJECT": "NGC 1365", "FILTER": "F555W", "EXPTIME": 10.0})
    if bunit:
        header["BUNIT"] = bunit
    fits.PrimaryHDU(data, header).writeto(path)
    return str(path)


_HELP_WITHOUT_TORCH = """
import contextlib, io, runpy, sys
from tdrdenoise.cli import main
for argv in {argv!r}:
    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = main(argv)
    assert code == 0 and "usage: tdrdenoise" in out.getvalue(), (argv, code)
sys.argv = ["tdrdenoise", "--help"]  # python -m tdrdenoise --help
with contextlib.redirect_stdout(io.StringIO()) as out:
    try:
        runpy.run_module("tdrdenoise", run_name="__main__")
    except SystemExit as exc:
        assert exc.code == 0, exc.code
assert "usage: tdrdenoise" in out.getvalue()
assert "torch" not in sys.modules, "the command line's --help imported torch"
print("no torch")
"""


def test_help_does_not_import_torch():
    """--help (of the command and of each subcommand) and --version load no torch: the
    commands import the network code only when they run."""
    argv = [["--help"]] + [[c, "--help"] for c in
                           ("train", "denoise", "restore", "evaluate", "demo")]
    script = _HELP_WITHOUT_TORCH.format(argv=argv)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, env=subprocess_env())
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "no torch"


def test_cli_defaults_match_the_code():
    """The parser's defaults come from _defaults.py (no torch), the one place that
    defines them; the prediction code uses the same values."""
    from tdrdenoise import _defaults, model
    from tdrdenoise.prediction import pipeline

    assert pipeline.DEFAULT_N_PREDICTIONS is _defaults.DEFAULT_N_PREDICTIONS
    assert model.DEFAULT_STEPS == _defaults.DEFAULT_STEPS


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(folder, model path, frames) after a 'tdrdenoise train' run."""
    folder = tmp_path_factory.mktemp("cli")
    frames = [write_frame(folder / f"obs{i}.fits", i) for i in (1, 2, 3)]
    model = str(folder / "model.tdr")
    code = main(["train", frames[0], "-o", model, "--steps", "2", "--patch-size", "32",
                 "--batch-size", "2", "--quiet"] + TINY)
    assert code == 0
    return folder, model, frames


@pytest.mark.parametrize("text, expected", [
    ("5", 5.0), ("5G", 5 * u.G), ("5 G", 5 * u.G), ("0.3 ct/s", 0.3 * u.ct / u.s),
    ("inf", np.inf), (" 2.5e-1 ", 0.25), ("0", 0.0),
    ("3sigma", NoiseMultiple(3)), ("2.5 sigma", NoiseMultiple(2.5)),
    ("sigma", NoiseMultiple(1)), ("0SIGMA", NoiseMultiple(0))])
def test_parse_R(text, expected):
    value = parse_R(text)
    assert type(value) is type(expected)
    assert value == expected


@pytest.mark.parametrize("text", ["abc", "-1", "-1 G", "nan", "5 furlongs", "-3sigma",
                                  "xsigma", "nansigma"])
def test_parse_R_errors(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_R(text)


def test_help_and_usage(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("train", "denoise", "evaluate", "demo"):
        assert command in out
    for command in ("train", "denoise", "evaluate", "demo"):
        assert main([command, "--help"]) == 0
        out = capsys.readouterr().out
        assert "--quiet" in out and "--device" in out
    assert main([]) == 2
    assert main(["denoise", "--model", "m.tdr", "a.fits", "--R", "five"]) == 2
    assert "cannot read 'five'" in capsys.readouterr().err
    assert main(["--version"]) == 0


def test_train(trained, capsys):
    folder, model, frames = trained
    assert os.path.isfile(model)
    # an existing model is not replaced without --overwrite
    assert main(["train", frames[0], "-o", model, "--steps", "1"] + TINY) == 1
    err = capsys.readouterr().err
    assert "exists" in err and "--overwrite" in err and "Traceback" not in err
    assert main(["train", frames[0], "-o", model, "--steps", "1", "--patch-size", "32",
                 "--batch-size", "2", "--overwrite"] + TINY) == 0
    out = capsys.readouterr().out
    assert "Training on" in out and "Saved" in out
    # what the noise detection found is printed
    assert "Detected: white noise" in out and "pixel shuffle 1" in out
    # and can be overridden
    assert main(["train", frames[0], "-o", model, "--steps", "1", "--patch-size", "32",
                 "--batch-size", "2", "--overwrite", "--impulse-noise", "yes",
                 "--pixel-shuffle", "1"] + TINY) == 0
    assert "Detected: impulse" in capsys.readouterr().out
    from tdrdenoise import TDRModel
    assert TDRModel.load(model).normalization["impulse_noise"] is True
    assert main(["train", frames[0], "-o", model, "--impulse-noise", "maybe"]) == 2
    assert "auto, yes or no" in capsys.readouterr().err
    assert main(["train", frames[0], "-o", model, "--pixel-shuffle", "7"]) == 2


def test_denoise_round_trip(trained, capsys, tmp_path):
    folder, model, frames = trained
    bad = tmp_path / "bad.fits"
    bad.write_text("garbage")
    out_dir = tmp_path / "out"
    args = ["denoise", "--model", model, frames[1], str(bad), frames[2], "--R", "0.3 ct/s",
            "--output-dir", str(out_dir)] + FAST + TINY
    before = [open(f, "rb").read() for f in frames]
    assert main(args) == 1  # one file failed
    captured = capsys.readouterr()
    assert "2 done, 0 skipped, 1 failed" in captured.out
    assert "bad.fits" in captured.err and "Traceback" not in captured.err
    assert sorted(os.listdir(out_dir)) == ["obs2_tdr.fits", "obs3_tdr.fits"]
    assert [open(f, "rb").read() for f in frames] == before
    with fits.open(out_dir / "obs2_tdr.fits") as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "MASK", "UNCERT"]
        header = hdul[0].header
        for key in ("OBJECT", "FILTER", "EXPTIME"):
            assert key in header
        assert "R=0.3 ct / s" in header["TDRDENOI"] and "TDRRFRAC" in header
    # re-run on the good files: everything is skipped, exit 0
    assert main(args[:4] + [frames[2]] + args[6:]) == 0
    assert "0 done, 2 skipped, 0 failed" in capsys.readouterr().out
    # --quiet prints nothing on success
    assert main(args[:4] + [frames[2]] + args[6:] + ["--quiet"]) == 0
    assert capsys.readouterr().out == ""


def test_no_calibrate_no_refine(trained, tmp_path):
    """--no-calibrate and --no-refine reach tdr_denoise and are recorded in the header."""
    folder, model, frames = trained
    for flag, name in (([], "on"), (["--no-calibrate"], "off"), (["--no-refine"], "raw")):
        assert main(["denoise", "--model", model, frames[1], "-o", str(tmp_path / name),
                     "-q"] + flag + FAST + TINY) == 0
    with fits.open(tmp_path / "on" / "obs2_tdr.fits") as on, \
            fits.open(tmp_path / "off" / "obs2_tdr.fits") as off, \
            fits.open(tmp_path / "raw" / "obs2_tdr.fits") as raw:
        assert "calibrate" not in on[0].header["TDRDENOI"]
        assert "refine" not in on[0].header["TDRDENOI"]
        assert "calibrate=False" in off[0].header["TDRDENOI"]
        assert "refine=False" in raw[0].header["TDRDENOI"]
        assert not np.array_equal(on[0].data, raw[0].data)


def test_dtype_option(trained, capsys, tmp_path):
    """--dtype input (the default) keeps float64 exact at --R 0; float32 only on request."""
    folder, model, frames = trained
    data = 1e8 + np.random.default_rng(3).normal(0, 1, (40, 40))
    data[0, :3] = [1 + 2.0 ** -40, 16777217.0, 1e39]
    path = tmp_path / "f64.fits"
    fits.PrimaryHDU(data, fits.Header({"BUNIT": "count / s"})).writeto(path)
    assert main(["denoise", "--model", model, str(path), "--R", "0", "-o",
                 str(tmp_path / "a"), "-q"] + FAST + TINY) == 0
    out = fits.getdata(tmp_path / "a" / "f64_tdr.fits")
    assert out.dtype == np.dtype(">f8")
    np.testing.assert_array_equal(out, data)
    # float32 would turn 1e39 into inf: the file fails with a message saying so
    assert main(["denoise", "--model", model, str(path), "--R", "0", "--dtype", "float32",
                 "-o", str(tmp_path / "b"), "-q"] + FAST + TINY) == 1
    err = capsys.readouterr().err
    assert "inf" in err and "--dtype input" in err
    assert not (tmp_path / "b" / "f64_tdr.fits").exists()


def test_denoise_errors(trained, capsys, tmp_path):
    folder, model, frames = trained
    # R in a unit that does not match the model's images
    assert main(["denoise", "--model", model, frames[1], "--R", "5G",
                 "-o", str(tmp_path)] + TINY) == 1
    assert "cannot be converted" in capsys.readouterr().err
    # missing model, missing inputs: one line each, no traceback
    assert main(["denoise", "--model", str(tmp_path / "nope.tdr"), frames[1]] + TINY) == 1
    err = capsys.readouterr().err
    assert "no model file" in err and "Traceback" not in err
    assert main(["denoise", "--model", model, str(tmp_path / "nope.fits")] + TINY) == 1
    assert "no such file" in capsys.readouterr().err
    # a bare number is in the image unit; outputs go next to the inputs by default
    src = write_frame(tmp_path / "obs9.fits", 9)
    assert main(["denoise", "--model", model, src, "--R", "0.3", "-q"] + FAST + TINY) == 0
    assert os.path.isfile(tmp_path / "obs9_tdr.fits")


def test_denoise_on_local_cluster(trained, tmp_path):
    pytest.importorskip("distributed")
    folder, model, frames = trained
    out_dir = tmp_path / "dask"
    assert main(["denoise", "--model", model, frames[1], frames[2], "-o", str(out_dir),
                 "--workers", "1", "-q"] + FAST + TINY) == 0
    assert sorted(os.listdir(out_dir)) == ["obs2_tdr.fits", "obs3_tdr.fits"]


def test_evaluate(trained, capsys, tmp_path):
    pytest.importorskip("tdrdenoise.metrics")
    folder, model, frames = trained
    out_dir = tmp_path / "ev"
    assert main(["denoise", "--model", model, frames[1], "-o", str(out_dir), "-q",
                 "--R", "0.3 ct/s"] + FAST + TINY) == 0
    denoised = str(out_dir / "obs2_tdr.fits")
    assert main(["evaluate", frames[1], denoised, "--independent", frames[2]]) == 0
    out = capsys.readouterr().out
    assert "noise_initial" in out and "mse_n2n" in out
    # the restored pixels (in the output's MASK) are scored: every pixel counts
    n_pixels = fits.getdata(frames[1]).size
    assert f"; {n_pixels} pixels):" in out
    header = fits.getheader(denoised)
    assert "TDRDENOI" in header and 0 < header["TDRRFRAC"] < 1
    fraction = float(next(line for line in out.splitlines()
                          if line.split()[:1] == ["restored_fraction"]).split()[1])
    assert fraction == pytest.approx(header["TDRRFRAC"], abs=1e-5)
    assert main(["evaluate", frames[1], denoised, "--reference", frames[2], "-q"]) == 0
    assert capsys.readouterr().out == ""
    pytest.importorskip("matplotlib")
    figure = tmp_path / "fig.png"
    assert main(["evaluate", frames[1], denoised, "--plot", str(figure)]) == 0
    assert figure.stat().st_size > 0
    assert main(["evaluate", frames[1], str(tmp_path / "missing.fits")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_hdu_and_unit_options(tmp_path, capsys):
    path = tmp_path / "ext.fits"
    data = np.random.default_rng(0).normal(size=(40, 40)).astype(np.float32)
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, name="SCI")]).writeto(path)
    model = str(tmp_path / "m.tdr")
    assert main(["train", str(path), "-o", model, "--hdu", "SCI", "--unit", "electron",
                 "--steps", "1", "--patch-size", "32", "--batch-size", "2"] + TINY) == 0
    assert "unit electron" in capsys.readouterr().out
    assert main(["train", str(path), "-o", model, "--hdu", "0", "--steps", "1",
                 "--overwrite"] + TINY) == 1
    assert "not a 2-D image" in capsys.readouterr().err


def test_demo_command(monkeypatch, tmp_path):
    calls = {}

    def fake_run_demo(**kwargs):
        calls.update(kwargs)
        return {}

    monkeypatch.setattr("tdrdenoise.demo.run_demo", fake_run_demo)
    assert main(["demo", "--steps", "7", "-o", str(tmp_path), "--quiet", "--device", "cpu",
                 "--seed", "3"]) == 0
    assert calls["steps"] == 7 and calls["quiet"] and calls["progress"] is False
    assert calls["device"] == "cpu" and calls["seed"] == 3
    assert calls["output_dir"] == str(tmp_path)


def test_interrupt(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli._COMMANDS, "demo", interrupted)
    assert main(["demo"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_global_options_before_command(monkeypatch):
    seen = {}

    def record(args):
        seen.update(vars(args))
        return 0

    monkeypatch.setitem(cli._COMMANDS, "demo", record)
    assert main(["--quiet", "--device", "cpu", "--seed", "5", "demo"]) == 0
    assert seen["quiet"] and seen["device"] == "cpu" and seen["seed"] == 5
    assert main(["demo"]) == 0
    assert not seen["quiet"] and seen["device"] == "auto" and seen["seed"] is None


def test_python_m_help():
    result = subprocess.run([sys.executable, "-m", "tdrdenoise", "--help"],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0
    assert "usage: tdrdenoise" in result.stdout and "denoise" in result.stdout


ROOT = Path(__file__).resolve().parents[1]


def subprocess_env():
    return {**os.environ, "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.parametrize("extra, match", [
    (["--n-predictions", "0"], "--n-predictions: expected an integer of at least 1"),
    (["--tile-size", "0"], "--tile-size: expected an integer of at least 1"),
    (["--seed", "-1"], r"--seed must be an integer with 0 <= --seed < 2\*\*63; got -1"),
    (["--seed", str(2**70)], r"--seed must be an integer with 0 <= --seed < 2\*\*63"),
    (["--seed", "1.5"], "the seed must be an integer"),
])
def test_denoise_usage_errors(capsys, extra, match):
    assert main(["denoise", "--model", "m.tdr", "a.fits"] + extra) == 2
    assert re.search(match, capsys.readouterr().err)


def test_quiet_on_every_command():
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert set(commands) == set(cli._COMMANDS)
    for name, sub in commands.items():
        assert "--quiet" in sub._option_string_actions, name
        assert sub.parse_args(([] if name in ("demo",) else {
            "train": ["i.fits", "-o", "m.tdr"], "denoise": ["-m", "m.tdr", "f.fits"],
            "evaluate": ["a.fits", "b.fits"],
            "restore": ["d.fits", "i.fits", "--R", "1", "-o", "o.fits"]}[name])
            + ["--quiet"]).quiet


def test_output_dir_is_a_file(trained, capsys, tmp_path):
    folder, model, frames = trained
    not_a_dir = tmp_path / "out"
    not_a_dir.write_text("a file")
    assert main(["denoise", "--model", model, frames[1], "-o", str(not_a_dir)]
                + FAST + TINY) == 1
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and "Errno" not in err


def test_train_output_folder_is_a_file(trained, capsys, tmp_path, monkeypatch):
    folder, model, frames = trained
    (tmp_path / "models").write_text("a file")
    monkeypatch.setattr("tdrdenoise.model.TDRModel.fit",
                        lambda *a, **k: pytest.fail("trained before checking the output"))
    assert main(["train", frames[0], "-o", str(tmp_path / "models" / "m.tdr")] + TINY) == 1
    err = capsys.readouterr().err
    assert "the folder of --output" in err and "is a file, not a folder" in err


def test_train_checkpoint_options(trained, monkeypatch, tmp_path, capsys):
    from tdrdenoise.model import TDRModel

    folder, model, frames = trained
    real_fit = TDRModel.fit
    calls = []

    def fit(self, image, steps=10, seed=None, learning_rate=None, progress=None,
            checkpoint=None, checkpoint_every=None, distil_steps=None):
        calls.append({"checkpoint": checkpoint, "checkpoint_every": checkpoint_every})
        return real_fit(self, image, steps=steps, seed=seed, progress=progress,
                        distil_steps=distil_steps)

    monkeypatch.setattr(TDRModel, "fit", fit)
    base = ["train", frames[0], "--steps", "1", "--patch-size", "32", "--batch-size", "2",
            "-q"] + TINY
    ckpt = str(tmp_path / "ckpt" / "state.pt")
    assert main(base + ["-o", str(tmp_path / "a.tdr"), "--checkpoint", ckpt,
                        "--checkpoint-every", "5"]) == 0
    assert calls[-1] == {"checkpoint": ckpt, "checkpoint_every": 5}
    assert main(base + ["-o", str(tmp_path / "b.tdr"), "--checkpoint", ckpt]) == 0
    assert calls[-1] == {"checkpoint": ckpt, "checkpoint_every": None}
    # --checkpoint-every alone is a usage error, found before training
    assert main(base + ["-o", str(tmp_path / "c.tdr"), "--checkpoint-every", "5"]) == 2
    assert "--checkpoint-every needs --checkpoint" in capsys.readouterr().err
    assert len(calls) == 2
    assert main(base + ["-o", str(tmp_path / "d.tdr"), "--checkpoint", "x",
                        "--checkpoint-every", "0"]) == 2
    # a fit without checkpoints: a clear error, not a TypeError after loading the image
    monkeypatch.setattr(TDRModel, "fit", lambda self, image, steps=1, seed=None,
                        progress=None: pytest.fail("trained"))
    assert main(base + ["-o", str(tmp_path / "e.tdr"), "--checkpoint", ckpt]) == 1
    assert "TDRModel.fit takes checkpoint=" in capsys.readouterr().err


def test_train_checkpoint_real(trained, tmp_path):
    from tdrdenoise.model import TDRModel

    if "checkpoint" not in inspect.signature(TDRModel.fit).parameters:
        pytest.skip("TDRModel.fit takes no checkpoint= in this version")
    folder, model, frames = trained
    ckpt = tmp_path / "state.ckpt"
    assert main(["train", frames[0], "-o", str(tmp_path / "m.tdr"), "--steps", "4",
                 "--patch-size", "32", "--batch-size", "2", "--checkpoint", str(ckpt),
                 "--checkpoint-every", "2", "-q"] + TINY) == 0
    assert (tmp_path / "m.tdr").is_file()


def test_train_failed_save_keeps_the_model(trained, tmp_path, capsys, monkeypatch):
    """The output appears during the training: the model is saved beside it instead,
    with a message saying where, and the other file is not replaced."""
    import tdrdenoise.model_io as model_io
    from tdrdenoise import TDRModel

    folder, model, frames = trained
    out = tmp_path / "m.tdr"
    real = model_io.to_bytes

    def racing(model):
        if not out.exists():
            out.write_bytes(b"written by someone else")
        return real(model)

    monkeypatch.setattr(model_io, "to_bytes", racing)
    args = ["train", frames[0], "-o", str(out), "--steps", "2", "--patch-size", "32",
            "--batch-size", "2", "--checkpoint", str(tmp_path / "state.ckpt"),
            "-q"] + TINY
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"cannot save the model to {out}" in err and "saved to" in err
    assert out.read_bytes() == b"written by someone else"
    rescued = [p for p in tmp_path.iterdir() if p.name.startswith("m.unsaved-")]
    assert len(rescued) == 1 and str(rescued[0]) in err
    assert TDRModel.load(rescued[0], device="cpu").is_fitted
    assert not (tmp_path / "state.ckpt").exists()  # the model itself was saved


def test_train_no_save_possible_keeps_the_checkpoint(trained, tmp_path, capsys,
                                                     monkeypatch):
    import tdrdenoise.model_io as model_io

    folder, model, frames = trained

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(model_io, "atomic_open", full)
    ckpt = tmp_path / "state.ckpt"
    assert main(["train", frames[0], "-o", str(tmp_path / "m.tdr"), "--steps", "2",
                 "--patch-size", "32", "--batch-size", "2", "--checkpoint", str(ckpt),
                 "-q"] + TINY) == 1
    err = capsys.readouterr().err
    assert "No space left" in err and f"the checkpoint {ckpt} is kept" in err
    assert ckpt.is_file()
    monkeypatch.undo()
    # the same command then resumes from the finished state (saying so) and saves it
    from tdrdenoise import TDRUserWarning
    with pytest.warns(TDRUserWarning, match="finished, unsaved training .*resumed, not "
                                            "trained again"):
        assert main(["train", frames[0], "-o", str(tmp_path / "m.tdr"), "--steps", "2",
                     "--patch-size", "32", "--batch-size", "2", "--checkpoint", str(ckpt),
                     "-q"] + TINY) == 0
    assert (tmp_path / "m.tdr").is_file() and not ckpt.exists()


def test_train_on_several_images(trained, tmp_path, capsys):
    from tdrdenoise import TDRModel

    folder, model, frames = trained
    out = tmp_path / "series.tdr"
    assert main(["train", frames[0], frames[1], frames[2], "-o", str(out), "--steps", "2",
                 "--patch-size", "32", "--batch-size", "2"] + TINY) == 0
    assert "and 2 more image(s)" in capsys.readouterr().out
    loaded = TDRModel.load(out)
    assert loaded.history[-1]["images"] == 3
    # one of them unreadable: a clear error naming the file, nothing written
    bad = tmp_path / "bad.fits"
    bad.write_text("not FITS")
    assert main(["train", frames[0], str(bad), "-o", str(tmp_path / "x.tdr"), "--steps",
                 "1"] + TINY) == 1
    assert "bad.fits" in capsys.readouterr().err
    assert not (tmp_path / "x.tdr").exists()


def _start(script, args, **kwargs):
    return subprocess.Popen([sys.executable, "-c", script] + args, env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kwargs)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signame, code", [("SIGTERM", 143), ("SIGHUP", 129)])
def test_signal_during_write_cleans_up(trained, tmp_path, signame, code):
    """SIGTERM/SIGHUP while an output is being written: no temporary, no lock left."""
    folder, model, frames = trained
    out_dir = tmp_path / "out"
    # the run hangs while writing its first output, as a large file would
    script = ("import sys, time\n"
              "from astropy.io import fits\n"
              "from tdrdenoise.cli import main\n"
              "def slow_write(self, fileobj, **kwargs):\n"
              "    fileobj.write(b'x' * 2880); fileobj.flush()\n"
              "    print('writing', flush=True)\n"
              "    time.sleep(120)\n"
              "fits.HDUList.writeto = slow_write\n"
              "sys.exit(main(sys.argv[1:]))\n")
    proc = _start(script, ["denoise", "--model", model, frames[1], frames[2], "-o",
                           str(out_dir), "-q"] + FAST + TINY)
    try:
        assert proc.stdout.readline().strip() == "writing"
        assert any(name.endswith(".part") for name in os.listdir(out_dir))
        proc.send_signal(getattr(signal, signame))
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert f"terminated ({signame})" in err and "Traceback" not in err
    assert os.listdir(out_dir) == []  # no .part, no .lock, no output


def test_concurrent_cli_runs(trained, tmp_path):
    """Two 'tdrdenoise denoise' runs on the same files split them; both exit 0."""
    folder, model, frames = trained
    inputs = [write_frame(tmp_path / f"obs{i}.fits", 20 + i) for i in range(6)]
    out_dir = tmp_path / "out"
    go = tmp_path / "go"
    script = ("import os, sys, time\n"
              "from tdrdenoise.cli import main\n"
              "print('ready', flush=True)\n"
              "while not os.path.exists(sys.argv[1]):\n"
              "    time.sleep(0.01)\n"
              "sys.exit(main(sys.argv[2:]))\n")
    args = [str(go), "denoise", "--model", model, "-o", str(out_dir), "--fine-tune-steps",
            "2", "--n-predictions", "4"] + TINY + inputs
    procs = [_start(script, args) for _ in range(2)]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready"
        go.write_text("")
        results = [proc.communicate(timeout=300) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    done = []
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode == 0, err
        assert "0 failed" in out
        done += [line.split()[1] for line in out.splitlines()
                 if line.strip().startswith("done ")]
    assert sorted(done) == sorted(inputs)  # each file denoised exactly once
    assert sorted(os.listdir(out_dir)) == [f"obs{i}_tdr.fits" for i in range(6)]


# ------------------------------------------------------------------ issue 25
@pytest.fixture(scope="module")
def denoised_inf(trained, tmp_path_factory):
    """(denoised file at R=inf, its input) from 'tdrdenoise denoise'."""
    folder, model, frames = trained
    out = tmp_path_factory.mktemp("inf")
    assert main(["denoise", "--model", model, frames[1], "-o", str(out), "--quiet"]
                + TINY + FAST) == 0
    return str(out / "obs2_tdr.fits"), frames[1]


def test_denoise_sigma_and_fill(trained, tmp_path):
    folder, model, frames = trained
    assert main(["denoise", "--model", model, frames[1], "--R", "2sigma", "--fill",
                 "ambient", "-o", str(tmp_path), "--quiet"] + TINY + FAST) == 0
    header = fits.getheader(tmp_path / "obs2_tdr.fits")
    assert "R=2sigma of the model noise (" in header["TDRDENOI"]
    assert "fill=ambient" in header["TDRDENOI"]


@pytest.mark.parametrize("R, fill", [("0.3 ct/s", "initial"), ("0.3", "ambient"),
                                     ("2sigma", "initial")])
def test_restore_matches_denoise(trained, denoised_inf, tmp_path, R, fill):
    """'restore' on the R=inf file gives what 'denoise --R' gives, without the network."""
    folder, model, frames = trained
    den, initial = denoised_inf
    before = {p: open(p, "rb").read() for p in (den, initial)}
    direct = tmp_path / "direct"
    assert main(["denoise", "--model", model, initial, "--R", R, "--fill", fill,
                 "-o", str(direct), "--quiet"] + TINY + FAST) == 0
    out = str(tmp_path / "again.fits")
    # --model: the noise of restored pixels (and sigma) is the model's, as in 'denoise'
    assert main(["restore", den, initial, "--R", R, "--fill", fill, "-o", out, "--quiet",
                 "--model", model]) == 0
    with fits.open(direct / "obs2_tdr.fits") as a, fits.open(out) as b:
        # float32 files: the same values to float32 rounding
        np.testing.assert_allclose(b[0].data, a[0].data, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(b["MASK"].data, a["MASK"].data)
        np.testing.assert_allclose(b["UNCERT"].data, a["UNCERT"].data, rtol=1e-6, atol=1e-6)
        assert b[0].header["TDRRFRAC"] == pytest.approx(a[0].header["TDRRFRAC"], abs=1e-6)
        record = b[0].header["TDRRESTO"]
        assert f"fill={fill}" in record and "denoised=obs2_tdr.fits" in record
        assert "input=obs2.fits" in record
        assert b[0].header["HIERARCH TDR_RESTORE"] == "TDRRESTO"
        assert b[0].header["OBJECT"] == "NGC 1365"
    assert {p: open(p, "rb").read() for p in (den, initial)} == before


def test_restore_R0_is_the_input(denoised_inf, tmp_path, capsys):
    den, initial = denoised_inf
    out = str(tmp_path / "r0.fits")
    assert main(["restore", den, initial, "--R", "0", "-o", out]) == 0
    assert "Restored 100.00 % of the pixels" in capsys.readouterr().out
    data = fits.getdata(out)
    source = fits.getdata(initial)
    assert data.dtype == source.dtype
    np.testing.assert_array_equal(data, source)


def test_restore_sigma_from_uncert_extension(denoised_inf, tmp_path, capsys):
    from astropy.nddata import CCDData
    den, initial = denoised_inf
    ccd = CCDData.read(initial)
    ccd.uncertainty = np.full(ccd.shape, 0.1, np.float32)
    with_unc = str(tmp_path / "with_unc.fits")
    ccd.write(with_unc)
    out = str(tmp_path / "s.fits")
    assert main(["restore", den, with_unc, "--R", "3sigma", "-o", out]) == 0
    assert "the input uncertainty" in capsys.readouterr().out
    record = fits.getheader(out)["TDRRESTO"]
    assert "R=3sigma of the input uncertainty (per-pixel 0.3..0.3 ct / s)" in record
    ref = str(tmp_path / "ref.fits")
    assert main(["restore", den, initial, "--R", "0.3 ct/s", "-o", ref, "--quiet"]) == 0
    np.testing.assert_array_equal(fits.getdata(out, "MASK"), fits.getdata(ref, "MASK"))
    # without UNCERT nor --model: the noise measured on the input
    assert main(["restore", den, initial, "--R", "3sigma", "-o", str(tmp_path / "m.fits")]) == 0
    assert "the noise measured on the input" in capsys.readouterr().out


def test_restore_refusals(denoised_inf, trained, tmp_path, capsys):
    folder, model, frames = trained
    den, initial = denoised_inf
    out = str(tmp_path / "o.fits")
    assert main(["restore", den, initial, "--R", "0.3", "-o", out, "--quiet"]) == 0
    first = open(out, "rb").read()
    # an existing output is kept without --overwrite
    assert main(["restore", den, initial, "--R", "0.1", "-o", out]) == 1
    assert "exists; pass overwrite=True (--overwrite)" in capsys.readouterr().err
    assert open(out, "rb").read() == first
    assert main(["restore", den, initial, "--R", "0.1", "-o", out, "--overwrite",
                 "--quiet"]) == 0
    assert open(out, "rb").read() != first
    # never its inputs, even with --overwrite
    for target in (den, initial):
        assert main(["restore", den, initial, "--R", "0.1", "-o", target,
                     "--overwrite"]) == 1
        assert "it is an input file" in capsys.readouterr().err
    # a file restored already cannot be restored with another R
    assert main(["restore", out, initial, "--R", "0.5", "-o", str(tmp_path / "x.fits")]) == 1
    err = capsys.readouterr().err
    assert "was restored already (R=0.1 ct / s)" in err and "R=inf" in err
    # shapes, units, R
    other = write_frame(tmp_path / "small.fits", 5, shape=(20, 20))
    assert main(["restore", den, other, "--R", "0.1", "-o", str(tmp_path / "y.fits")]) == 1
    assert "has shape (40, 40) but" in capsys.readouterr().err
    assert main(["restore", den, initial, "--R", "5G", "-o", str(tmp_path / "z.fits")]) == 1
    assert "cannot be converted" in capsys.readouterr().err
    assert main(["restore", den, initial, "--R", "-1", "-o", str(tmp_path / "z.fits")]) == 2
    assert main(["restore", den, initial, "--R", "1", "--fill", "mean", "-o",
                 str(tmp_path / "z.fits")]) == 2
    assert not os.path.exists(tmp_path / "z.fits")
