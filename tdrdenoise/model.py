"""TDRModel: the Self2Self network, its training and its files (the "T" of TDR)."""
import copy
import hashlib
import io
import math
import os
import time
import warnings

import numpy as np
import torch
from astropy import units as u

from . import __version__
from ._containers import unpack
from ._ensemble import GRID, dihedral, mc_ensemble
from ._progress import progress_bar
from .network import SelfToSelfUNet
from .utils import TDRUserWarning, atomic_open, resolve_device

__all__ = ["TDRModel"]

#: Version of the model file layout; files with a newer one are refused.
FILE_FORMAT_VERSION = 1
_FILE_MAGIC = "tdrdenoise-model"

#: Defaults shared by the Python API, the command line and the benchmarks.
DEFAULT_STEPS = 2000
DEFAULT_FINE_TUNE_STEPS = 10
DEFAULT_N_PREDICTIONS = 16
#: Side of the tile cores of a prediction: a 4096 x 4096 image takes 16 tiles and
#: a peak of about 2.6 GiB of memory on a CPU (benchmarks/run_benchmarks.py).
DEFAULT_TILE_SIZE = 1024
MIN_SIZE = 16


def _noise_scale(data, invalid):
    """Robust noise estimate: MAD of neighbour differences, as a Gaussian sigma."""
    diffs = []
    for axis in (0, 1):
        with np.errstate(invalid="ignore", over="ignore"):
            d = np.diff(data, axis=axis)
        ok = ~(np.diff(invalid, axis=axis) | np.delete(invalid, 0, axis=axis))
        diffs.append(d[ok])
    d = np.concatenate(diffs)
    if d.size == 0:
        return 0.0
    mad = np.median(np.abs(d - np.median(d)))
    sigma = 1.4826 * mad / math.sqrt(2.0)
    if not sigma > 0:  # e.g. integer images with flat stretches: fall back to spread
        sigma = float(np.std(d)) / math.sqrt(2.0)
    return float(sigma)


