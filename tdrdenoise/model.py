"""TDRModel: the Self2Self network and what it learned (the "T" of TDR).

A thin facade: the training loop and fine-tuning live in ``training/self2self.py``,
the prediction in ``prediction/pipeline.py`` (on top of the Monte-Carlo ensemble of
``prediction/ensemble.py``),
model files in :mod:`tdrdenoise.model_io` (which reads plain state:
:meth:`TDRModel.load` assembles the model from it), the scaling of pixel values in
``prediction/normalization.py`` and the checks of the settings in ``_validate.py``.
"""
import hashlib

from astropy.utils.decorators import deprecated

from . import _model_files, _model_fit
from ._defaults import (DEFAULT_CHECKPOINT_EVERY, DEFAULT_DISTIL_STEPS,  # noqa: F401
                        DEFAULT_FINE_TUNE_STEPS, DEFAULT_N_PREDICTIONS, DEFAULT_STEPS,
                        DEFAULT_STUDENT_WIDTH, DEFAULT_TILE_SIZE)
from ._validate import check_model_settings, check_student_width
from .io.containers import unit_factor
from .model_io import FILE_FORMAT_VERSION  # noqa: F401  (kept importable from here)
from .prediction.ensemble import GRID
from .prediction.normalization import (BRIGHT_THRESHOLD, OUTLIER_THRESHOLD, describe_noise,
                                       network_input, noise_in_image_unit)
from .prediction.options import PredictionOptions
from .prediction.pipeline import predict_arrays, predict_image
from .training.network import SelfToSelfUNet
from .training.self2self import fine_tune_arrays
from .utils import resolve_device

__all__ = ["TDRModel"]

# DEFAULT_STEPS, DEFAULT_FINE_TUNE_STEPS, DEFAULT_DISTIL_STEPS, DEFAULT_STUDENT_WIDTH,
# DEFAULT_TILE_SIZE and DEFAULT_CHECKPOINT_EVERY live in _defaults.py (no torch there:
# the command line's --help reads them); they stay importable from here.


#: The release whose deprecated TDRModel methods (the array-level pass-throughs to
#: the stage functions) the next release removes.
_SINCE = "0.1"


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

    @deprecated(_SINCE, obj_type="method",
                alternative="astropy's unit.to(model.unit) (no public tdrdenoise "
                "replacement)")
    def unit_factor(self, unit, name="image"):
        """Factor converting ``unit`` to the model unit (1 when either is None).

        Raises
        ------
        astropy.units.UnitsError
            If ``unit`` cannot be converted to the model's unit.
        """
        return unit_factor(unit, self.unit, name)

    @deprecated(_SINCE, obj_type="method",
                alternative="TDRModel.predict or tdr_denoise (no public replacement of "
                "the array-level step)")
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

    @property
    def noise_sigma(self):
        """The noise sigma of a raw pixel of the training image, in the model unit
        (a float; None before :meth:`fit`): what ``NoiseMultiple`` multiplies when
        an image has no uncertainty of its own.

        Examples
        --------
        >>> import numpy as np
        >>> from tdrdenoise import TDRModel
        >>> noisy = np.random.default_rng(0).normal(0.0, 2.0, size=(48, 48))
        >>> TDRModel(device="cpu").noise_sigma is None
        True
        >>> model = TDRModel(device="cpu").fit(noisy, steps=1, seed=0, progress=False)
        >>> bool(1.8 < model.noise_sigma < 2.2)
        True
        """
        return noise_in_image_unit(self.normalization) if self.is_fitted else None

    # ------------------------------------------------------------------ training
    @property
    def stride(self):
        """The pixel-shuffle stride the network works at (1 before :meth:`fit`)."""
        return int(self.normalization.get("pixel_shuffle", 1)) if self.is_fitted else 1

    # written in _model_fit.py, beside the training stages they call
    fit = _model_fit.fit
    distil = _model_fit.distil
    fine_tune = _model_fit.fine_tune

    @deprecated(_SINCE, obj_type="method",
                alternative="TDRModel.fine_tune (no public replacement of the "
                "array-level step)")
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
            refinement <wiener-refinement>`). Its error model gives ``std``.
            False skips it.

        Returns
        -------
        mean, std : ndarray or `~astropy.units.Quantity`
            The denoised image and the standard deviation of its error (the Wiener
            refinement's error model, see :doc:`/uncertainty`; with
            ``refine=False`` the ensemble's spread or the student's estimate of
            it), in the unit of ``image``
            (Quantities when ``image`` is one), of the dtype described in
            :func:`~tdrdenoise.tdr_denoise`. Invalid and extreme input pixels keep
            their input value in ``mean`` and are NaN in ``std``; with
            ``refine=False``, ``std`` is NaN when ``n_predictions`` is 1.

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
        return predict_image(self, image, PredictionOptions(
            method=method, n_predictions=n_predictions, seed=seed, tile_size=tile_size,
            progress=progress, calibrate=calibrate, refine=refine))

    @deprecated(_SINCE, obj_type="method",
                alternative="TDRModel.predict (no public replacement of the "
                "array-level step)")
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
        return predict_arrays(self, z, valid, factor, PredictionOptions(
            method=method, n_predictions=n_predictions, seed=seed, tile_size=tile_size,
            progress=progress, calibrate=calibrate, refine=refine), held=held)

    @deprecated(_SINCE, obj_type="method",
                alternative="model.noise_sigma / abs(factor)")
    def noise_scale(self, factor=1.0):
        """The training image's noise in the unit of an image (``factor`` converts it)."""
        return noise_in_image_unit(self.normalization, factor)

    # ------------------------------------------------------------------ files
    # written in _model_files.py (model files are read and written by model_io)
    to_bytes = _model_files.to_bytes
    from_bytes = classmethod(_model_files.from_bytes)
    save = _model_files.save
    load = classmethod(_model_files.load)
    _from_state = classmethod(_model_files.from_state)

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
