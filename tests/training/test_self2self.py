"""The training loop: resumable checkpoints, non-finite detection."""
import numpy as np
import pytest
import torch

from tdrdenoise import TDRModel, TDRUserWarning
from tdrdenoise.training.self2self import train
from tdrdenoise.network import SelfToSelfUNet

TINY = dict(patch_size=32, batch_size=2, device="cpu")


def _interrupt_at(n):
    def callback(step):
        if step == n:
            raise KeyboardInterrupt
    return callback


def test_resume_equals_uninterrupted(tmp_path, noisy):
    ckpt = tmp_path / "train.ckpt"
    whole = TDRModel(**TINY).fit(noisy, steps=6, seed=3, progress=False)
    first = TDRModel(**TINY)
    with pytest.warns(TDRUserWarning, match="interrupted after 4 of 6"):
        with pytest.raises(KeyboardInterrupt):
            first.fit(noisy, steps=6, seed=3, progress=False, checkpoint=ckpt,
                      checkpoint_every=2, callback=_interrupt_at(4))
    assert ckpt.is_file()
    resumed = TDRModel(**TINY).fit(noisy, steps=6, seed=None, progress=False,
                                   checkpoint=ckpt, checkpoint_every=2)
    for (name, a), (_, b) in zip(whole._net.state_dict().items(),
                                 resumed._net.state_dict().items()):
        assert torch.equal(a, b), name
    assert resumed.fingerprint == whole.fingerprint
    record = resumed.history[-1]
    assert record["steps"] == 6 and record["seed"] == 3 and record["resumed_at_step"] == 4
    assert record["final_loss"] == whole.history[-1]["final_loss"]
    assert ckpt.is_file()  # kept until the model is saved
    resumed.save(tmp_path / "model.tdr")
    assert not ckpt.exists()  # the model itself is now what to keep


def test_checkpoint_written_every_n_steps(tmp_path, noisy):
    ckpt = tmp_path / "sub" / "train.ckpt"
    seen = []

    def callback(step):
        seen.append((step, ckpt.is_file()))

    TDRModel(**TINY).fit(noisy, steps=3, seed=0, progress=False, checkpoint=ckpt,
                         checkpoint_every=2, callback=callback)
    assert seen == [(1, False), (2, True), (3, True)]
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["train.ckpt"]


def test_checkpoint_kept_when_distillation_fails(tmp_path, noisy, monkeypatch):
    """A failure after the training (here the distillation) loses no training: the
    finished state stays in the checkpoint and the same call resumes from it."""
    from tdrdenoise import _model_fit  # where TDRModel.fit is written

    ckpt = tmp_path / "train.ckpt"
    whole = TDRModel(**TINY).fit(noisy, steps=3, seed=5, progress=False, distil_steps=2)

    def broken(*args, **kwargs):
        raise ValueError("distillation failed")

    with monkeypatch.context() as patch:
        patch.setattr(_model_fit, "distil_model", broken)
        with pytest.raises(ValueError, match="distillation failed"):
            TDRModel(**TINY).fit(noisy, steps=3, seed=5, progress=False, distil_steps=2,
                                 checkpoint=ckpt, checkpoint_every=100)
    assert ckpt.is_file()
    steps_run = []
    with pytest.warns(TDRUserWarning, match="finished, unsaved training .*resumed, not "
                                            "trained again"):
        again = TDRModel(**TINY).fit(noisy, steps=3, seed=5, progress=False,
                                     distil_steps=2, checkpoint=ckpt,
                                     callback=steps_run.append)
    assert steps_run == []  # nothing trained again
    assert again.history[0]["resumed_at_step"] == 3
    assert again.fingerprint == whole.fingerprint


@pytest.mark.parametrize("change, match", [
    ({"image": "other"}, "another image or other training settings"),
    ({"steps": 8}, "another image or other training settings"),
    ({"learning_rate": 5e-4}, "another image or other training settings"),
    ({"seed": 4}, "seed=3, not seed=4"),
])
def test_checkpoint_for_other_run_refused(tmp_path, noisy, change, match):
    ckpt = tmp_path / "train.ckpt"
    with pytest.warns(TDRUserWarning), pytest.raises(KeyboardInterrupt):
        TDRModel(**TINY).fit(noisy, steps=6, seed=3, progress=False, checkpoint=ckpt,
                             checkpoint_every=2, callback=_interrupt_at(2))
    kwargs = dict(steps=6, seed=3, progress=False, checkpoint=ckpt, checkpoint_every=2)
    image = noisy[::-1] if change.pop("image", None) else noisy
    kwargs.update(change)
    model = TDRModel(**TINY)
    with pytest.raises(ValueError, match=match):
        model.fit(image, **kwargs)
    assert not model.is_fitted and ckpt.is_file()


