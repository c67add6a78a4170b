"""Self2Self training, its checkpoints and its checks (plain arrays in).

:func:`train` runs the loop of ``loop.py`` (shared with the distillation) and
fits a :class:`~tdrdenoise.network.SelfToSelfUNet` to one normalised
image: random crops with their eight flips/transposes, a Bernoulli mask over the
input, the loss on the dropped pixels only, Adam with a cosine learning-rate schedule.
With ``checkpoint`` it saves the whole state (weights, optimizer, random generators,
step, losses) every ``checkpoint_every`` steps and resumes from such a file, giving
the result of an uninterrupted run.
"""
import copy
import hashlib
import json
import os
import time
import warnings

import numpy as np
import torch

from ..prediction.ensemble import new_seed, shuffle_split  # noqa: F401
from ..prediction.noise import box_sums  # noqa: F401
from .loop import LR_FLOOR, crop_positions, draw_batch, run  # noqa: F401
from .._progress import progress_bar
from ..utils import TDRUserWarning, atomic_open

__all__ = []

_CHECKPOINT_MAGIC = "tdrdenoise-checkpoint"
_CHECKPOINT_VERSION = 1


def check_weights(net, what="the network"):
    """Raise FloatingPointError if any weight of ``net`` is NaN or infinite."""
    for name, tensor in net.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise FloatingPointError(
                f"{what} has non-finite weights ({name}): training diverged, most often "
                "because of extreme pixel values; mask them, lower outlier_threshold or "
                "the learning rate")


def _identity(images, valids, settings):
    digest = hashlib.sha256()
    for z, valid in zip(images, valids):
        digest.update(np.ascontiguousarray(z, np.float32).tobytes())
        digest.update(np.ascontiguousarray(valid, bool).tobytes())
        digest.update(repr(z.shape).encode())
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()


def checkpoint_seed(path):
    """The seed recorded in the checkpoint at ``path``, or None if there is none."""
    if path is None or not os.path.isfile(path):
        return None
    return _read_checkpoint(path).get("seed")


def _finished(state):
    """Whether a checkpoint's state is that of a finished training (checkpoints of
    tdrdenoise before this record carry no total and count as unfinished)."""
    return state.get("steps") is not None and state.get("step") == state.get("steps")


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except (OSError, TypeError, ValueError):
        return False


def discard_own_checkpoint(model, checkpoint):
    """Remove ``checkpoint`` before ``model`` trains again if it holds the finished,
    unsaved training of ``model``'s own last :meth:`~tdrdenoise.TDRModel.fit`: the new
    fit replaces those weights anyway, and the checkpoint must not be taken for the
    next run (refused as another image's, or resumed as a finished run). A checkpoint
    of an interrupted or failed fit, or of another model or process, is never removed
    here. Returns whether it was removed."""
    own = getattr(model, "_finished_checkpoint", None)
    pending = getattr(model, "pending_checkpoint", None)
    model._finished_checkpoint = None
    if checkpoint is None or own is None or pending is None:
        return False
    checkpoint = os.fspath(checkpoint)
    if not (_same_file(own, checkpoint) and _same_file(pending, checkpoint)):
        return False
    try:
        finished = _finished(_read_checkpoint(checkpoint))
    except ValueError:
        return False
    if not finished:
        return False
    try:
        os.unlink(checkpoint)
    except FileNotFoundError:
        pass
    model.pending_checkpoint = None
    return True


def _read_checkpoint(path):
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds on garbage
        raise ValueError(f"checkpoint {path} is not readable ({type(exc).__name__}); delete "
                         "it to start afresh") from None
    if not isinstance(state, dict) or state.get("format") != _CHECKPOINT_MAGIC \
            or state.get("version") != _CHECKPOINT_VERSION:
        raise ValueError(f"{path} is not a tdrdenoise training checkpoint; pass another "
                         "checkpoint path")
    return state


