"""TDRModel: the Self2Self network and what it learned (the "T" of TDR).

A thin facade: the training loop and fine-tuning live in ``training/self2self.py``,
the prediction in ``prediction/pipeline.py`` (on top of the Monte-Carlo ensemble of
``prediction/ensemble.py``),
model files in :mod:`tdrdenoise.model_io` (which reads plain state:
:meth:`TDRModel.load` assembles the model from it), the scaling of pixel values in
``prediction/normalization.py`` and the checks of the settings in ``_validate.py``.
"""
import hashlib
import os

import torch
from astropy import units as u

from . import model_io
from ._defaults import (DEFAULT_CHECKPOINT_EVERY, DEFAULT_DISTIL_STEPS,  # noqa: F401
                        DEFAULT_FINE_TUNE_STEPS, DEFAULT_N_PREDICTIONS, DEFAULT_STEPS,
                        DEFAULT_STUDENT_WIDTH, DEFAULT_TILE_SIZE)
from .io.containers import check_image, series_names, unpack, unpack_images
from .training.distil import distil_model
from .prediction.ensemble import GRID
from .prediction.normalization import (BRIGHT_THRESHOLD, OUTLIER_THRESHOLD, describe_noise,
                                       make_normalization, network_input, noise_in_image_unit)
from .prediction.pipeline import predict_arrays, predict_image
from .training.self2self import (checkpoint_seed, discard_own_checkpoint, fine_tune_arrays,
                                 new_seed, train_model)
from ._validate import check_model_settings, check_student_width
from .model_io import FILE_FORMAT_VERSION  # noqa: F401  (kept importable from here)
from .training.network import SelfToSelfUNet
from .utils import resolve_device

__all__ = ["TDRModel"]

# DEFAULT_STEPS, DEFAULT_FINE_TUNE_STEPS, DEFAULT_DISTIL_STEPS, DEFAULT_STUDENT_WIDTH,
# DEFAULT_TILE_SIZE and DEFAULT_CHECKPOINT_EVERY live in _defaults.py (no torch there:
# the command line's --help reads them); they stay importable from here.


def _unit_factor(unit, to, name):
    """Factor converting ``unit`` to ``to`` (1 when either is None)."""
    if unit is None or to is None or unit == to:
        return 1.0
    try:
        return float(unit.to(to))
    except u.UnitConversionError as exc:
        raise u.UnitsError(f"{name} is in '{unit}' but the model was trained on "
                           f"images in '{to}'") from exc


