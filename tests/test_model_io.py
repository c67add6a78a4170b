"""Model files: round trips, checksums, metadata validation, old formats."""
import warnings

import numpy as np
import pytest
import torch
from astropy import units as u

from tdrdenoise import TDRModel, TDRUserWarning
from tdrdenoise.model_io import (FILE_FORMAT_VERSION, decode_payload, encode_payload,
                                 from_bytes, load, payload_checksum, save, to_bytes)


def read_payload(path):
    """The dict a format-4 model file holds."""
    return decode_payload(open(path, "rb").read())


def write_payload(payload, path):
    """Write ``payload`` as its format says: safetensors (4) or a torch archive (1-3)."""
    if isinstance(payload.get("format_version"), int) and payload["format_version"] < 4:
        torch.save(payload, path)
    else:
        with open(path, "wb") as fh:
            fh.write(encode_payload(payload))


def test_save_load_roundtrip(tmp_path, noisy, unit_model):
    path = tmp_path / "model.tdr"
    unit_model.save(path)
    loaded = TDRModel.load(path, device="cpu")
    assert loaded.fingerprint == unit_model.fingerprint
    assert loaded.unit == u.G
    assert loaded.normalization == unit_model.normalization
    assert loaded.history == unit_model.history
    assert loaded.path == str(path)
    a = unit_model.predict(noisy * u.G, n_predictions=2, seed=1, progress=False)[0]
    b = loaded.predict(noisy * u.G, n_predictions=2, seed=1, progress=False)[0]
    np.testing.assert_array_equal(a, b)
    assert [p.name for p in tmp_path.iterdir()] == ["model.tdr"]  # no temporary file left


def test_save_refuses_overwrite(tmp_path, tiny_model):
    path = tmp_path / "model.tdr"
    tiny_model.save(path)
    with pytest.raises(OSError, match="exists"):
        tiny_model.save(path)
    tiny_model.save(path, overwrite=True)


def test_save_exclusive_against_a_concurrent_writer(tmp_path, tiny_model, monkeypatch):
    """overwrite=False never replaces a file another process wrote meanwhile."""
    import tdrdenoise.model_io as model_io

    path = tmp_path / "model.tdr"
    real = model_io.to_bytes

    def racing(model):
        data = real(model)
        path.write_bytes(b"the other writer's model")  # after the existence check
        return data

    monkeypatch.setattr(model_io, "to_bytes", racing)
    with pytest.raises(FileExistsError, match="another process"):
        tiny_model.save(path)
    assert path.read_bytes() == b"the other writer's model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.tdr"]  # no temporary left


def test_save_into_unwritable_folder_names_the_target(tmp_path, tiny_model, monkeypatch):
    import tempfile

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".m.tdr.x.part"))

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    with pytest.raises(PermissionError, match=r"cannot write .*m\.tdr: no permission to "
                                              r"create files in the folder"):
        tiny_model.save(tmp_path / "m.tdr")


def test_save_removes_the_checkpoint_only_once_written(tmp_path, noisy, monkeypatch):
    import tdrdenoise.model_io as model_io

    ckpt = tmp_path / "train.ckpt"
    model = TDRModel(patch_size=32, batch_size=2, device="cpu").fit(
        noisy, steps=2, seed=0, progress=False, distil_steps=0, checkpoint=ckpt)
    assert ckpt.is_file()
    with monkeypatch.context() as patch:
        def full(*args, **kwargs):
            raise OSError(28, "No space left on device")
        patch.setattr(model_io, "atomic_open", full)
        with pytest.raises(OSError, match="No space left"):
            model.save(tmp_path / "model.tdr")
    assert ckpt.is_file() and not (tmp_path / "model.tdr").exists()
    model.save(tmp_path / "model.tdr")
    assert not ckpt.exists()
    assert TDRModel.load(tmp_path / "model.tdr").fingerprint == model.fingerprint


def test_save_untrained(tmp_path):
    with pytest.raises(RuntimeError, match="needs a trained model"):
        TDRModel(device="cpu").save(tmp_path / "m.tdr")


def test_load_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model file"):
        TDRModel.load(tmp_path / "nothing.tdr")