def train(net, z, valid, *, steps, seed, learning_rate, keep_prob, patch_size, batch_size,
          device, history, action="fit", schedule=True, progress=None, callback=None,
          checkpoint=None, checkpoint_every=100, settings=None):
    """Train ``net`` in place on one normalised image.

    Parameters
    ----------
    net : SelfToSelfUNet
    z : ndarray of float32, or a list of them
        Normalised image (or the sub-images of a pixel-shuffled one); zero where
        ``valid`` is False.
    valid : ndarray of bool, or a list of them
        Pixels the network may see and be scored on.
    history : list
        The record of this run (a dict) is appended to it, also when interrupted.
    callback : callable, optional
        Called with the number of steps done after each step.
    checkpoint : str or path-like, optional
        Resume from this file if it exists; save to it every ``checkpoint_every``
        steps and once more at the end. It is kept: :func:`tdrdenoise.model_io.save`
        removes it once the model is saved.
    settings : dict, optional
        Further settings (architecture, normalisation) a checkpoint must match.

    Raises
    ------
    FloatingPointError
        If the loss or the final weights are not finite.
    ValueError
        If ``checkpoint`` was written for another image, other settings or another
        seed.
    """
    rng = np.random.default_rng(seed)
    p = patch_size
    # one image, or the sub-images of a pixel-shuffled one: crops come from any of them
    images = list(z) if isinstance(z, (list, tuple)) else [z]
    valids = list(valid) if isinstance(valid, (list, tuple)) else [valid]
    images_t, where = [], []
    for k, (zi, vi) in enumerate(zip(images, valids)):
        h, w = zi.shape
        if h < p or w < p:  # small images: pad once with invalid pixels
            pad = ((0, max(p - h, 0)), (0, max(p - w, 0)))
            zi, vi = np.pad(zi, pad), np.pad(vi, pad)
        ys, xs = crop_positions(vi, p)
        where.append(np.stack([np.full(ys.size, k), ys, xs], 1))
        images_t.append((torch.from_numpy(np.ascontiguousarray(zi, np.float32)),
                         torch.from_numpy(np.ascontiguousarray(vi))))
    where = np.concatenate(where)
    shape = list(images[0].shape) if len(images) == 1 else [len(images)] + list(
        images[0].shape)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
    gen = torch.Generator().manual_seed(int(rng.integers(2**63)))
    torch_seed = int(rng.integers(2**63))
    cuda = device.type == "cuda"
    identity = None
    if checkpoint is not None:
        checkpoint = os.fspath(checkpoint)
        checkpoint_every = int(checkpoint_every)
        if checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be at least 1; got {checkpoint_every}")
        identity = _identity(images, valids, dict(
            settings or {}, steps=int(steps), learning_rate=learning_rate,
            keep_prob=keep_prob, patch_size=p, batch_size=batch_size, schedule=schedule,
            action=action))
    losses, start, resumed = [], 0, None
    t0 = time.perf_counter()
    bar = progress_bar(steps, f"tdrdenoise {action}", progress)
    done = 0
    try:
        with torch.random.fork_rng(devices=[device] if cuda else []):
            torch.manual_seed(torch_seed)
            if checkpoint is not None and os.path.isfile(checkpoint):
                state = _read_checkpoint(checkpoint)
                finished = _finished(state)
                unsaved = (f"checkpoint {checkpoint} holds a finished, unsaved training "
                           f"({state.get('step')} steps, seed={state.get('seed')})")
                if state.get("identity") != identity:
                    if finished:
                        raise ValueError(
                            f"{unsaved} of another image or other training settings: "
                            "save it (the fit call that made it resumes it at once; "
                            "then save the model) or delete the checkpoint, or pass "
                            "another checkpoint path")
                    raise ValueError(
                        f"checkpoint {checkpoint} was written for another image or other "
                        "training settings; delete it, or pass another checkpoint path")
                if state.get("seed") != seed:
                    if finished:
                        raise ValueError(
                            f"{unsaved}, not seed={seed}: save it (fit again with "
                            f"seed={state.get('seed')} or seed=None, which resumes it at "
                            "once, then save the model) or delete the checkpoint, or "
                            "pass another checkpoint path")
                    raise ValueError(f"checkpoint {checkpoint} was written with seed="
                                     f"{state.get('seed')}, not seed={seed}; pass that seed "
                                     "(or seed=None) to resume")
                if finished:
                    warnings.warn(
                        f"{unsaved}: it is resumed, not trained again; save the model "
                        "(which removes the checkpoint), or delete the checkpoint to "
                        "train afresh", TDRUserWarning)
                net.load_state_dict(state["net"])
                opt.load_state_dict(state["optimizer"])
                rng.bit_generator.state = state["numpy_rng"]
                gen.set_state(state["mask_rng"])
                torch.set_rng_state(state["torch_rng"])
                if cuda and state.get("cuda_rng") is not None:
                    torch.cuda.set_rng_state(state["cuda_rng"], device)
                losses, start = list(state["losses"]), int(state["step"])
                resumed = done = start
                bar.update(start)

            def loss_of(batch):
                x, v = batch
                keep = (torch.rand(x.shape, generator=gen) < keep_prob).to(device) & v
                target = (v & ~keep).float()
                out = net(x, keep.float())
                return ((out - x) ** 2 * target).sum() / target.sum().clamp(min=1)

            def after_step(count):
                nonlocal done
                done = count
                if checkpoint is not None and done % checkpoint_every == 0 and done < steps:
                    _save_checkpoint(checkpoint, identity, seed, done, net, opt, rng, gen,
                                     losses, device if cuda else None, steps)
                bar.update()
                if callback is not None:
                    callback(done)

            run(opt, loss_of, steps=steps, start=start, learning_rate=learning_rate,
                schedule=schedule, losses=losses, what="training",
                draw=lambda: draw_batch(rng, images_t, where, p, batch_size, device),
                hint=": the input holds values the network cannot handle, most often "
                     "extreme pixels (fill values, saturation); mask them or lower the "
                     "model's outlier_threshold", after_step=after_step)
            # checked before the finished state is stored: a diverged network is
            # never kept as a finished training
            check_weights(net, f"the network after {done} training steps")
            if checkpoint is not None and done == steps and resumed != steps:
                # the finished state: a run that fails after this (distillation,
                # saving) loses no training; the same call resumes here at once
                _save_checkpoint(checkpoint, identity, seed, done, net, opt, rng, gen,
                                 losses, device if cuda else None, steps)
    except KeyboardInterrupt:
        warnings.warn(f"training interrupted after {done} of {steps} steps; the model "
                      "keeps the weights learned so far", TDRUserWarning)
        raise
    finally:
        bar.close()
        record = {"action": action, "steps": done, "seed": seed,
                  "learning_rate": learning_rate, "patch_size": p,
                  "batch_size": batch_size, "image_shape": shape,
                  "seconds": round(time.perf_counter() - t0, 3),
                  "final_loss": float(np.mean(losses[-50:])) if losses else None}
        if resumed is not None:
            record["resumed_at_step"] = resumed
        history.append(record)
    return record


