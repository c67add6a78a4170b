"""Tests of tdrdenoise.utils (atomic writes, stale temporaries, output claims) and of the
argument checks in tdrdenoise._validate."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u

from tdrdenoise._validate import check_int, check_seed, check_threshold
from tdrdenoise.io.files import host_name as _host
from tdrdenoise.utils import (OutputClaimedError, atomic_open, claim_output,
                              clean_stale_temporaries)

ROOT = Path(__file__).resolve().parents[1]
POSIX = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and pids")


def dead_pid():
    """The pid of a process of this machine that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def env():
    return {**os.environ, "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def test_atomic_open_names_its_writer(tmp_path, monkeypatch):
    seen = []
    with atomic_open(tmp_path / "out.bin") as fh:
        seen = [name for name in os.listdir(tmp_path)]
        fh.write(b"x")
    assert len(seen) == 1
    assert seen[0].startswith(f".out.bin.tdrdenoise-{os.getpid()}@{_host()}.")
    assert seen[0].endswith(".part")
    assert os.listdir(tmp_path) == ["out.bin"]


def test_atomic_open_exclusive(tmp_path):
    path = tmp_path / "out.bin"
    with pytest.raises(FileExistsError, match="another process"):
        with atomic_open(path, overwrite=False) as fh:
            fh.write(b"mine")
            path.write_bytes(b"theirs")  # another process got there first
    assert path.read_bytes() == b"theirs"
    assert os.listdir(tmp_path) == ["out.bin"]  # no temporary left
    with atomic_open(path) as fh:  # overwrite=True (the default) replaces it
        fh.write(b"mine")
    assert path.read_bytes() == b"mine"


def test_atomic_open_folder_is_a_file(tmp_path):
    (tmp_path / "out").write_text("a file")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        with atomic_open(tmp_path / "out" / "x.fits") as fh:
            fh.write(b"x")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        with atomic_open(tmp_path / "out" / "sub" / "x.fits") as fh:
            fh.write(b"x")


def test_atomic_open_permission_names_the_target(tmp_path, monkeypatch):
    """No permission in the folder: the message names the file asked for, not the
    hidden temporary."""
    import tempfile

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".out.fits.x.part"))

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    with pytest.raises(PermissionError) as info:
        with atomic_open(tmp_path / "out.fits") as fh:
            fh.write(b"x")
    message = str(info.value)
    assert message.startswith(f"cannot write {tmp_path / 'out.fits'}: no permission")
    assert "choose another folder" in message and ".part" not in message


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0,
                    reason="needs POSIX permissions that apply (not root)")
def test_atomic_open_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match=r"cannot write .*model\.tdr: no perm"):
            with atomic_open(folder / "model.tdr") as fh:
                fh.write(b"x")
    finally:
        folder.chmod(0o755)


@POSIX
def test_clean_stale_temporaries(tmp_path):
    host = _host()
    old = time.time() - 48 * 3600
    names = {
        f".a.fits.tdrdenoise-{dead_pid()}@{host}.abc_1234.part": True,   # writer dead
        f".b.fits.tdrdenoise-{os.getpid()}@{host}.abc_1234.part": False,  # writer alive
        f".c.fits.tdrdenoise-{os.getpid()}@{host}.abc_1234.part.old": False,  # not ours
        ".d.fits.tdrdenoise-12345@elsewhere.abc_1234.part": False,  # other host, recent
        ".e.fits.tdrdenoise-12345@elsewhere.abc_1234.part": True,   # other host, old
        "h.fits": False, ".hidden": False,                     # not temporaries
        ".i.fits.tdrdenoise.lock": True,                       # lock of a dead run
        ".j.fits.tdrdenoise.lock": False,                      # lock of a live run
        ".k.fits.tdrdenoise.lock": True,                       # of any machine, old
    }
    # not ours, whatever their age: other programs' files, unmarked older names
    foreign = [".pipeline.lock", ".notes.abcd1234.part", ".f.fits.abc_1234.part",
               f".g.fits.{dead_pid()}@{host}.abc_1234.part", ".x.fits.lock",
               ".y.fits.tdrdenoise.lock"]
    for name in list(names) + foreign:
        (tmp_path / name).write_bytes(b"data")
    (tmp_path / ".i.fits.tdrdenoise.lock").write_text(f"tdrdenoise {dead_pid()}@{host}\n")
    (tmp_path / ".j.fits.tdrdenoise.lock").write_text(f"tdrdenoise {os.getpid()}@{host}\n")
    (tmp_path / ".k.fits.tdrdenoise.lock").write_text("tdrdenoise 12345@elsewhere\n")
    (tmp_path / ".x.fits.lock").write_text(f"{dead_pid()}@{host}\n")  # unmarked name
    (tmp_path / ".y.fits.tdrdenoise.lock").write_text(f"{dead_pid()}@{host}\n")  # content
    for name in [".e.fits.tdrdenoise-12345@elsewhere.abc_1234.part",
                 ".k.fits.tdrdenoise.lock"] + foreign:
        os.utime(tmp_path / name, (old, old))
    removed = clean_stale_temporaries(tmp_path)
    expected = sorted(name for name, stale in names.items() if stale)
    assert sorted(os.path.basename(p) for p in removed) == expected
    assert sorted(os.listdir(tmp_path)) == sorted(
        [n for n, s in names.items() if not s] + foreign)
    assert clean_stale_temporaries(tmp_path / "missing") == []