def test_load_corrupt(tmp_path, tiny_model):
    good = tmp_path / "good.tdr"
    tiny_model.save(good)
    bad = tmp_path / "bad.tdr"
    bad.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(ValueError, match="not a readable tdrdenoise model"):
        TDRModel.load(bad)
    text = tmp_path / "text.tdr"
    text.write_text("SIMPLE  =                    T")
    with pytest.raises(ValueError, match="not a readable tdrdenoise model"):
        TDRModel.load(text)


def _resave(src, dst, drop=(), checksum=True, **changes):
    """Rewrite a model file with changed metadata and, by default, a valid checksum."""
    payload = read_payload(src)
    payload.update(changes)
    for key in drop:
        del payload[key]
    if checksum:
        payload["checksum"] = payload_checksum(payload)
    write_payload(payload, dst)


def test_load_other_kind_of_file(tmp_path, tiny_model):
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ValueError, match="not a tdrdenoise model file"):
        TDRModel.load(path)


def test_load_newer_format(tmp_path, tiny_model):
    good = tmp_path / "good.tdr"
    tiny_model.save(good)
    newer = tmp_path / "newer.tdr"
    _resave(good, newer, format_version=FILE_FORMAT_VERSION + 1, tdrdenoise_version="9.0")
    with pytest.raises(ValueError, match="upgrade tdrdenoise"):
        TDRModel.load(newer)


def test_load_mismatched_weights(tmp_path, tiny_model):
    good = tmp_path / "good.tdr"
    tiny_model.save(good)
    wrong = tmp_path / "wrong.tdr"
    _resave(good, wrong, architecture={"name": "self2self-unet", "width": 8, "dropout": 0.3})
    with pytest.raises(ValueError, match="do not match"):
        TDRModel.load(wrong)


@pytest.mark.parametrize("changes", [
    {"normalization": None},
    {"normalization": {"median": 0.0, "scale": 0.0}},
    {"normalization": {"median": 0.0, "scale": float("nan")}},
    {"normalization": {"median": float("inf"), "scale": 1.0}},
    {"unit": "not a unit at all"},
    {"unit": 5},
    {"keep_prob": 2.0},
    {"keep_prob": True},
    {"patch_size": 32.5},
    {"batch_size": -1},
    {"learning_rate": float("nan")},
    {"architecture": {"name": "self2self-unet"}},
    {"architecture": {"name": "self2self-unet", "width": 0, "dropout": 0.3}},
    {"architecture": {"name": "self2self-unet", "width": 48, "dropout": 1.5}},
    {"history": "trained"},
    {"history": [{"action": "fit"}]},
    {"format_version": True},
    {"format_version": -5},
    {"format_version": "2"},
    {"drop": ["history"]},
])
def test_load_malformed_metadata(tmp_path, tiny_model, changes):
    good = tmp_path / "good.tdr"
    tiny_model.save(good)
    bad = tmp_path / "bad.tdr"
    _resave(good, bad, **changes)
    with pytest.raises(ValueError, match="bad.tdr has missing or malformed metadata"):
        TDRModel.load(bad)


def test_format_version_is_4():
    assert FILE_FORMAT_VERSION == 4


def test_checksum_stored(tmp_path, tiny_model):
    path = tmp_path / "m.tdr"
    tiny_model.save(path)
    payload = read_payload(path)
    assert payload["format_version"] == 4
    assert payload["checksum"] == payload_checksum(payload)
    assert len(payload["checksum"]) == 64


def test_flipped_bytes_refused(tmp_path, tiny_model):
    path = tmp_path / "m.tdr"
    tiny_model.save(path)
    raw = bytearray(path.read_bytes())
    mid = len(raw) // 2
    raw[mid:mid + 64] = bytes(b ^ 0xFF for b in raw[mid:mid + 64])
    bad = tmp_path / "bad.tdr"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="bad.tdr: checksum mismatch: the file is corrupt "
                                         "or was altered"):
        TDRModel.load(bad)