class TDRModel:
    """A Self2Self denoiser trained on one noisy image (the TDR method).

    The network is the U-Net of Liu, Quan et al. (2025): a partial-convolution
    encoder of seven layers and five max-pools, a decoder with dropout before every
    convolution. It learns from a single noisy image by predicting pixels hidden by a
    Bernoulli mask from the pixels kept, with flips and transposes as augmentation.
    Training uses random crops of the image in minibatches and a cosine learning-rate
    schedule, which reaches the full-image quality in a fraction of the time.

    Parameters
    ----------
    width : int, optional
        Encoder channels (48 in the paper; the decoder uses twice as many); at most
        512, what a model file holds.
    dropout : float, optional
        Decoder dropout probability (0.3 in the paper).
    keep_prob : float, optional
        Probability that the Bernoulli mask keeps an input pixel (0.7 in the paper).
    patch_size : int, optional
        Side of the random training crops, in pixels (rounded up to a multiple of 32);
        at most 8192.
    batch_size : int, optional
        Crops per training step; at most 4096.
    learning_rate : float, optional
        Peak Adam learning rate; it decays along a cosine to 1 % of that.
    device : str or `torch.device`, optional
        ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"``, ...
    outlier_threshold : float, optional
        Pixels farther than this many noise sigmas from the image median (default
        1000) are treated as masked: fill values such as -1e30 or 65535 must not
        reach the network. They come out unchanged, with a warning giving their
        count. ``np.inf`` shows the network every finite pixel.
    bright_threshold : float, optional
        Pixels farther than this many noise sigmas of the training image from its
        median (default 20: stars, galaxy cores, sunspots, cosmic rays) are held out:
        the network neither sees nor learns from them, and the Wiener refinement
        denoises them without it (they come back as observed with ``refine=False``)
        (not masked). Without this, a few bright sources dominate the squared-error
        loss and the background is poorly denoised. Images dominated by impulse noise
        (salt and pepper) hold nothing out. ``np.inf`` holds nothing out.
    pixel_shuffle : {"auto", 1, 2, 3, 4}, optional
        Stride of pixel-shuffled sub-images the network works on. Noise correlated
        between neighbouring pixels (reprojected maps such as HMI SHARP cutouts,
        interpolated or binned data) defeats the blind-spot principle: the network
        predicts a hidden pixel's noise from its neighbours. On the sub-images of
        every second pixel the neighbours are two pixels apart. ``"auto"`` (default)
        measures the correlation of the training image's noise between neighbours
        and takes 2 when it exceeds 0.3, 3 when it exceeds 0.65 (noise still
        correlated two pixels apart), else 1 (white noise).
    impulse_noise : {"auto", True, False}, optional
        Whether the training image carries impulse noise (salt and pepper): its
        impulse pixels are then hidden from the network and inpainted, nothing bright
        is held out and the stride is 1. ``"auto"`` (default) decides from the image:
        at least 2.5 % of the pixels lie more than 5 noise sigmas from the median of
        their 3 x 3 neighbours *and* they are scattered at random, not side by side
        as on the edges of sunspots, plage, stars and galaxy cores (no real frame of
        HMI, MDI or HST we test on is taken for impulse noise). What was detected is
        in :attr:`noise_description`, the ``repr`` and the header record.
    student_width : int, optional
        Encoder channels (2 to 512) of the student that :meth:`fit` distils (see
        :meth:`distil`); its decoder has twice as many.

    Attributes
    ----------
    normalization : dict or None
        ``{"transform": "linear", "median": ..., "scale": ..., "outlier_threshold":
        ..., "bright_threshold": ..., "pixel_shuffle": ...}`` of the training image, in
        its unit: images are fed to the network as ``(image - median) / scale``, where
        ``scale`` is a robust estimate of the noise, on sub-images of stride
        ``pixel_shuffle``. None before :meth:`fit`.
    unit : `~astropy.units.Unit` or None
        Unit of the training image.
    student : `~tdrdenoise.network.StudentUNet` or None
        The student distilled from the network's ensemble (None without one).
    history : list of dict
        One record per :meth:`fit` or :meth:`fine_tune` call (steps, seed, seconds,
        final loss, image shape).

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise import TDRModel
    >>> rng = np.random.default_rng(0)
    >>> yy, xx = np.mgrid[:64, :64]
    >>> truth = np.sin(xx / 6.0) * np.cos(yy / 9.0)
    >>> noisy = truth + rng.normal(0, 0.3, truth.shape)
    >>> model = TDRModel(device="cpu").fit(noisy, steps=5, seed=1, progress=False)
    >>> mean, std = model.predict(noisy, n_predictions=2, seed=1, progress=False)
    >>> mean.shape, std.shape
    ((64, 64), (64, 64))
    """

    def __init__(self, width=48, dropout=0.3, keep_prob=0.7, patch_size=64, batch_size=8,
                 learning_rate=1e-3, device="auto", outlier_threshold=OUTLIER_THRESHOLD,
                 bright_threshold=BRIGHT_THRESHOLD, pixel_shuffle="auto",
                 student_width=DEFAULT_STUDENT_WIDTH, impulse_noise="auto"):
        check_model_settings(width=width, dropout=dropout, keep_prob=keep_prob,
                             patch_size=patch_size, batch_size=batch_size,
                             outlier_threshold=outlier_threshold,
                             bright_threshold=bright_threshold, pixel_shuffle=pixel_shuffle,
                             impulse_noise=impulse_noise, learning_rate=learning_rate)
        self.student_width = check_student_width(student_width)
        self.architecture = {"name": "self2self-unet", "width": int(width),
                             "dropout": float(dropout)}
        self.keep_prob = float(keep_prob)
        self.patch_size = -(-int(patch_size) // GRID) * GRID
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self.outlier_threshold = float(outlier_threshold)
        self.bright_threshold = float(bright_threshold)
        self.pixel_shuffle = pixel_shuffle if pixel_shuffle == "auto" else int(pixel_shuffle)
        self.impulse_noise = impulse_noise
        self.device = resolve_device(device)
        self.normalization = None
        self.unit = None
        self.history = []
        self.path = None
        #: the checkpoint of the last fit, removed by save once the model is written
        self.pending_checkpoint = None
        self._finished_checkpoint = None
        self._net = SelfToSelfUNet(width, dropout).to(self.device)
        self.student = None

    # ------------------------------------------------------------------ helpers
    @property
    def network(self):
        """The `~tdrdenoise.network.SelfToSelfUNet` (a `torch.nn.Module`)."""
        return self._net

    @property
    def is_fitted(self):
        """True once the model was trained (or loaded)."""
        return self.normalization is not None

    def check_fitted(self, what):
        """Raise RuntimeError, naming ``what``, if the model is not trained."""
        if not self.is_fitted:
            raise RuntimeError(f"TDRModel.{what} needs a trained model: call fit() or "
                               "TDRModel.load() first")

    @property
    def fingerprint(self):
        """Short SHA-256 of the weights: names the model in provenance records."""
        digest = hashlib.sha256()
        nets = [("", self._net)]
        if self.student is not None:
            nets.append(("student.", self.student))
        for prefix, net in nets:
            for name, tensor in sorted(net.state_dict().items()):
                digest.update((prefix + name).encode())
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:12]

    def unit_factor(self, unit, name="image"):
        """Factor converting ``unit`` to the model unit (1 when either is None).

        Raises
        ------
        astropy.units.UnitsError
            If ``unit`` cannot be converted to the model's unit.
        """
        return _unit_factor(unit, self.unit, name)

    def network_input(self, data, invalid, factor=1.0, name="image"):
        """(z, valid, extreme, impulse) of an image array for this model's network."""
        return network_input(data, invalid, self.normalization, factor, name)

    @property
    def noise_description(self):
        """What the noise detection found on the training image, in words (None before
        :meth:`fit`): the noise type (white, correlated, impulse), what was measured,
        the pixel-shuffle stride and the bright pixels held out.

        Examples
        --------
        >>> import numpy as np
        >>> from tdrdenoise import TDRModel
        >>> noisy = np.random.default_rng(0).normal(size=(48, 48))
        >>> model = TDRModel(device="cpu").fit(noisy, steps=1, seed=0, progress=False)
        >>> model.noise_description.split(" (")[0]
        'white noise'
        """
        if not self.is_fitted:
            return None
        return describe_noise(self.normalization)

    # ------------------------------------------------------------------ training
    @property
    def stride(self):
        """The pixel-shuffle stride the network works at (1 before :meth:`fit`)."""
        return int(self.normalization.get("pixel_shuffle", 1)) if self.is_fitted else 1

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
                factors.append(_unit_factor(other.unit, img.unit, name))
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
        z, valid, _, impulse = self.network_input(img.data, img.invalid)
        zs, valids = [z], [valid]
        for other, factor, name in zip(imgs[1:], factors[1:], names[1:]):
            zk, vk, _, _ = self.network_input(other.data, other.invalid, factor, name)
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
        z, valid, _, impulse = self.network_input(img.data, img.invalid,
                                                  self.unit_factor(img.unit, "image"))
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
        z, valid, _, _ = self.network_input(img.data, img.invalid,
                                            self.unit_factor(img.unit, "image"))
        return self.fine_tune_arrays(z, valid, steps=steps, seed=seed,
                                     learning_rate=learning_rate, progress=progress)

    def fine_tune_arrays(self, z, valid, *, steps, seed=None, learning_rate=None,
                         progress=False):
        """:meth:`fine_tune` on the output of :meth:`network_input`."""
        return fine_tune_arrays(self, z, valid, steps=steps, seed=seed,
                                learning_rate=learning_rate, progress=progress)

    # ------------------------------------------------------------------ prediction
    def predict(self, image, *, method="auto", n_predictions=None, seed=None,
                tile_size=DEFAULT_TILE_SIZE, progress=None, calibrate=True, refine=True):
        """The denoised image and its uncertainty, without restoring.

        With ``method="ensemble"`` the Monte-Carlo dropout ensemble: each of the
        ``n_predictions`` passes draws a new Bernoulli input mask and new dropout
        masks and sees the image in one of its eight flips/transposes. With
        ``method="student"`` one pass of the student distilled from that ensemble
        (see :meth:`distil`), which gives its mean and spread about 16 times faster.
        Large images are processed in tiles with a context margin wider than the
        network's receptive field, so the result does not depend on the tiling.

        Parameters
        ----------
        image : CCDData, NDData, sunpy Map, Quantity or array-like
            The noisy image, in a unit convertible to the model's.
        method : {"auto", "student", "ensemble"}, optional
            ``"auto"`` takes the student when the model has one and
            ``n_predictions`` is not given, else the ensemble.
        n_predictions : int, optional
            Number of passes averaged by the ensemble (default 16).
        seed : int, optional
            Seed of the masks and dropout: the same seed gives the same result (the
            student is deterministic).
        tile_size : int, optional
            Side of the tile cores in pixels (default 1024); larger is a little faster,
            smaller uses less memory. Images no larger than the tile plus its margins
            are processed whole.
        progress : bool or None, optional
            Show a progress bar; None shows it only on a terminal.
        calibrate : bool, optional
            Level calibration (default True): in each band of denoised level where
            the network's values are measurably worse than the noise (the peaks of
            stars, strong fields, which it pulls toward the bulk of the image), give
            back the share of the observation that minimises the expected squared
            error, measured on this image (see :ref:`level calibration
            <level-calibration>`). Where the network is as good as elsewhere nothing
            changes. False returns the network's values as they are.
        refine : bool, optional
            Wiener refinement (default True): the network's (calibrated) estimate
            is the pilot of an empirical Wiener filter of the image in sliding 12 x 12
            DCT windows, which gives back, frequency by frequency, the observation
            wherever the pilot shows structure above the noise (see :ref:`Wiener
            refinement <wiener-refinement>`). Only the mean changes. False skips it.

        Returns
        -------
        mean, std : ndarray or `~astropy.units.Quantity`
            Ensemble mean and per-pixel standard deviation (or the student's
            estimates of them), in the unit of ``image``
            (Quantities when ``image`` is one), of the dtype described in
            :func:`~tdrdenoise.tdr_denoise`. Invalid and extreme input pixels keep
            their input value in ``mean`` and are NaN in ``std``; ``std`` is NaN
            when ``n_predictions`` is 1.

        Raises
        ------
        RuntimeError
            If the model is not trained.
        ValueError, TypeError, astropy.units.UnitsError
            For a bad image, unit, ``method`` or ``n_predictions``, a ``calibrate``
            or ``refine`` other than True or False, or ``method="student"`` on a model
            without a student.

        Examples
        --------
        >>> import numpy as np
        >>> from tdrdenoise import TDRModel
        >>> noisy = np.random.default_rng(0).normal(size=(40, 50))
        >>> model = TDRModel(device="cpu").fit(noisy, steps=2, seed=0, progress=False)
        >>> mean, std = model.predict(noisy, n_predictions=3, seed=0, progress=False)
        >>> mean.shape == noisy.shape, bool((std >= 0).all())
        (True, True)
        >>> fast, fast_std = model.predict(noisy, method="student")
        >>> fast.shape == noisy.shape, bool((fast_std > 0).all())
        (True, True)
        """
        return predict_image(self, image, method=method, n_predictions=n_predictions,
                             seed=seed, tile_size=tile_size, progress=progress,
                             calibrate=calibrate, refine=refine)

    def predict_arrays(self, z, valid, factor=1.0, *, method="ensemble",
                       n_predictions=DEFAULT_N_PREDICTIONS, seed=None,
                       tile_size=DEFAULT_TILE_SIZE, progress=None, calibrate=True,
                       refine=True, held=None):
        """:meth:`predict` on the output of :meth:`network_input`: float64 arrays in the
        image unit, meaningful where ``valid`` (``method`` is ``"student"`` or
        ``"ensemble"``; ``calibrate`` and ``refine`` as in :meth:`predict`, measured
        on the pixels flagged by ``valid``; ``held``: the network-unit values of the
        bright pixels held out of the network, NaN elsewhere, which the refinement
        denoises too, their mean NaN where it did not)."""
        return predict_arrays(self, z, valid, factor, method=method,
                              n_predictions=n_predictions, seed=seed,
                              tile_size=tile_size, progress=progress,
                              calibrate=calibrate, refine=refine, held=held)

    def noise_scale(self, factor=1.0):
        """The training image's noise in the unit of an image (``factor`` converts it)."""
        return noise_in_image_unit(self.normalization, factor)

    # ------------------------------------------------------------------ files
    def to_bytes(self):
        """The model file as bytes (see :func:`tdrdenoise.model_io.to_bytes`).

        Returns
        -------
        bytes

        Examples
        --------
        >>> import numpy as np
        >>> from tdrdenoise import TDRModel
        >>> model = TDRModel(device="cpu").fit(np.random.default_rng(0).normal(size=(32, 32)),
        ...                                    steps=1, seed=0, progress=False)
        >>> TDRModel.from_bytes(model.to_bytes(), device="cpu").fingerprint == model.fingerprint
        True
        """
        return model_io.to_bytes(self)

    @classmethod
    def from_bytes(cls, data, device="auto", sha256=None):
        """A model from the bytes of :meth:`to_bytes` (see :func:`tdrdenoise.model_io.from_bytes`).

        Parameters
        ----------
        data : bytes
            The bytes of a model file.
        device : str or `torch.device`, optional
            Where to put the network (``"auto"``: CUDA when present).
        sha256 : str, optional
            The SHA-256 the data must have, as :meth:`load` takes it: data that
            differ are refused.

        Returns
        -------
        TDRModel

        Raises
        ------
        ValueError
            If the data are not a valid model, or differ from ``sha256`` (see
            :meth:`load`).

        Examples
        --------
        >>> import hashlib
        >>> import numpy as np
        >>> from tdrdenoise import TDRModel
        >>> model = TDRModel(device="cpu").fit(np.random.default_rng(0).normal(size=(32, 32)),
        ...                                    steps=1, seed=0, progress=False)
        >>> data = model.to_bytes()
        >>> digest = hashlib.sha256(data).hexdigest()
        >>> TDRModel.from_bytes(data, device="cpu", sha256=digest).fingerprint == model.fingerprint
        True
        """
        device = resolve_device(device)
        return cls._from_state(model_io.state_from_bytes(data, sha256=sha256), device)

    def save(self, path, overwrite=False):
        """Write the weights and their metadata to ``path``, atomically.

        The file (model file format 4: a safetensors file, read back without running
        any code; see :mod:`tdrdenoise.model_io`) records the package version, the
        architecture, the normalisation, the unit, the training history and a
        SHA-256 checksum of all of it. It is written to a temporary file in the same
        folder and then, with ``overwrite=False``, created exclusively (a hard link):
        a file that another process writes under ``path`` meanwhile is kept and
        `FileExistsError` raised, never silently replaced; a crash never leaves a
        half-written model. Once the model is written, the checkpoint of the
        :meth:`fit` that made it is removed (a checkpoint that cannot be removed
        gives a `~tdrdenoise.TDRUserWarning`); if the save fails, the checkpoint is
        kept.

        Parameters
        ----------
        path : str or path-like
            Output file (conventionally ``*.tdr``).
        overwrite : bool, optional
            Replace an existing file.

        Raises
        ------
        RuntimeError
            If the model is not trained.
        FileExistsError
            If ``path`` exists, or was created by another process while writing, and
            ``overwrite`` is False (a subclass of `OSError`).
        PermissionError, OSError
            If the file cannot be written (no permission, read-only file system,
            disk full); the message names ``path`` and its folder.
        ValueError
            If the weights or the normalisation are not finite, or a setting lies
            outside what a model file holds (width, student width and head 512,
            patch size 8192, batch size 4096: changed after construction), which
            :meth:`load` would refuse; nothing is written then.

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> from tdrdenoise import TDRModel
        >>> model = TDRModel(device="cpu").fit(np.random.default_rng(0).normal(size=(32, 32)),
        ...                                    steps=1, seed=0, progress=False)
        >>> path = os.path.join(tempfile.mkdtemp(), "model.tdr")
        >>> model.save(path)
        >>> TDRModel.load(path).fingerprint == model.fingerprint
        True
        """
        model_io.save(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path, device="auto", sha256=None):
        """Read a model written by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
            A ``.tdr`` file.
        device : str or `torch.device`, optional
            Where to put the network (``"auto"``: CUDA when present).
        sha256 : str, optional
            The SHA-256 of the whole file, as its author gave it (``sha256sum``):
            a file that differs is refused. The checksum inside every file detects
            damage only; anyone can recompute it (see :mod:`tdrdenoise.model_io`).

        Returns
        -------
        TDRModel

        Raises
        ------
        FileNotFoundError
            If there is no such file.
        ValueError
            If the file is not a tdrdenoise model, fails its checksum ("checksum
            mismatch": corrupt or altered), has missing or malformed metadata or
            non-finite weights, or was written by a newer file format. Files of
            format 1 (no checksum) load with a `~tdrdenoise.TDRUserWarning`.

        Examples
        --------
        See :meth:`save`.
        """
        device = resolve_device(device)  # a bad device fails before the file is read
        return cls._from_state(model_io.read_state(path, sha256=sha256), device)

    @classmethod
    def _from_state(cls, state, device):
        """The model a `~tdrdenoise.model_io.ModelState` describes (what
        :func:`~tdrdenoise.model_io.read_state` read), on ``device``."""
        model = cls(device=device, **state.constructor)
        model_io.load_weights(model.network, state.state_dict, state.source)
        model.network.to(model.device)
        model.student = model_io.build_student(state, model.device)
        if model.student is not None:
            model.student_width = model.student.width
        model.normalization = state.normalization
        model.outlier_threshold = state.normalization["outlier_threshold"]
        model.bright_threshold = state.normalization["bright_threshold"]
        model.pixel_shuffle = state.normalization["pixel_shuffle"]
        model.impulse_noise = state.normalization["impulse_noise"]
        model.unit = state.unit
        model.history = state.history
        model.path = state.path
        return model

    def __repr__(self):
        state = "untrained"
        if self.is_fitted:
            steps = sum(h["steps"] for h in self.history if h.get("action") != "distil")
            unit = f", unit='{self.unit}'" if self.unit is not None else ""
            state = f"trained {steps} steps{unit}"
            if self.student is not None:
                state += f", student width={self.student.width}"
            state += f", {describe_noise(self.normalization, short=True)}"
        return (f"<TDRModel width={self.architecture['width']} device={self.device.type} "
                f"{state}>")