@POSIX
def test_sigkill_mid_write_then_cleaned(tmp_path):
    """A writer killed outright leaves its temporary; the next clean removes it."""
    script = ("import sys, time\n"
              "from tdrdenoise.utils import atomic_open\n"
              "with atomic_open(sys.argv[1]) as fh:\n"
              "    fh.write(b'x' * 100000); fh.flush()\n"
              "    print('writing', flush=True)\n"
              "    time.sleep(60)\n")
    target = tmp_path / "out.fits"
    proc = subprocess.Popen([sys.executable, "-c", script, str(target)], env=env(),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.stdout.close()
    left = os.listdir(tmp_path)
    assert len(left) == 1 and left[0].endswith(".part") and not target.exists()
    assert clean_stale_temporaries(tmp_path) == [str(tmp_path / left[0])]
    assert os.listdir(tmp_path) == []


def test_claim_output(tmp_path):
    path = tmp_path / "out.fits"
    lock = tmp_path / ".out.fits.tdrdenoise.lock"
    with claim_output(path) as held:
        assert held == str(lock)
        assert lock.read_text() == f"tdrdenoise {os.getpid()}@{_host()}\n"
        assert sorted(os.listdir(tmp_path)) == [lock.name]  # no temporary left
        with pytest.raises(OutputClaimedError, match=rf"pid {os.getpid()} on"):
            with claim_output(path):
                pass
        assert lock.exists()  # the refused claim did not remove the lock
    assert not lock.exists()
    with pytest.raises(RuntimeError):
        with claim_output(path):
            raise RuntimeError("failed while claimed")
    assert not lock.exists()


@POSIX
def test_claim_output_stale_locks(tmp_path):
    path = tmp_path / "out.fits"
    lock = tmp_path / ".out.fits.tdrdenoise.lock"
    lock.write_text(f"tdrdenoise {dead_pid()}@{_host()}\n")  # a run killed while working
    with claim_output(path):
        assert lock.read_text().startswith(f"tdrdenoise {os.getpid()}@")
    # another machine's lock: live until it is older than max_age
    lock.write_text("tdrdenoise 12345@elsewhere\n")
    with pytest.raises(OutputClaimedError, match="pid 12345 on elsewhere"):
        with claim_output(path):
            pass
    os.utime(lock, (time.time() - 3600, time.time() - 3600))
    with claim_output(path, max_age=1800):
        pass
    # an empty lock is being written: stale only after a grace time
    lock.write_text("")
    with pytest.raises(OutputClaimedError):
        with claim_output(path):
            pass
    os.utime(lock, (time.time() - 600, time.time() - 600))
    with claim_output(path):
        pass
    assert os.listdir(tmp_path) == []
    # a lock of that name that tdrdenoise did not write is never removed, however old
    lock.write_text("held by the archive mover\n")
    os.utime(lock, (time.time() - 30 * 86400, time.time() - 30 * 86400))
    with pytest.raises(OutputClaimedError, match="another program .* not tdrdenoise's"):
        with claim_output(path):
            pass
    assert lock.read_text() == "held by the archive mover\n"


@pytest.mark.parametrize("code, kind, match", [
    (30, OSError, "is on a read-only file system; choose another folder"),   # EROFS
    (1, PermissionError, "no permission to create files in the folder"),     # EPERM
    (13, PermissionError, "no permission to create files in the folder"),    # EACCES
])
def test_unwritable_folder_names_the_target(tmp_path, monkeypatch, code, kind, match):
    """A read-only mount or a folder without permission: atomic_open and claim_output
    name the file asked for and its folder, never the hidden temporary."""
    import errno
    import tempfile

    def refused(*args, **kwargs):
        raise OSError(code, os.strerror(code), str(tmp_path / ".x.tdrdenoise-1@h.y.part"))

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    target = tmp_path / "out.fits"
    for attempt in (lambda: atomic_open(target), lambda: claim_output(target)):
        with pytest.raises(kind) as info:
            with attempt():
                pass
        message = str(info.value)
        assert type(info.value) is kind and info.value.errno in (None, errno.EROFS)
        assert f"{target}: " in message and match in message
        assert str(tmp_path) in message and ".part" not in message


def test_other_mkstemp_errors_pass_through(tmp_path, monkeypatch):
    import tempfile

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "mkstemp", full)
    with pytest.raises(OSError, match="No space left on device"):
        with atomic_open(tmp_path / "out.fits"):
            pass