def test_series_resumes_and_checkpoint_names_every_image(tmp_path, noisy):
    """A series' checkpoint resumes the same series and refuses another."""
    ckpt = tmp_path / "train.ckpt"
    series = [noisy, noisy[::-1].copy()]
    whole = TDRModel(**TINY).fit(series, steps=4, seed=3, progress=False, distil_steps=0)
    with pytest.warns(TDRUserWarning), pytest.raises(KeyboardInterrupt):
        TDRModel(**TINY).fit(series, steps=4, seed=3, progress=False, checkpoint=ckpt,
                             checkpoint_every=2, callback=_interrupt_at(2),
                             distil_steps=0)
    kwargs = dict(steps=4, seed=3, progress=False, checkpoint=ckpt, checkpoint_every=2,
                  distil_steps=0)
    for other in ([noisy, noisy.T.copy()], [noisy], [noisy[::-1].copy(), noisy]):
        with pytest.raises(ValueError, match="another image or other training settings"):
            TDRModel(**TINY).fit(other, **kwargs)
    resumed = TDRModel(**TINY).fit(series, **kwargs)
    assert resumed.fingerprint == whole.fingerprint
    assert resumed.history[-1]["resumed_at_step"] == 2
    assert resumed.history[-1]["images"] == 2


def test_not_a_checkpoint(tmp_path, noisy):
    ckpt = tmp_path / "train.ckpt"
    torch.save({"format": "something else"}, ckpt)
    with pytest.raises(ValueError, match="not a tdrdenoise training checkpoint"):
        TDRModel(**TINY).fit(noisy, steps=2, seed=0, progress=False, checkpoint=ckpt)


def test_bad_checkpoint_every(tmp_path, noisy):
    with pytest.raises(ValueError, match="checkpoint_every must be at least 1"):
        TDRModel(**TINY).fit(noisy, steps=2, seed=0, progress=False,
                             checkpoint=tmp_path / "c", checkpoint_every=0)


def test_non_finite_loss_names_the_step():
    z = np.random.default_rng(0).normal(size=(32, 32)).astype(np.float32)
    z[10, 10] = np.inf
    net = SelfToSelfUNet(8, 0.3)
    history = []
    with pytest.raises(FloatingPointError, match=r"loss is (nan|inf) at step 1 of 3.*extreme"):
        train(net, z, np.ones(z.shape, bool), steps=3, seed=0, learning_rate=1e-3,
              keep_prob=0.7, patch_size=32, batch_size=2, device=torch.device("cpu"),
              history=history)
    assert history[-1]["steps"] == 0


def test_extreme_pixel_without_detection_fails_loudly(noisy):
    """With the outlier check off, a 1e25 pixel makes the loss overflow: the fit
    stops at once (the old code trained on, into a NaN model) and the model stays
    untrained."""
    image = noisy.copy()
    image[20, 20] = 1e25
    # both checks off: bright pixels (beyond bright_threshold) are held out too
    model = TDRModel(outlier_threshold=np.inf, bright_threshold=np.inf, **TINY)
    with pytest.raises(FloatingPointError, match="at step 1 of 3"):
        model.fit(image, steps=3, seed=0, progress=False)
    assert not model.is_fitted
    with pytest.raises(RuntimeError, match="needs a trained model"):
        model.to_bytes()


def test_diverging_learning_rate_is_caught(noisy):
    model = TDRModel(**TINY)
    with pytest.raises(FloatingPointError, match="(loss is|non-finite weights)"):
        model.fit(noisy, steps=4, seed=0, progress=False, learning_rate=1e30)


def test_fitting_again_replaces_the_models_own_finished_checkpoint(tmp_path, noisy):
    """The same model fitting again with the same checkpoint, unsaved: its own
    finished checkpoint is removed first (the new fit replaces those weights), so
    another image is not refused and seed=None trains afresh."""
    from tdrdenoise.training.self2self import _read_checkpoint

    ckpt = tmp_path / "train.ckpt"
    model = TDRModel(**TINY)
    model.fit(noisy, steps=3, seed=1, progress=False, distil_steps=0, checkpoint=ckpt)
    assert ckpt.is_file()
    steps_run = []
    model.fit(noisy[::-1], steps=3, seed=2, progress=False, distil_steps=0,
              checkpoint=ckpt, callback=steps_run.append)
    assert steps_run == [1, 2, 3] and "resumed_at_step" not in model.history[-1]
    assert _read_checkpoint(ckpt)["seed"] == 2  # the new fit's finished state
    first = model.fingerprint
    steps_run.clear()
    model.fit(noisy[::-1], steps=3, seed=None, progress=False, distil_steps=0,
              checkpoint=ckpt, callback=steps_run.append)
    assert steps_run == [1, 2, 3] and model.fingerprint != first
    model.save(tmp_path / "m.tdr")
    assert not ckpt.exists()