def _save_checkpoint(path, identity, seed, step, net, opt, rng, gen, losses, cuda_device,
                     steps):
    state = {
        "format": _CHECKPOINT_MAGIC, "version": _CHECKPOINT_VERSION,
        "identity": identity, "seed": seed, "step": step, "steps": steps,
        "net": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "optimizer": opt.state_dict(),
        "numpy_rng": rng.bit_generator.state,
        "mask_rng": gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": (torch.cuda.get_rng_state(cuda_device) if cuda_device is not None
                     else None),
        "losses": list(losses),
    }
    with atomic_open(path) as fh:
        torch.save(state, fh)


def train_model(model, z, valid, *, steps, seed, learning_rate, progress, action, **kwargs):
    """Train ``model``'s network on the output of :meth:`TDRModel.network_input
    <tdrdenoise.TDRModel.network_input>` (one image, or a list of them), on the
    pixel-shuffled sub-images; returns ``model``."""
    settings = {"architecture": model.architecture, "normalization": model.normalization}
    zs = z if isinstance(z, list) else [z]
    valids = valid if isinstance(valid, list) else [valid]
    z = [part for zi in zs for part in shuffle_split(zi, model.stride)]
    valid = [part for vi in valids for part in shuffle_split(vi, model.stride)]
    checkpoint = kwargs.get("checkpoint")
    # kept until the model is saved (model_io.save removes it), so that no training is
    # lost when what follows the training fails
    model.pending_checkpoint = None if checkpoint is None else os.fspath(checkpoint)
    train(model.network, z, valid, steps=steps, seed=seed, learning_rate=learning_rate,
          keep_prob=model.keep_prob, patch_size=model.patch_size,
          batch_size=model.batch_size, device=model.device, history=model.history,
          action=action, progress=progress, settings=settings, **kwargs)
    return model


def fine_tune_arrays(model, z, valid, *, steps, seed=None, learning_rate=None,
                     progress=False):
    """A copy of ``model`` trained ``steps`` more steps at a constant learning rate
    (:meth:`TDRModel.fine_tune_arrays <tdrdenoise.TDRModel.fine_tune_arrays>`)."""
    steps = int(steps)
    if steps < 0:
        raise ValueError(f"steps must be zero or positive; got {steps}")
    new = copy.deepcopy(model)
    if steps == 0:
        return new
    new.student = None  # it reproduces the base network, not the tuned one
    lr = model.learning_rate * 0.1 if learning_rate is None else float(learning_rate)
    seed = new_seed() if seed is None else int(seed)
    return train_model(new, z, valid, steps=steps, seed=seed, learning_rate=lr,
                       progress=progress, action="fine_tune", schedule=False)