@POSIX
def test_long_output_names(tmp_path):
    """A name close to the 255-byte limit: the lock, its temporary and the output's
    temporary all fit (the lock temporary is short, ``.tdrdenoise-<pid>@<host>.*.part``)."""
    name = "x" * 240 + ".fits"
    target = tmp_path / name
    with claim_output(target) as lock:
        lock_name = os.path.basename(lock)
        assert len(lock_name) <= 255 and lock_name.endswith(".tdrdenoise.lock")
        assert lock_name.startswith("." + "x" * 200)
        with atomic_open(target) as fh:
            fh.write(b"data")
        assert sorted(os.listdir(tmp_path)) == sorted([name, lock_name])
    assert os.listdir(tmp_path) == [name] and target.read_bytes() == b"data"
    with claim_output(target) as again:  # the same lock name for every run
        assert again == lock


@POSIX
def test_short_lock_temporaries_are_cleaned(tmp_path):
    """The lock temporaries carry the mark without the output name: those of dead
    runs are removed, those of live runs and unmarked ones are kept."""
    host = _host()
    dead = f".tdrdenoise-{dead_pid()}@{host}.abc_1234.part"
    live = f".tdrdenoise-{os.getpid()}@{host}.abc_1234.part"
    foreign = [".tdrdenoise.part", ".tdrdenoise-write-test-abc", ".tdrdenoise-x@h.a.part"]
    for n in [dead, live] + foreign:
        (tmp_path / n).write_bytes(b"tdrdenoise 1@h\n")
    removed = clean_stale_temporaries(tmp_path)
    assert [os.path.basename(p) for p in removed] == [dead]
    assert sorted(os.listdir(tmp_path)) == sorted([live] + foreign)


# --------------------------------------------------------------------------- validators
@pytest.mark.parametrize("value, minimum, expected", [
    (3, 1, 3), (np.int64(3), 1, 3), (2.0, 1, 2), (0, 0, 0), (-5, None, -5)])
def test_check_int(value, minimum, expected):
    result = check_int(value, "n", minimum=minimum)
    assert result == expected and type(result) is int


@pytest.mark.parametrize("value, error, match", [
    (True, TypeError, "n_predictions must be an integer >= 1; got the bool"),
    ("3", TypeError, "n_predictions must be .* got str"),
    (None, TypeError, "n_predictions"),
    (2.9, ValueError, "n_predictions .* not a whole number"),
    (float("inf"), ValueError, "n_predictions"),
    (0, ValueError, "n_predictions must be an integer >= 1; got 0")])
def test_check_int_errors(value, error, match):
    with pytest.raises(error, match=match):
        check_int(value, "n_predictions", minimum=1)


@pytest.mark.parametrize("seed", [None, 0, 42, np.uint32(7), 2**63 - 1, 5.0])
def test_check_seed(seed):
    result = check_seed(seed)
    assert result == seed and (result is None or type(result) is int)


@pytest.mark.parametrize("seed, error", [
    (-1, ValueError), (2**63, ValueError), (2**70, ValueError), (1.5, ValueError),
    (True, TypeError), ("1", TypeError)])
def test_check_seed_errors(seed, error):
    with pytest.raises(error, match=r"seed must be an integer with 0 <= seed < 2\*\*63"):
        check_seed(seed)


@pytest.mark.parametrize("R", [0, 5, 2.5, np.inf, np.float32(1), np.array(3.0), 5 * u.G,
                               np.inf * u.adu])
def test_check_threshold(R):
    assert check_threshold(R) is R


def test_check_threshold_takes_per_pixel_arrays():
    # per-pixel R (issue 25): arrays and array Quantities pass; their shape is checked
    # against the image's by threshold_value
    for R in ([1, 2], np.array([1.0, 2.0]), [1, 2] * u.G):
        assert check_threshold(R) is R


@pytest.mark.parametrize("R, error", [
    (True, TypeError), ("5", TypeError), (None, TypeError), (-1, ValueError),
    (np.nan, ValueError), (-1 * u.G, ValueError)])
def test_check_threshold_errors(R, error):
    with pytest.raises(error, match="^R "):
        check_threshold(R)