def test_finished_checkpoint_of_another_run_is_kept(tmp_path, noisy):
    """A finished, unsaved checkpoint of another model (another process): refused for
    another image or seed with a message saying what it is; resumed, with a warning,
    for the same ones; never removed."""
    ckpt = tmp_path / "train.ckpt"
    first = TDRModel(**TINY).fit(noisy, steps=3, seed=1, progress=False, distil_steps=0,
                                 checkpoint=ckpt)
    other = TDRModel(**TINY)
    with pytest.raises(ValueError, match=r"holds a finished, unsaved training \(3 steps, "
                                         r"seed=1\) of another image .*save it.*delete the "
                                         r"checkpoint"):
        other.fit(noisy[::-1], steps=3, seed=1, progress=False, distil_steps=0,
                  checkpoint=ckpt)
    with pytest.raises(ValueError, match=r"finished, unsaved training .*not seed=7: save "
                                         r"it \(fit again with seed=1 or seed=None"):
        other.fit(noisy, steps=3, seed=7, progress=False, distil_steps=0, checkpoint=ckpt)
    assert ckpt.is_file()
    steps_run = []
    with pytest.warns(TDRUserWarning, match="resumed, not trained again; save the model"):
        other.fit(noisy, steps=3, seed=None, progress=False, distil_steps=0,
                  checkpoint=ckpt, callback=steps_run.append)
    assert steps_run == [] and other.fingerprint == first.fingerprint
    assert ckpt.is_file()


def test_interrupted_fit_of_the_same_model_resumes(tmp_path, noisy):
    """Only a finished fit's own checkpoint is replaced: the same model resumes an
    interrupted fit, or one whose distillation failed."""
    ckpt = tmp_path / "train.ckpt"
    model = TDRModel(**TINY)
    with pytest.warns(TDRUserWarning), pytest.raises(KeyboardInterrupt):
        model.fit(noisy, steps=4, seed=3, progress=False, distil_steps=0, checkpoint=ckpt,
                  checkpoint_every=2, callback=_interrupt_at(2))
    model.fit(noisy, steps=4, seed=3, progress=False, distil_steps=0, checkpoint=ckpt,
              checkpoint_every=2)
    assert model.history[-1]["resumed_at_step"] == 2


def test_interrupted_distillation_of_the_same_model_resumes(tmp_path, noisy, monkeypatch):
    from tdrdenoise import _model_fit  # where TDRModel.fit is written

    ckpt = tmp_path / "train.ckpt"
    model = TDRModel(**TINY)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(_model_fit, "distil_model", interrupted)
        with pytest.raises(KeyboardInterrupt):
            model.fit(noisy, steps=3, seed=3, progress=False, distil_steps=2,
                      checkpoint=ckpt)
    steps_run = []
    with pytest.warns(TDRUserWarning, match="resumed, not trained again"):
        model.fit(noisy, steps=3, seed=3, progress=False, distil_steps=0, checkpoint=ckpt,
                  callback=steps_run.append)
    assert steps_run == [] and model.history[-1]["resumed_at_step"] == 3


def test_non_finite_weights_are_never_checkpointed_as_finished(tmp_path, noisy):
    """Weights that become non-finite at the last step: the fit fails and the
    checkpoint keeps the last good (unfinished) state, not a finished NaN one."""
    from tdrdenoise.training.self2self import _read_checkpoint

    ckpt = tmp_path / "train.ckpt"
    model = TDRModel(**TINY)

    def poison(step):
        if step == 3:
            with torch.no_grad():
                next(model.network.parameters()).fill_(float("nan"))

    with pytest.raises(FloatingPointError, match="non-finite weights"):
        model.fit(noisy, steps=3, seed=0, progress=False, distil_steps=0,
                  checkpoint=ckpt, checkpoint_every=2, callback=poison)
    state = _read_checkpoint(ckpt)
    assert state["step"] == 2 and state["steps"] == 3
    assert all(bool(torch.isfinite(t).all()) for t in state["net"].values()
               if t.is_floating_point())
    other = tmp_path / "other.ckpt"
    with pytest.raises(FloatingPointError, match="non-finite weights"):
        model.fit(noisy, steps=3, seed=0, progress=False, distil_steps=0,
                  checkpoint=other, checkpoint_every=100, callback=poison)
    assert not other.exists()
