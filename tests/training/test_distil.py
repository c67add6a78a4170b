"""The distilled student: the fast default path of tdr_denoise and predict."""
import numpy as np
import pytest
import torch
from astropy import units as u
from astropy.nddata import CCDData, StdDevUncertainty

from tdrdenoise import TDRModel, tdr_denoise
from tdrdenoise.prediction.normalization import network_input
from tdrdenoise.prediction.student import resolve_method, student_predict
from tdrdenoise.model_io import decode_payload, encode_payload, payload_checksum

from ..conftest import smooth_field

TINY = dict(patch_size=32, batch_size=2, device="cpu")


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(7)
    truth = smooth_field((96, 96))
    first = truth + rng.normal(0, 0.3, truth.shape)
    second = truth + rng.normal(0, 0.3, truth.shape)
    return truth, first, second


@pytest.fixture(scope="module")
def model(pair):
    """A small model whose student had enough steps to learn the ensemble roughly."""
    return TDRModel(width=16, student_width=8, **TINY).fit(
        pair[1] * u.G, steps=40, distil_steps=150, seed=0, progress=False)


def test_fit_distils_a_student(model):
    assert model.student is not None and model.student.width == 8
    record = model.history[-1]
    assert record["action"] == "fit" and record["distil"]["steps"] == 150
    assert "student width=8" in repr(model)
    # distil_steps defaults to the training steps when they are fewer than the default 1000
    small = TDRModel(**TINY).fit(smooth_field((48, 48)) + np.random.default_rng(0).normal(
        0, 0.3, (48, 48)), steps=2, seed=0, progress=False)
    assert small.history[-1]["distil"]["steps"] == 2
    with pytest.raises(ValueError, match="distil_steps"):
        TDRModel(**TINY).fit(np.zeros((48, 48)) + np.arange(48), steps=2, distil_steps=-1)


def test_student_reproduces_the_ensemble(model, pair):
    truth, _, second = pair
    fast, fast_std = model.predict(second * u.G)
    slow, slow_std = model.predict(second * u.G, method="ensemble", n_predictions=16, seed=0)
    noise = 0.3
    # the student's mean is far closer to the ensemble's than the noise is to either
    gap = np.sqrt(np.mean((fast - slow).value ** 2))
    assert gap < 0.35 * noise, gap
    # and it denoises: its error to the truth is well below the noise
    assert np.sqrt(np.mean((fast.value - truth) ** 2)) < 0.6 * noise
    # its spread is the ensemble's to within a factor of two, on the median
    ratio = np.median(fast_std.value) / np.median(slow_std.value)
    assert 0.5 < ratio < 2.0, ratio
    assert fast.unit == u.G and fast_std.unit == u.G


def test_tdr_denoise_uses_the_student_by_default(model, pair):
    ccd = CCDData(pair[2], unit="G")
    out = tdr_denoise(ccd, model, R=np.inf, progress=False)
    assert out.shape == ccd.shape and out.unit == u.G
    assert isinstance(out.uncertainty, StdDevUncertainty)
    assert np.isfinite(out.uncertainty.array).all() and (out.uncertainty.array > 0).all()
    assert "method=student" in out.meta["TDRDENOI"]
    # deterministic: no seed needed for the same result
    again = tdr_denoise(ccd, model, R=np.inf, progress=False)
    np.testing.assert_array_equal(out.data, again.data)
    # the ensemble's options select the ensemble
    slow = tdr_denoise(ccd, model, R=np.inf, n_predictions=2, fine_tune_steps=0, seed=0,
                       progress=False)
    assert "n_predictions=2" in slow.meta["TDRDENOI"]
    assert not np.array_equal(slow.data, out.data)
    # R=0 returns the input exactly on this path too
    np.testing.assert_array_equal(tdr_denoise(ccd, model, R=0 * u.G).data, ccd.data)


def test_student_tiled_equals_untiled(model, pair):
    z, valid, _, _ = network_input(pair[2], np.zeros(pair[2].shape, bool), model.normalization)
    valid = valid.copy()
    valid[10:20, 30:50] = False   # masked pixels on a tile boundary
    whole = student_predict(model.student, z, valid, device=model.device, tile_size=4096)
    tiled = student_predict(model.student, z, valid, device=model.device, tile_size=32)
    for a, b in zip(whole, tiled):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_method_checks(model, pair):
    bare = TDRModel(**TINY).fit(pair[1], steps=2, distil_steps=0, seed=0, progress=False)
    assert bare.student is None
    assert resolve_method(bare, "auto", None, None) == "ensemble"
    assert resolve_method(model, "auto", None, None) == "student"
    assert resolve_method(model, "auto", 4, None) == "ensemble"
    assert resolve_method(model, "auto", None, 0) == "ensemble"
    with pytest.raises(ValueError, match="method must be one of"):
        tdr_denoise(pair[2], model, method="fast")
    with pytest.raises(ValueError, match="distilled student"):
        tdr_denoise(pair[2], bare, method="student")
    with pytest.raises(ValueError, match="n_predictions apply to method='ensemble'"):
        tdr_denoise(pair[2] * u.G, model, method="student", n_predictions=4)
    with pytest.raises(ValueError, match="distilled student"):
        bare.predict(pair[2], method="student")
    # a model without a student denoises with the ensemble by default
    out = tdr_denoise(pair[2], bare, n_predictions=2, fine_tune_steps=0, seed=0)
    assert out.shape == pair[2].shape
    # distil() gives it one
    bare.distil(pair[1], steps=3, seed=0, progress=False)
    assert bare.student is not None and bare.history[-1]["distil"]["steps"] == 3
    with pytest.raises(ValueError, match="steps"):
        bare.distil(pair[1], steps=0)
    with pytest.raises(RuntimeError, match="distil"):
        TDRModel(**TINY).distil(pair[1])