def test_altered_metadata_refused(tmp_path, tiny_model):
    good = tmp_path / "good.tdr"
    tiny_model.save(good)
    bad = tmp_path / "bad.tdr"
    _resave(good, bad, checksum=False, normalization={"median": 0.0, "scale": 2.0})
    with pytest.raises(ValueError, match="checksum mismatch"):
        TDRModel.load(bad)


def test_format_1_loads_with_warning(tmp_path, tiny_model):
    good = tmp_path / "good.tdr"
    tiny_model.save(good)
    old = tmp_path / "old.tdr"
    payload = read_payload(good)
    del payload["checksum"]
    payload["format_version"] = 1
    payload["normalization"] = {"median": tiny_model.normalization["median"],
                                "scale": tiny_model.normalization["scale"]}
    torch.save(payload, old)
    with pytest.warns(TDRUserWarning, match="format-1 model file.*cannot be verified"):
        loaded = TDRModel.load(old, device="cpu")
    assert loaded.fingerprint == tiny_model.fingerprint
    assert loaded.normalization["outlier_threshold"] == 1e3


def test_bytes_roundtrip(noisy, unit_model):
    data = unit_model.to_bytes()
    assert isinstance(data, bytes) and data == to_bytes(unit_model)
    back = TDRModel.from_bytes(data, device="cpu")
    assert back.fingerprint == unit_model.fingerprint and back.unit == u.G
    assert back.path is None and back.history == unit_model.history
    assert from_bytes(data, device="cpu").normalization == unit_model.normalization
    with pytest.raises(ValueError, match="not a readable tdrdenoise model"):
        TDRModel.from_bytes(data[:500])


def test_module_functions(tmp_path, tiny_model):
    path = tmp_path / "m.tdr"
    save(tiny_model, path)
    assert load(path, device="cpu").fingerprint == tiny_model.fingerprint
    with pytest.raises(OSError, match="exists"):
        save(tiny_model, path)


def _broken_copy(model):
    broken = TDRModel.from_bytes(model.to_bytes(), device="cpu")
    with torch.no_grad():
        next(broken._net.parameters()).view(-1)[0] = float("nan")
    return broken


def test_save_refuses_non_finite_weights(tmp_path, tiny_model):
    broken = _broken_copy(tiny_model)
    with pytest.raises(ValueError, match="non-finite weights"):
        broken.save(tmp_path / "m.tdr")
    with pytest.raises(ValueError, match="non-finite weights"):
        broken.to_bytes()
    assert not (tmp_path / "m.tdr").exists()


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf")])
def test_save_refuses_bad_scale(tmp_path, tiny_model, scale):
    model = TDRModel.from_bytes(tiny_model.to_bytes(), device="cpu")
    model.normalization = dict(model.normalization, scale=scale)
    with pytest.raises(ValueError, match="normalization scale"):
        model.save(tmp_path / "m.tdr")


def test_load_refuses_non_finite_weights(tmp_path, tiny_model):
    good = tmp_path / "good.tdr"
    tiny_model.save(good)
    payload = read_payload(good)
    name = next(iter(payload["state_dict"]))
    payload["state_dict"][name].view(-1)[0] = float("inf")
    payload["checksum"] = payload_checksum(payload)
    bad = tmp_path / "bad.tdr"
    write_payload(payload, bad)
    with pytest.raises(ValueError, match="bad.tdr has non-finite weights"):
        TDRModel.load(bad)


def test_format_1_without_checksum_is_still_validated(tmp_path, tiny_model):
    good = tmp_path / "good.tdr"
    tiny_model.save(good)
    bad = tmp_path / "bad.tdr"
    _resave(good, bad, checksum=False, drop=["checksum"], format_version=1, keep_prob=3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TDRUserWarning)
        with pytest.raises(ValueError, match="keep_prob"):
            TDRModel.load(bad)


def test_format_1_holds_nothing_out_and_does_not_shuffle(tmp_path, tiny_model):
    # files written before bright pixels and pixel shuffling existed keep their
    # behaviour: nothing held out, stride 1
    good = tmp_path / "good.tdr"
    tiny_model.save(good)
    old = tmp_path / "old.tdr"
    payload = read_payload(good)
    del payload["checksum"]
    payload["format_version"] = 1
    payload["normalization"] = {"median": 0.0, "scale": 1.0}
    torch.save(payload, old)
    with pytest.warns(TDRUserWarning):
        loaded = TDRModel.load(old, device="cpu")
    assert loaded.normalization["bright_threshold"] == np.inf
    assert loaded.normalization["pixel_shuffle"] == 1 and loaded.stride == 1


