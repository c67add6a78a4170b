"""Denoise and restore in one call (the "D" and "R" of TDR) on any image container."""
import numpy as np

from ._containers import unpack, repack
from .model import (DEFAULT_FINE_TUNE_STEPS, DEFAULT_N_PREDICTIONS, DEFAULT_TILE_SIZE,
                    TDRModel, _check_image)
from .restore import _threshold, restore

__all__ = ["tdr_denoise"]


def _format_R(R, unit):
    if np.isinf(R):
        return "inf"
    return f"{R:g} {unit}" if unit is not None else f"{R:g}"


def tdr_denoise(image, model, R=np.inf, fine_tune_steps=DEFAULT_FINE_TUNE_STEPS,
                n_predictions=DEFAULT_N_PREDICTIONS, seed=None, tile_size=DEFAULT_TILE_SIZE,
                progress=None, return_restored_mask=False):
    """Denoise an image with a trained TDR model, then restore pixels changed by more than R.

    The model is first fine-tuned for ``fine_tune_steps`` on a copy (the model you
    pass is never changed); the denoised image is the mean of ``n_predictions``
    Monte-Carlo dropout passes; finally every pixel with ``|denoised - initial| > R``
    gets its initial value back (see :func:`~tdrdenoise.restore`).

    The input is never modified. The output is of the same kind as the input:

    - ndarray / masked array / Quantity: the denoised-and-restored values (a masked
      array keeps its mask, or-ed with the restored pixels).
    - CCDData / NDData (and sunpy Map): a new object whose

      * ``data`` are the denoised-and-restored values, with unit, WCS and every
        header card kept;
      * ``mask`` is the input mask OR the invalid (NaN/inf) pixels OR the restored
        pixels; pass ``return_restored_mask=True`` to get the restored pixels alone;
      * ``uncertainty`` is a `~astropy.nddata.StdDevUncertainty`: the ensemble
        standard deviation for denoised pixels; for restored and invalid pixels the
        input's own uncertainty, or, when the input has none, the model's noise
        estimate for restored pixels (they are raw data) and NaN for invalid ones;
      * ``meta`` gains, ccdproc-style, a card ``TDRDENOI`` (pointed to by
        ``HIERARCH TDR_DENOISE`` in FITS headers) with R, the model and the ensemble
        settings, and ``TDRRFRAC``, the fraction of valid pixels restored. Maps also
        get a ``history`` line.

    Invalid pixels (NaN, inf, masked) are hidden from the network and come out
    untouched.

    Parameters
    ----------
    image : CCDData, NDData, sunpy Map, Quantity or array-like
        The 2-D noisy image.
    model : TDRModel
        A trained model (from :meth:`TDRModel.fit` or :meth:`TDRModel.load`), for
        images of the same kind and unit.
    R : float or `~astropy.units.Quantity`, optional
        Restore threshold in the image unit (a Quantity is converted; an image
        without a unit is taken to be in the model's unit). ``np.inf`` (default)
        restores nothing, ``0`` returns the input values.
    fine_tune_steps : int, optional
        Fine-tuning steps on this image before predicting; 0 skips it.
    n_predictions : int, optional
        Monte-Carlo dropout passes averaged.
    seed : int, optional
        Seed for fine-tuning and prediction.
    tile_size : int, optional
        Tile side in pixels for large images (see :meth:`TDRModel.predict`).
    progress : bool or None, optional
        Progress bars; None shows them only on a terminal.
    return_restored_mask : bool, optional
        Also return the boolean mask of the restored pixels.

    Returns
    -------
    result : same kind as ``image``
        The denoised-and-restored image.
    restored_mask : ndarray of bool
        Only with ``return_restored_mask=True``.

    Raises
    ------
    TypeError
        If ``model`` is not a TDRModel, ``image`` is not an image, or ``R`` is not a
        scalar number or Quantity.
    ValueError
        For negative or NaN ``R``, images too small, all-invalid images, or an
        untrained model.
    astropy.units.UnitsError
        If the image unit or the unit of ``R`` does not match the model's.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy import units as u
    >>> from astropy.nddata import CCDData
    >>> from tdrdenoise import TDRModel, tdr_denoise
    >>> rng = np.random.default_rng(0)
    >>> ccd = CCDData(rng.normal(size=(48, 48)), unit="adu")
    >>> model = TDRModel(device="cpu").fit(ccd, steps=2, seed=0, progress=False)
    >>> out = tdr_denoise(ccd, model, R=0.5 * u.adu, fine_tune_steps=1,
    ...                   n_predictions=2, seed=0, progress=False)
    >>> out.unit, out.shape, "TDRDENOI" in out.meta
    (Unit("adu"), (48, 48), True)
    """
    if not isinstance(model, TDRModel):
        raise TypeError(f"model must be a TDRModel; got {type(model).__name__}")
    model._require_fitted("tdr_denoise")
    img = unpack(image, "image")
    _check_image(img, "image", min_valid=1)
    model._unit_factor(img, "image")  # unit mismatch fails before any work
    # an image without a unit is taken to be in the model's unit
    unit = img.unit if img.unit is not None else model.unit
    threshold = _threshold(R, unit)
    tuned = model.fine_tune(img.original, steps=fine_tune_steps, seed=seed,
                            progress=progress) if fine_tune_steps else model
    mean, std = tuned._predict_arrays(img, n_predictions, seed, tile_size, progress)
    valid = ~img.invalid
    data, restored_mask = restore(img.data, mean, threshold)
    restored_mask &= valid
    data = np.where(valid, data, img.data).astype(mean.dtype, copy=False)

    mask = unc = provenance = None
    if img.kind in ("nddata", "map", "masked"):
        mask = img.invalid | restored_mask
    if img.kind in ("nddata", "map"):
        raw_unc = img.std_uncertainty
        if raw_unc is None:
            scale = model.normalization["scale"] / abs(model._unit_factor(img, "image"))
            raw_unc = np.where(valid, scale, np.nan)
        unc = np.where(valid & ~restored_mask, std, raw_unc).astype(mean.dtype)
        n_valid = int(valid.sum())
        fraction = float(restored_mask.sum()) / n_valid
        name = model.path if model.path else "in-memory"
        record = (f"R={_format_R(threshold, unit)}, model={name}, "
                  f"fingerprint={model.fingerprint}, n_predictions={int(n_predictions)}, "
                  f"fine_tune_steps={int(fine_tune_steps)}, seed={seed}")
        provenance = [("tdr_denoise", "TDRDENOI", record),
                      ("tdr_restored_fraction", "TDRRFRAC", round(fraction, 6))]
    result = repack(img, data, mask=mask, std=unc, provenance=provenance)
    if return_restored_mask:
        return result, restored_mask
    return result