def _check_image(img, name, min_valid=MIN_SIZE * MIN_SIZE):
    h, w = img.data.shape
    if h < MIN_SIZE or w < MIN_SIZE:
        raise ValueError(f"{name} is {h} x {w} pixels; tdrdenoise needs at least "
                         f"{MIN_SIZE} x {MIN_SIZE}")
    n_valid = int((~img.invalid).sum())
    if n_valid == 0:
        raise ValueError(f"{name} has no valid pixels (all NaN, inf or masked)")
    if n_valid < min_valid:
        raise ValueError(f"{name} has only {n_valid} valid pixels; tdrdenoise needs at "
                         f"least {min_valid}")


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
        Encoder channels (48 in the paper; the decoder uses twice as many).
    dropout : float, optional
        Decoder dropout probability (0.3 in the paper).
    keep_prob : float, optional
        Probability that the Bernoulli mask keeps an input pixel (0.7 in the paper).
    patch_size : int, optional
        Side of the random training crops, in pixels (rounded up to a multiple of 32).
    batch_size : int, optional
        Crops per training step.
    learning_rate : float, optional
        Peak Adam learning rate; it decays along a cosine to 1 % of that.
    device : str or `torch.device`, optional
        ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"``, ...

    Attributes
    ----------
    normalization : dict or None
        ``{"median": ..., "scale": ...}`` of the training image, in its unit: images
        are fed to the network as ``(image - median) / scale``, where ``scale`` is a
        robust estimate of the noise. None before :meth:`fit`.
    unit : `~astropy.units.Unit` or None
        Unit of the training image.
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
                 learning_rate=1e-3, device="auto"):
        if not 0 < keep_prob < 1:
            raise ValueError(f"keep_prob must lie between 0 and 1; got {keep_prob}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1); got {dropout}")
        if int(width) < 1 or int(batch_size) < 1 or int(patch_size) < MIN_SIZE:
            raise ValueError("width and batch_size must be positive and patch_size at "
                             f"least {MIN_SIZE}")
        self.architecture = {"name": "self2self-unet", "width": int(width),
                             "dropout": float(dropout)}
        self.keep_prob = float(keep_prob)
        self.patch_size = -(-int(patch_size) // GRID) * GRID
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self.device = resolve_device(device)
        self.normalization = None
        self.unit = None
        self.history = []
        self.path = None
        self._net = SelfToSelfUNet(width, dropout).to(self.device)

    # ------------------------------------------------------------------ helpers
    @property
    def is_fitted(self):
        """True once the model was trained (or loaded)."""
        return self.normalization is not None

    def _require_fitted(self, what):
        if not self.is_fitted:
            raise RuntimeError(f"TDRModel.{what} needs a trained model: call fit() or "
                               "TDRModel.load() first")

    @property
    def fingerprint(self):
        """Short SHA-256 of the weights: names the model in provenance records."""
        digest = hashlib.sha256()
        for name, tensor in sorted(self._net.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:12]

    def _unit_factor(self, img, name):
        """Factor converting the image unit to the model unit (1 when either is None)."""
        if img.unit is None or self.unit is None or img.unit == self.unit:
            return 1.0
        try:
            return float(img.unit.to(self.unit))
        except u.UnitConversionError as exc:
            raise u.UnitsError(f"{name} is in '{img.unit}' but the model was trained on "
                               f"images in '{self.unit}'") from exc

    def _normalized(self, img, name):
        """(z, valid) of an unpacked image in the model's normalisation."""
        factor = self._unit_factor(img, name)
        norm = self.normalization
        valid = ~img.invalid
        z = np.zeros(img.data.shape, np.float32)
        z[valid] = (img.data[valid] * factor - norm["median"]) / norm["scale"]
        return z, valid, factor

    # ------------------------------------------------------------------ training
    def _train(self, z, valid, steps, seed, learning_rate, progress, desc, schedule=True,
               callback=None):
        """Train the network on crops of one normalised image; returns the record."""
        rng = np.random.default_rng(seed)
        h, w = z.shape
        p = self.patch_size
        if h < p or w < p:  # small images: pad once with invalid pixels
            ph, pw = max(p - h, 0), max(p - w, 0)
            z = np.pad(z, ((0, ph), (0, pw)))
            valid = np.pad(valid, ((0, ph), (0, pw)))
            h, w = z.shape
        # positions of crops with at least half of their pixels valid
        csum = np.pad(valid.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        counts = csum[p:, p:] - csum[:-p, p:] - csum[p:, :-p] + csum[:-p, :-p]
        ys, xs = np.nonzero(counts >= 0.5 * p * p)
        if ys.size == 0:
            ys, xs = np.nonzero(counts == counts.max())
        zt = torch.from_numpy(z.astype(np.float32))
        vt = torch.from_numpy(valid)
        net = self._net
        net.train()
        opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
        floor = 0.01
        gen = torch.Generator().manual_seed(int(rng.integers(2**63)))
        losses = []
        t0 = time.perf_counter()
        bar = progress_bar(steps, desc, progress)
        done = 0
        try:
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda"
                                       else []):
                torch.manual_seed(int(rng.integers(2**63)))
                for step in range(steps):
                    if schedule:
                        frac = step / max(steps - 1, 1)
                        lr = learning_rate * (floor + (1 - floor) * 0.5 *
                                              (1 + math.cos(math.pi * frac)))
                        for group in opt.param_groups:
                            group["lr"] = lr
                    pick = rng.integers(ys.size, size=self.batch_size)
                    xb, vb = [], []
                    for i in pick:
                        y0, x0 = ys[i], xs[i]
                        t = int(rng.integers(8))
                        xb.append(dihedral(zt[y0:y0 + p, x0:x0 + p], t))
                        vb.append(dihedral(vt[y0:y0 + p, x0:x0 + p], t))
                    x = torch.stack(xb)[:, None].to(self.device)
                    v = torch.stack(vb)[:, None].to(self.device)
                    keep = (torch.rand(x.shape, generator=gen) < self.keep_prob)
                    keep = keep.to(self.device) & v
                    target = (v & ~keep).float()
                    out = net(x, keep.float())
                    loss = ((out - x) ** 2 * target).sum() / target.sum().clamp(min=1)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    losses.append(float(loss.detach()))
                    done += 1
                    bar.update()
                    if callback is not None:
                        callback(done)
        except KeyboardInterrupt:
            warnings.warn(f"training interrupted after {done} of {steps} steps; the model "
                          "keeps the weights learned so far", TDRUserWarning)
            raise
        finally:
            bar.close()
            self.history.append({
                "action": desc.split()[-1], "steps": done, "seed": seed,
                "learning_rate": learning_rate, "patch_size": p,
                "batch_size": self.batch_size, "image_shape": list(z.shape),
                "seconds": round(time.perf_counter() - t0, 3),
                "final_loss": float(np.mean(losses[-50:])) if losses else None,
            })
        return self

    def fit(self, image, steps=DEFAULT_STEPS, seed=None, learning_rate=None, progress=None):
        """Train the network from scratch on one noisy image.

        Invalid pixels (NaN, inf, or masked in a CCDData/NDData/Map/masked array) are
        neither shown to the network nor used in the loss. The normalisation
        (median and robust noise scale) and the unit of ``image`` are stored.

        Parameters
        ----------
        image : CCDData, NDData, sunpy Map, Quantity or array-like
            A 2-D noisy image (at least 16 x 16 pixels).
        steps : int, optional
            Training steps (minibatches of ``batch_size`` random crops).
        seed : int, optional
            Seed for weights, crops, masks and dropout: the same seed gives the same
            model on the same machine.
        learning_rate : float, optional
            Peak learning rate; defaults to the one given at construction.
        progress : bool or None, optional
            Show a progress bar; None shows it only on a terminal.

        Returns
        -------
        self : TDRModel

        Raises
        ------
        TypeError, ValueError
            For images of the wrong kind, dimensionality or size, constant images or
            images without valid pixels.

        Examples
        --------
        >>> import numpy as np
        >>> from tdrdenoise import TDRModel
        >>> noisy = np.random.default_rng(0).normal(size=(48, 48))
        >>> model = TDRModel(device="cpu").fit(noisy, steps=2, seed=0, progress=False)
        >>> model.is_fitted, model.history[-1]["steps"]
        (True, 2)
        """
        img = unpack(image, "image")
        _check_image(img, "image")
        steps = int(steps)
        if steps < 1:
            raise ValueError(f"steps must be at least 1; got {steps}")
        valid = ~img.invalid
        median = float(np.median(img.data[valid]))
        scale = _noise_scale(img.data, img.invalid)
        if not scale > 0:
            raise ValueError("image is constant: there is no noise to learn from")
        seed = int(np.random.SeedSequence().entropy % 2**32) if seed is None else int(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self._net = SelfToSelfUNet(self.architecture["width"],
                                       self.architecture["dropout"]).to(self.device)
        self.normalization = {"median": median, "scale": scale}
        self.unit = img.unit
        self.history = []
        self.path = None
        z, valid, _ = self._normalized(img, "image")
        lr = self.learning_rate if learning_rate is None else float(learning_rate)
        return self._train(z, valid, steps, seed, lr, progress, "tdrdenoise fit")

    def fine_tune(self, image, steps=DEFAULT_FINE_TUNE_STEPS, seed=None, learning_rate=None,
                  progress=False):
        """A copy of this model trained a few more steps on ``image``.

        The base model is not changed, so one base model can be fine-tuned to each
        image of a series. The normalisation of the base model is kept.

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
        self._require_fitted("fine_tune")
        img = unpack(image, "image")
        _check_image(img, "image")
        steps = int(steps)
        if steps < 0:
            raise ValueError(f"steps must be zero or positive; got {steps}")
        new = copy.deepcopy(self)
        if steps == 0:
            return new
        z, valid, _ = new._normalized(img, "image")
        lr = self.learning_rate * 0.1 if learning_rate is None else float(learning_rate)
        seed = int(np.random.SeedSequence().entropy % 2**32) if seed is None else int(seed)
        return new._train(z, valid, steps, seed, lr, progress, "tdrdenoise fine_tune",
                          schedule=False)

    # ------------------------------------------------------------------ prediction
    def predict(self, image, n_predictions=DEFAULT_N_PREDICTIONS, seed=None,
                tile_size=DEFAULT_TILE_SIZE,
                progress=None):
        """Monte-Carlo dropout ensemble: the denoised image and its uncertainty.

        Each of the ``n_predictions`` passes draws a new Bernoulli input mask and new
        dropout masks and sees the image in one of its eight flips/transposes. Large
        images are processed in tiles with a context margin wider than the network's
        receptive field, so the result does not depend on the tiling.

        Parameters
        ----------
        image : CCDData, NDData, sunpy Map, Quantity or array-like
            The noisy image, in a unit convertible to the model's.
        n_predictions : int, optional
            Number of passes averaged.
        seed : int, optional
            Seed of the masks and dropout: the same seed gives the same result.
        tile_size : int, optional
            Side of the tile cores in pixels (default 1024); larger is a little faster,
            smaller uses less memory. Images no larger than the tile plus its margins
            are processed whole.
        progress : bool or None, optional
            Show a progress bar; None shows it only on a terminal.

        Returns
        -------
        mean, std : ndarray or `~astropy.units.Quantity`
            Ensemble mean and per-pixel standard deviation, in the unit of ``image``
            (Quantities when ``image`` is one). Invalid input pixels keep their input
            value in ``mean`` and are NaN in ``std``; ``std`` is NaN when
            ``n_predictions`` is 1.

        Examples
        --------
        >>> import numpy as np
        >>> from tdrdenoise import TDRModel
        >>> noisy = np.random.default_rng(0).normal(size=(40, 50))
        >>> model = TDRModel(device="cpu").fit(noisy, steps=2, seed=0, progress=False)
        >>> mean, std = model.predict(noisy, n_predictions=3, seed=0, progress=False)
        >>> mean.shape == noisy.shape, bool((std >= 0).all())
        (True, True)
        """
        self._require_fitted("predict")
        img = unpack(image, "image")
        _check_image(img, "image", min_valid=1)
        mean, std = self._predict_arrays(img, n_predictions, seed, tile_size, progress)
        if img.kind == "quantity":
            return u.Quantity(mean, img.unit), u.Quantity(std, img.unit)
        return mean, std

    def _predict_arrays(self, img, n_predictions, seed, tile_size, progress):
        """predict() on an unpacked image; arrays in the image unit."""
        n_predictions = int(n_predictions)
        if n_predictions < 1:
            raise ValueError(f"n_predictions must be at least 1; got {n_predictions}")
        z, valid, factor = self._normalized(img, "image")
        seed = int(np.random.SeedSequence().entropy % 2**32) if seed is None else int(seed)
        gen = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda"
                                   else []):
            torch.manual_seed(seed)
            zm, zs = mc_ensemble(self._net, z, valid, n_predictions=n_predictions,
                                 keep_prob=self.keep_prob, generator=gen,
                                 device=self.device, tile_size=tile_size,
                                 progress=progress)
        norm = self.normalization
        mean = (zm.astype(np.float64) * norm["scale"] + norm["median"]) / factor
        std = zs.astype(np.float64) * norm["scale"] / abs(factor)
        mean = np.where(valid, mean, img.data).astype(img.data.dtype, copy=False)
        std = np.where(valid, std, np.nan).astype(img.data.dtype, copy=False)
        return mean, std

    # ------------------------------------------------------------------ files
    def _metadata(self):
        return {
            "format": _FILE_MAGIC,
            "format_version": FILE_FORMAT_VERSION,
            "tdrdenoise_version": __version__,
            "torch_version": str(torch.__version__),
            "architecture": dict(self.architecture),
            "keep_prob": self.keep_prob,
            "patch_size": self.patch_size,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "normalization": dict(self.normalization),
            "unit": None if self.unit is None else self.unit.to_string(),
            "history": copy.deepcopy(self.history),
        }

    def save(self, path, overwrite=False):
        """Write the weights and their metadata to ``path``, atomically.

        The file records the package version, the architecture, the normalisation,
        the unit and the training history. It is written to a temporary file in the
        same folder and renamed, so a crash never leaves a half-written model.

        Parameters
        ----------
        path : str or path-like
            Output file (conventionally ``*.tdr``).
        overwrite : bool, optional
            Replace an existing file.

        Raises
        ------
        OSError
            If ``path`` exists and ``overwrite`` is False.

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
        self._require_fitted("save")
        path = os.fspath(path)
        if os.path.exists(path) and not overwrite:
            raise OSError(f"{path} exists; pass overwrite=True to replace it")
        payload = self._metadata()
        payload["state_dict"] = {k: v.detach().cpu() for k, v in
                                 self._net.state_dict().items()}
        with atomic_open(path) as fh:
            torch.save(payload, fh)
        self.path = path

    @classmethod
    def load(cls, path, device="auto"):
        """Read a model written by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
            A ``.tdr`` file.
        device : str or `torch.device`, optional
            Where to put the network (``"auto"``: CUDA when present).

        Returns
        -------
        TDRModel

        Raises
        ------
        FileNotFoundError
            If there is no such file.
        ValueError
            If the file is not a tdrdenoise model, is corrupt, has missing or
            malformed metadata, or was written by a newer, incompatible file format.

        Examples
        --------
        See :meth:`save`.
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no model file at {path}")
        try:
            with open(path, "rb") as fh:
                payload = torch.load(io.BytesIO(fh.read()), map_location="cpu",
                                     weights_only=True)
        except Exception as exc:  # torch raises many kinds on garbage
            raise ValueError(f"{path} is not a readable tdrdenoise model file (corrupt or "
                             f"of another kind): {type(exc).__name__}") from None
        if not isinstance(payload, dict) or payload.get("format") != _FILE_MAGIC:
            raise ValueError(f"{path} is not a tdrdenoise model file")
        version = payload.get("format_version")
        if not isinstance(version, int) or version > FILE_FORMAT_VERSION:
            raise ValueError(
                f"{path} uses model file format {version!r}, written by tdrdenoise "
                f"{payload.get('tdrdenoise_version')}; this is tdrdenoise {__version__}, "
                f"which reads format {FILE_FORMAT_VERSION} and older: upgrade tdrdenoise")
        arch = payload.get("architecture")
        if not isinstance(arch, dict) or arch.get("name") != "self2self-unet":
            name = arch.get("name") if isinstance(arch, dict) else arch
            raise ValueError(f"{path} holds an unknown architecture {name!r}")
        try:
            model = cls(width=arch["width"], dropout=arch["dropout"],
                        keep_prob=payload["keep_prob"], patch_size=payload["patch_size"],
                        batch_size=payload["batch_size"],
                        learning_rate=payload["learning_rate"], device=device)
            normalization = {"median": float(payload["normalization"]["median"]),
                             "scale": float(payload["normalization"]["scale"])}
            unit = None if payload["unit"] is None else u.Unit(payload["unit"])
            history = list(payload["history"])
            state = payload["state_dict"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path} has missing or malformed metadata "
                             f"({type(exc).__name__}: {exc}); it was not written by "
                             "TDRModel.save or was altered") from None
        try:
            model._net.load_state_dict(state)
        except (RuntimeError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path}: the weights do not match the recorded "
                             f"architecture ({exc})") from None
        model._net.to(model.device)
        model.normalization = normalization
        model.unit = unit
        model.history = history
        model.path = path
        return model

    def __repr__(self):
        state = "untrained"
        if self.is_fitted:
            steps = sum(h["steps"] for h in self.history)
            unit = f", unit='{self.unit}'" if self.unit is not None else ""
            state = f"trained {steps} steps{unit}"
        return (f"<TDRModel width={self.architecture['width']} device={self.device.type} "
                f"{state}>")