@pytest.mark.parametrize("shuffle", [0, 5, 1.5, True, "2"])
def test_load_refuses_bad_pixel_shuffle(tmp_path, tiny_model, shuffle):
    good = tmp_path / "good.tdr"
    tiny_model.save(good)
    bad = tmp_path / "bad.tdr"
    _resave(good, bad, normalization=dict(tiny_model.normalization, pixel_shuffle=shuffle))
    with pytest.raises(ValueError, match="pixel_shuffle"):
        TDRModel.load(bad)


# --------------------------------------------------------------------------- format 4
class _RunsCode:
    """Unpickling this runs code: it creates the file named by ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_model_file_carrying_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code-ran"
    evil = tmp_path / "evil.tdr"
    torch.save({"format": "tdrdenoise-model", "format_version": 3,
                "state_dict": _RunsCode(marker)}, evil)
    with pytest.raises(ValueError, match="not a readable tdrdenoise model file"):
        TDRModel.load(evil)
    with pytest.raises(ValueError, match="not a readable tdrdenoise model file"):
        TDRModel.from_bytes(evil.read_bytes())
    assert not marker.exists()


def test_format_4_reads_no_pickle(tmp_path, tiny_model, monkeypatch):
    import pickle

    path = tmp_path / "m.tdr"
    tiny_model.save(path)
    assert path.read_bytes()[8:9] == b"{"  # a safetensors header, not a torch archive

    def forbidden(*args, **kwargs):
        raise AssertionError("a format-4 file must be read without any pickle")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no deprecation warning
        assert TDRModel.load(path, device="cpu").fingerprint == tiny_model.fingerprint


def test_same_model_same_bytes(tiny_model):
    assert tiny_model.to_bytes() == tiny_model.to_bytes()


@pytest.mark.parametrize("changes, match", [
    ({"architecture": {"name": "self2self-unet", "width": 10**6, "dropout": 0.3}},
     "width=1000000 is out of range"),
    ({"batch_size": 10**9}, "batch_size=1000000000 is out of range"),
    ({"patch_size": 10**6}, "patch_size=1000000 is out of range"),
    ({"student": {"width": 10**5, "head": 32}}, "width=100000 is out of range"),
])
def test_metadata_bounds_checked_before_allocation(tmp_path, tiny_model, changes, match,
                                                   monkeypatch):
    import tdrdenoise.network

    built = []
    real = tdrdenoise.network.SelfToSelfUNet.__init__

    def record(self, *args, **kwargs):
        built.append(args)
        real(self, *args, **kwargs)

    good = tmp_path / "good.tdr"
    tiny_model.save(good)
    bad = tmp_path / "bad.tdr"
    _resave(good, bad, **changes)
    monkeypatch.setattr(tdrdenoise.network.SelfToSelfUNet, "__init__", record)
    with pytest.raises(ValueError, match=match):
        TDRModel.load(bad)
    assert built == []  # refused before any network was built


def test_shapes_compared_before_the_network_is_built(tmp_path, tiny_model, monkeypatch):
    import tdrdenoise.model

    good = tmp_path / "good.tdr"
    tiny_model.save(good)
    wrong = tmp_path / "wrong.tdr"
    _resave(good, wrong, architecture={"name": "self2self-unet", "width": 64,
                                       "dropout": 0.3})
    monkeypatch.setattr(tdrdenoise.model, "SelfToSelfUNet",
                        lambda *a, **k: pytest.fail("network built"))
    with pytest.raises(ValueError, match=r"weights of the network do not match the "
                                         r"recorded architecture \(.* is F32 \["):
        TDRModel.load(wrong)


def test_file_size_cap(tmp_path, tiny_model, monkeypatch):
    from tdrdenoise import _model_format  # where model_io's size check is written

    path = tmp_path / "m.tdr"
    tiny_model.save(path)
    monkeypatch.setattr(_model_format, "MAX_FILE_BYTES", 1000)
    with pytest.raises(ValueError, match="model files are at most 1000 bytes"):
        TDRModel.load(path)
    with pytest.raises(ValueError, match="model files are at most 1000 bytes"):
        TDRModel.from_bytes(path.read_bytes())


def test_expected_sha256(tmp_path, tiny_model):
    import hashlib

    from tdrdenoise.model_io import file_sha256

    path = tmp_path / "m.tdr"
    tiny_model.save(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert file_sha256(path) == digest == file_sha256(path.read_bytes())
    assert TDRModel.load(path, sha256=digest.upper()).fingerprint == tiny_model.fingerprint
    other = "0" * 64
    with pytest.raises(ValueError, match=f"has SHA-256 {digest}, not the expected {other}"):
        TDRModel.load(path, sha256=other)
    with pytest.raises(ValueError, match="sha256 must be 64 hexadecimal digits"):
        load(path, sha256="abc")


def test_format_3_loads_with_deprecation_warning(tmp_path, tiny_model):
    from astropy.utils.exceptions import AstropyDeprecationWarning

    payload = read_payload(_saved(tmp_path, tiny_model))
    payload["format_version"] = 3
    payload["checksum"] = payload_checksum(payload)
    old = tmp_path / "old.tdr"
    torch.save(payload, old)
    with pytest.warns(AstropyDeprecationWarning, match="format-3 model file .*model_io.convert"):
        loaded = TDRModel.load(old, device="cpu")
    assert loaded.fingerprint == tiny_model.fingerprint
    # a version that does not match the container is refused
    payload["format_version"] = 4
    payload["checksum"] = payload_checksum(payload)
    torch.save(payload, old)
    with pytest.raises(ValueError, match="format_version 4 in a torch file"):
        TDRModel.load(old)


def _saved(tmp_path, model):
    path = tmp_path / "saved.tdr"
    model.save(path)
    return path


def test_convert(tmp_path, tiny_model):
    from tdrdenoise.model_io import convert, file_sha256

    payload = read_payload(_saved(tmp_path, tiny_model))
    payload["format_version"] = 3
    payload["checksum"] = payload_checksum(payload)
    old, new = tmp_path / "old.tdr", tmp_path / "new.tdr"
    torch.save(payload, old)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        digest = convert(old, new)
        converted = TDRModel.load(new, sha256=digest, device="cpu")
    assert digest == file_sha256(new) and new.read_bytes()[8:9] == b"{"
    assert converted.fingerprint == tiny_model.fingerprint
    assert converted.history == tiny_model.history
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        convert(old, new)


@pytest.mark.parametrize("kwargs, match", [
    ({"width": 600}, "width must be at most 512"),
    ({"patch_size": 8200}, "patch_size must be at most 8192"),
    ({"batch_size": 5000}, "batch_size must be at most 4096"),
    ({"student_width": 600}, "student_width must be at most 512"),
    ({"learning_rate": 0.0}, "learning_rate must be a positive finite number"),
    ({"learning_rate": float("nan")}, "learning_rate must be a positive finite number"),
])
def test_settings_a_model_file_cannot_hold_are_refused_at_construction(kwargs, match):
    """A model that could not be saved and loaded again fails before any training."""
    with pytest.raises(ValueError, match=match):
        TDRModel(device="cpu", **kwargs)


def test_largest_settings_are_accepted():
    model = TDRModel(device="cpu", width=8, patch_size=8192, batch_size=4096,
                     student_width=512)
    assert (model.patch_size, model.batch_size, model.student_width) == (8192, 4096, 512)


@pytest.mark.parametrize("change, match", [
    (lambda m: setattr(m, "patch_size", 9000), r"patch_size=9000 is out of range: at most 8192"),
    (lambda m: setattr(m, "batch_size", 5000), r"batch_size=5000 is out of range: at most 4096"),
    (lambda m: setattr(m, "learning_rate", -1.0), r"learning_rate=-1.0 is out of range"),
    (lambda m: setattr(m.student, "width", 600), r"width=600 is out of range: at most 512"),
])
def test_save_refuses_what_load_would_refuse(tmp_path, tiny_model, change, match):
    """Settings changed after construction: the file is not written (load would refuse
    it), and the message says why."""
    import copy

    model = copy.deepcopy(tiny_model)
    change(model)
    path = tmp_path / "m.tdr"
    with pytest.raises(ValueError, match="this model cannot be saved: " + match):
        model.save(path)
    assert not path.exists() and list(tmp_path.iterdir()) == []


def _legacy_copy(tmp_path, tiny_model, **changes):
    payload = read_payload(_saved(tmp_path, tiny_model))
    payload.update(changes, format_version=3)
    payload["checksum"] = payload_checksum(payload)
    old = tmp_path / "old.tdr"
    torch.save(payload, old)
    return old


def test_old_file_with_large_training_settings_still_loads(tmp_path, tiny_model):
    """Formats 1 to 3 had no bounds: a patch or batch size beyond them (training
    settings only) is lowered with a warning; the model loads and can be saved."""
    from astropy.utils.exceptions import AstropyDeprecationWarning

    old = _legacy_copy(tmp_path, tiny_model, patch_size=10000, batch_size=5000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = TDRModel.load(old, device="cpu")
    messages = [str(w.message) for w in caught if w.category is TDRUserWarning]
    assert any("patch_size=10000, more than the 8192 of format 4; it is lowered to 8192"
               in m for m in messages)
    assert any("batch_size=5000" in m for m in messages)
    assert any(w.category is AstropyDeprecationWarning for w in caught)
    assert (loaded.patch_size, loaded.batch_size) == (8192, 4096)
    assert loaded.fingerprint == tiny_model.fingerprint
    loaded.save(tmp_path / "new.tdr")
    assert TDRModel.load(tmp_path / "new.tdr").patch_size == 8192


def test_old_file_with_too_wide_network_has_a_clear_message(tmp_path, tiny_model):
    from astropy.utils.exceptions import AstropyDeprecationWarning

    old = _legacy_copy(tmp_path, tiny_model, architecture={
        "name": "self2self-unet", "width": 600, "dropout": 0.3})
    with pytest.warns(AstropyDeprecationWarning), \
            pytest.raises(ValueError, match=r"format 3, written by tdrdenoise .*\) holds a "
                                            r"network of width 600; this version builds "
                                            r"and reads at most 512 .*train it again with "
                                            r"width <= 512"):
        TDRModel.load(old)


def test_checkpoint_that_cannot_be_removed_does_not_fail_the_save(tmp_path, noisy,
                                                                  monkeypatch):
    """The model is written: a checkpoint that cannot be removed afterwards gives a
    warning, not an error (which made the command line write a second copy)."""
    import tdrdenoise.model_io as model_io

    ckpt = tmp_path / "train.ckpt"
    model = TDRModel(patch_size=32, batch_size=2, device="cpu").fit(
        noisy, steps=2, seed=0, progress=False, distil_steps=0, checkpoint=ckpt)
    real = model_io.os.unlink

    def refused(path, *args, **kwargs):
        if str(path) == str(ckpt):
            raise PermissionError(13, "Permission denied")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(model_io.os, "unlink", refused)
    path = tmp_path / "m.tdr"
    with pytest.warns(TDRUserWarning, match=r"the model was saved to .*m\.tdr, but its "
                                            r"training checkpoint .* could not be removed "
                                            r"\(Permission denied\); delete it yourself"):
        model.save(path)
    monkeypatch.undo()
    assert ckpt.is_file() and model.path == str(path) and model.pending_checkpoint is None
    assert TDRModel.load(path).fingerprint == model.fingerprint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tdr", "train.ckpt"]


def test_deeply_nested_header_is_not_a_model_file(tmp_path, tiny_model):
    """JSON nested thousands deep: the usual "not a readable model file" message, not
    a RecursionError."""
    import json

    deep = b"[" * 100000 + b"]" * 100000
    bad = tmp_path / "deep.tdr"
    bad.write_bytes(len(deep).to_bytes(8, "little") + deep)
    with pytest.raises(ValueError, match="not a readable tdrdenoise model file .*nested "
                                         "too deeply"):
        TDRModel.load(bad)
    # nested metadata inside a valid header
    good = _saved(tmp_path, tiny_model)
    data = good.read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    meta = json.loads(header["__metadata__"]["tdrdenoise"])
    for depth in (100000, 700):
        meta["history"] = [{"steps": 1, "x": json.loads("[" * depth + "]" * depth)
                            if depth < 900 else None}]
        text = json.dumps(meta) if depth < 900 else json.dumps(meta).replace(
            '"x": null', '"x": ' + "[" * depth + "]" * depth)
        header["__metadata__"]["tdrdenoise"] = text
        raw = json.dumps(header).encode()
        raw += b" " * (-len(raw) % 8)
        bad.write_bytes(len(raw).to_bytes(8, "little") + raw + data[8 + size:])
        with pytest.raises(ValueError, match="not a (readable )?tdrdenoise model file"):
            TDRModel.load(bad)


def test_legacy_weights_that_are_not_tensors(tmp_path, tiny_model):
    """A torch archive whose state_dict holds a list: a clear message, no
    AttributeError."""
    payload = read_payload(_saved(tmp_path, tiny_model))
    payload["format_version"] = 3
    name = next(iter(payload["state_dict"]))
    payload["state_dict"][name] = [1, 2, 3]
    old = tmp_path / "old.tdr"
    torch.save(payload, old)
    with pytest.raises(ValueError, match=rf"malformed metadata \(weight '{name}' is a "
                                         r"list, not a tensor\)"):
        TDRModel.load(old)


def test_non_finite_metadata_is_strict_json(tmp_path, noisy):
    """bright_threshold=inf (and impulse noise) round-trip through metadata that strict
    JSON readers accept; files holding bare Infinity (the first format-4 ones) load."""
    import json

    def strict(text):
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))

    model = TDRModel(patch_size=32, batch_size=2, device="cpu", impulse_noise=True,
                     bright_threshold=np.inf).fit(noisy, steps=2, seed=0, progress=False,
                                                  distil_steps=0)
    assert model.normalization["bright_threshold"] == np.inf
    path = tmp_path / "m.tdr"
    model.save(path)
    data = path.read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = strict(data[8:8 + size])
    meta = strict(header["__metadata__"]["tdrdenoise"])
    assert meta["normalization"]["bright_threshold"] == "inf"
    loaded = TDRModel.load(path, device="cpu")
    assert loaded.impulse_noise is True and loaded.normalization["impulse_noise"] is True
    assert loaded.bright_threshold == np.inf
    assert loaded.normalization == model.normalization
    assert loaded.fingerprint == model.fingerprint
    # a first format-4 file, with bare Infinity, still loads
    payload = read_payload(path)
    weights = ("state_dict", "student_state_dict")
    meta = {k: v for k, v in payload.items() if k not in weights}
    from safetensors.torch import save as save_tensors
    tensors = {"network." + k: v for k, v in payload["state_dict"].items()}
    old = tmp_path / "old.tdr"
    old.write_bytes(save_tensors(tensors, metadata={
        "tdrdenoise": json.dumps(meta, sort_keys=True)}))
    assert b"Infinity" in old.read_bytes()
    again = TDRModel.load(old, device="cpu")
    assert again.bright_threshold == np.inf and again.impulse_noise is True


def test_from_bytes_checks_sha256(tiny_model):
    import hashlib

    data = tiny_model.to_bytes()
    digest = hashlib.sha256(data).hexdigest()
    assert TDRModel.from_bytes(data, device="cpu", sha256=digest).fingerprint == \
        tiny_model.fingerprint
    with pytest.raises(ValueError, match=f"has SHA-256 {digest}, not the expected 0{{64}}"):
        TDRModel.from_bytes(data, device="cpu", sha256="0" * 64)


def test_load_reads_the_header_once(tmp_path, tiny_model, monkeypatch):
    import tdrdenoise.model_io as model_io

    path = _saved(tmp_path, tiny_model)
    calls = []
    real = model_io._read_header
    monkeypatch.setattr(model_io, "_read_header",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    assert TDRModel.load(path, device="cpu").fingerprint == tiny_model.fingerprint
    assert calls == [1]
