"""The training methods of :class:`~tdrdenoise.TDRModel` (the "T" of TDR): ``fit``,
``distil`` and ``fine_tune``, written here and bound in the class body of ``model.py``.

Each one takes the image containers apart (``io/containers.py``), normalises the
image (``prediction/normalization.py``) and hands plain arrays to the training
stages of ``tdrdenoise/training/``.
"""
import os

import torch
from astropy import units as u

from ._defaults import (DEFAULT_CHECKPOINT_EVERY, DEFAULT_DISTIL_STEPS,
                        DEFAULT_FINE_TUNE_STEPS, DEFAULT_STEPS)
from .io.containers import check_image, series_names, unit_factor, unpack, unpack_images
from .prediction.ensemble import new_seed
from .prediction.normalization import make_normalization, network_input
from .training.distil import distil_model
from .training.network import SelfToSelfUNet
from .training.self2self import (checkpoint_seed, discard_own_checkpoint, fine_tune_arrays,
                                 train_model)

__all__ = []


def fit(self, image, *, steps=DEFAULT_STEPS, seed=None, learning_rate=None,
        progress=None, checkpoint=None, checkpoint_every=DEFAULT_CHECKPOINT_EVERY,
        callback=None, distil_steps=None):
    """Train the network from scratch on one noisy image (or a few of the same
    kind), then distil the fast student from it.

    Invalid pixels (NaN, inf, or masked in a CCDData/NDData/Map/masked array) and
    extreme pixels (see ``outlier_threshold``) are neither shown to the network
    nor used in the loss. The normalisation (median and robust noise scale) and
    the unit of ``image`` are stored.

    Given a list of images (a series: exposures of one field, magnetograms of one
    instrument), the network trains on random crops of all of them (each valid
    crop position of any image equally likely). The first image sets the
    normalisation, the pixel-shuffle stride and the unit (the others are
    converted to it), and the student is distilled on it: put the image most like
    those you will denoise first. Fitting on several images takes as long as on
    one; the network just sees more independent noise.

    Parameters
    ----------
    image : CCDData, NDData, sunpy Map, Quantity or array-like, or a list of them
        A 2-D noisy image (at least 16 x 16 pixels), or a list or tuple of such
        images (of any sizes).
    steps : int, optional
        Training steps (minibatches of ``batch_size`` random crops).
    seed : int, optional
        Seed for weights, crops, masks and dropout: the same seed gives the same
        model on the same machine. None draws one (or takes the checkpoint's).
    learning_rate : float, optional
        Peak learning rate; defaults to the one given at construction.
    progress : bool or None, optional
        Show a progress bar; None shows it only on a terminal.
    checkpoint : str or path-like, optional
        A file to save the training state to every ``checkpoint_every`` steps,
        atomically. If it exists, training resumes from it and gives the model an
        uninterrupted run would. It is kept after training (a failure of the
        distillation or of the save loses no training: the same call resumes
        from it) and removed by :meth:`save` once the model is written. When this
        model fits again with the same checkpoint before saving, the checkpoint of
        its own finished fit is removed first (this fit replaces those weights).
        A finished, unsaved checkpoint of another run is never discarded: the
        same image, settings and seed resume it at once (with a
        `~tdrdenoise.TDRUserWarning`; save the model then), anything else is
        refused with a message saying so.
    checkpoint_every : int, optional
        Steps between checkpoints.
    callback : callable, optional
        Called with the number of steps done after each step.
    distil_steps : int, optional
        Steps of the distillation of the student (see :meth:`distil`) once the
        network is trained; None takes 1000, or ``steps`` if fewer; 0 distils
        nothing, leaving only the Monte-Carlo ensemble.

    Returns
    -------
    self : TDRModel

    Raises
    ------
    TypeError, ValueError
        For images of the wrong kind, dimensionality or size, constant images or
        images without valid pixels (the message names the image of a list); for
        an empty list; for a checkpoint written for other images, other settings
        or another seed; for a negative ``distil_steps``.
    astropy.units.UnitsError
        If an image of a list has a unit that cannot be converted to the first's.
    FloatingPointError
        If the loss becomes non-finite (the message names the step) or training
        ends with non-finite weights; the model is then left untrained.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise import TDRModel
    >>> noisy = np.random.default_rng(0).normal(size=(48, 48))
    >>> model = TDRModel(device="cpu").fit(noisy, steps=2, seed=0, progress=False)
    >>> model.is_fitted, model.history[-1]["steps"]
    (True, 2)

    Several exposures of one field:

    >>> series = [np.random.default_rng(k).normal(size=(48, 48)) for k in range(3)]
    >>> model = TDRModel(device="cpu").fit(series, steps=2, seed=0, progress=False)
    >>> model.history[-1]["images"]
    3
    """
    imgs = unpack_images(image, "image")
    img = imgs[0]
    steps = int(steps)
    if steps < 1:
        raise ValueError(f"steps must be at least 1; got {steps}")
    distil_steps = min(DEFAULT_DISTIL_STEPS, steps) if distil_steps is None else int(
        distil_steps)
    if distil_steps < 0:
        raise ValueError(f"distil_steps must be zero or positive; got {distil_steps}")
    names = series_names(len(imgs))
    factors = []
    for other, name in zip(imgs, names):
        try:
            factors.append(unit_factor(other.unit, img.unit, name))
        except u.UnitsError:
            raise u.UnitsError(f"{name} is in '{other.unit}', which does not convert "
                               f"to the first image's '{img.unit}'; a series must "
                               "hold images of one kind") from None
    norm = make_normalization(img.data, img.invalid, self.outlier_threshold,
                              self.bright_threshold, self.pixel_shuffle,
                              self.impulse_noise)
    # the finished, unsaved checkpoint of this model's own last fit: replaced by
    # this fit (never one of an interrupted or failed fit, nor another model's)
    discard_own_checkpoint(self, checkpoint)
    if seed is None:
        seed = checkpoint_seed(checkpoint)
    seed = new_seed() if seed is None else int(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        self._net = SelfToSelfUNet(self.architecture["width"],
                                   self.architecture["dropout"]).to(self.device)
    self.normalization, self.unit, self.history, self.path = norm, img.unit, [], None
    self.student = None
    z, valid, _, impulse = network_input(img.data, img.invalid, self.normalization)
    zs, valids = [z], [valid]
    for other, factor, name in zip(imgs[1:], factors[1:], names[1:]):
        zk, vk, _, _ = network_input(other.data, other.invalid, self.normalization,
                                     factor, name)
        zs.append(zk)
        valids.append(vk)
    lr = self.learning_rate if learning_rate is None else float(learning_rate)
    try:
        train_model(self, zs, valids, steps=steps, seed=seed, learning_rate=lr,
                    progress=progress, action="fit", checkpoint=checkpoint,
                    checkpoint_every=checkpoint_every, callback=callback)
        if len(imgs) > 1:
            self.history[-1]["images"] = len(imgs)
            self.history[-1]["image_shapes"] = [list(i.data.shape) for i in imgs]
        if distil_steps:
            distil_model(self, z, valid, impulse, steps=distil_steps,
                         seed=(seed + 1) % 2**63, progress=progress)
    except (FloatingPointError, ValueError):
        self.normalization = None  # no half-trained model to save or use
        self.student = None
        raise
    self._finished_checkpoint = None if checkpoint is None else os.fspath(checkpoint)
    return self


def distil(self, image, *, steps=DEFAULT_DISTIL_STEPS, seed=None, progress=None):
    """Distil the fast student from the trained network, on ``image``.

    The network predicts ``image`` with a 16-pass Monte-Carlo ensemble (whole,
    or on four 256 x 256 windows of an image larger than 640 x 640); a
    deterministic U-Net (:class:`~tdrdenoise.network.StudentUNet`, plain
    convolutions, no input mask, no dropout, ``student_width`` channels) then
    learns on random crops of ``image`` and their flips/transposes to reproduce
    the ensemble mean and its standard deviation. One student pass then stands
    for the whole ensemble: :func:`~tdrdenoise.tdr_denoise` and :meth:`predict`
    use it by default (``method="auto"``). :meth:`fit` calls this on its
    training image; call it to give a student to a model without one (a model
    file of tdrdenoise < 0.2, or ``fit(..., distil_steps=0)``).

    Parameters
    ----------
    image : CCDData, NDData, sunpy Map, Quantity or array-like
        An image of the kind the model was trained on (its training image).
    steps : int, optional
        Distillation steps (minibatches of four 128 x 128 crops).
    seed : int, optional
        Seed of the ensemble, the student's weights and the crops.
    progress : bool or None, optional
        Show a progress bar; None shows it only on a terminal.

    Returns
    -------
    self : TDRModel

    Raises
    ------
    RuntimeError
        If the model is not trained.
    ValueError, TypeError, astropy.units.UnitsError
        For a bad image or unit, or ``steps`` below 1.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise import TDRModel
    >>> noisy = np.random.default_rng(0).normal(size=(48, 48))
    >>> model = TDRModel(device="cpu").fit(noisy, steps=2, seed=0, progress=False,
    ...                                    distil_steps=0)
    >>> model.student is None
    True
    >>> model.distil(noisy, steps=2, seed=0, progress=False).student is not None
    True
    """
    self.check_fitted("distil")
    steps = int(steps)
    if steps < 1:
        raise ValueError(f"steps must be at least 1; got {steps}")
    img = unpack(image, "image")
    check_image(img, "image")
    z, valid, _, impulse = network_input(img.data, img.invalid, self.normalization,
                                         unit_factor(img.unit, self.unit, "image"))
    seed = new_seed() if seed is None else int(seed)
    distil_model(self, z, valid, impulse, steps=steps, seed=seed, progress=progress)
    return self


def fine_tune(self, image, *, steps=DEFAULT_FINE_TUNE_STEPS, seed=None,
              learning_rate=None, progress=False):
    """A copy of this model trained a few more steps on ``image``.

    The base model is not changed, so one base model can be fine-tuned to each
    image of a series. The normalisation of the base model is kept. The copy has
    no student (that reproduces the base network): it predicts with the
    Monte-Carlo ensemble.

    Parameters
    ----------
    image : CCDData, NDData, sunpy Map, Quantity or array-like
        The image about to be denoised.
    steps : int, optional
        Fine-tuning steps; 0 returns an unchanged copy.
    seed : int, optional
        Seed for crops, masks and dropout.
    learning_rate : float, optional
        Constant learning rate; defaults to a tenth of the model's peak rate.
    progress : bool or None, optional
        Show a progress bar.

    Returns
    -------
    TDRModel
        A new model.

    Raises
    ------
    RuntimeError
        If the model is not trained.
    FloatingPointError
        If the loss becomes non-finite.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise import TDRModel
    >>> rng = np.random.default_rng(0)
    >>> base = TDRModel(device="cpu").fit(rng.normal(size=(48, 48)), steps=2,
    ...                                   seed=0, progress=False)
    >>> tuned = base.fine_tune(rng.normal(size=(48, 48)), steps=2, seed=0)
    >>> tuned is base, base.fingerprint != tuned.fingerprint
    (False, True)
    """
    self.check_fitted("fine_tune")
    img = unpack(image, "image")
    check_image(img, "image")
    z, valid, _, _ = network_input(img.data, img.invalid, self.normalization,
                                   unit_factor(img.unit, self.unit, "image"))
    return fine_tune_arrays(self, z, valid, steps=steps, seed=seed,
                            learning_rate=learning_rate, progress=progress)