def test_fine_tuned_copy_has_no_student(model, pair):
    tuned = model.fine_tune(pair[2] * u.G, steps=1, seed=0)
    assert tuned.student is None and model.student is not None
    assert model.fine_tune(pair[2] * u.G, steps=0).student is not None


def test_save_load_keeps_the_student(model, pair, tmp_path):
    path = tmp_path / "m.tdr"
    model.save(path)
    back = TDRModel.load(path, device="cpu")
    assert back.student is not None and back.fingerprint == model.fingerprint
    a, _ = model.predict(pair[2] * u.G)
    b, _ = back.predict(pair[2] * u.G)
    np.testing.assert_array_equal(a, b)
    payload = decode_payload(path.read_bytes())
    assert payload["student"] == {"width": 8, "head": 32}
    # a file without a student (format 2, or distil_steps=0) loads without one
    payload.pop("student")
    payload.pop("student_state_dict")
    payload["format_version"] = 2
    payload["checksum"] = payload_checksum(payload)
    torch.save(payload, tmp_path / "old.tdr")
    old = TDRModel.load(tmp_path / "old.tdr", device="cpu")
    assert old.student is None
    # malformed student metadata or weights are refused
    for change in ({"student": {"width": 0, "head": 32}}, {"student": [8]},
                   {"student_state_dict": None}):
        bad = decode_payload(path.read_bytes())
        bad.update(change)
        bad["checksum"] = payload_checksum(bad)
        (tmp_path / "bad.tdr").write_bytes(encode_payload(bad))
        with pytest.raises(ValueError, match="bad.tdr"):
            TDRModel.load(tmp_path / "bad.tdr", device="cpu")
    bad = decode_payload(path.read_bytes())
    bad["student_state_dict"]["enc.0.weight"] += 1.0
    (tmp_path / "bad.tdr").write_bytes(encode_payload(bad))
    with pytest.raises(ValueError, match="checksum mismatch"):
        TDRModel.load(tmp_path / "bad.tdr", device="cpu")


def test_impulses_inpainted_by_the_student():
    rng = np.random.default_rng(3)
    clean = smooth_field((96, 96))
    noisy = clean + rng.normal(0, 0.05, clean.shape)
    hit = rng.random(clean.shape) < 0.05
    noisy[hit] = rng.choice([-3.0, 3.0], hit.sum())
    model = TDRModel(width=16, student_width=8, **TINY).fit(noisy, steps=20, distil_steps=60,
                                                            seed=0, progress=False)
    assert model.normalization["impulse_noise"] is True
    out = tdr_denoise(noisy, model)
    # the impulses (|3| against a field within about [-1.6, 1.6]) are replaced by
    # values of the field's size, learned from the teacher's inpainting
    assert np.abs(out[hit]).max() < 2.5


def test_large_images_get_targets_on_windows(monkeypatch, pair):
    from tdrdenoise.training import distil as _distil
    shapes = []
    real = _distil.teacher_targets

    def recording(model, z, valid, **kwargs):
        shapes.append(z.shape)
        return real(model, z, valid, **kwargs)

    monkeypatch.setattr(_distil, "teacher_targets", recording)
    monkeypatch.setattr(_distil, "TARGET_BUDGET", 64 * 64)
    monkeypatch.setattr(_distil, "TARGET_CORE", 32)
    monkeypatch.setattr(_distil, "TARGET_MARGIN", 16)
    image = pair[1].copy()
    image[:, :40] = np.nan   # windows are picked where the pixels are valid
    model = TDRModel(width=8, student_width=4, **TINY).fit(image, steps=2, distil_steps=2,
                                                           seed=0, progress=False)
    assert len(shapes) == _distil.TARGET_WINDOWS
    assert all(h <= 64 and w <= 64 for h, w in shapes)
    mean, std = model.predict(image, method="student")
    assert np.isfinite(mean[:, 40:]).all() and (std[:, 40:] > 0).all()


def test_student_width_checked():
    with pytest.raises(ValueError, match="student_width"):
        TDRModel(student_width=1)
    with pytest.raises(TypeError, match="student_width"):
        TDRModel(student_width=True)
