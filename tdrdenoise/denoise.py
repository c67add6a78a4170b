"""Denoise and restore in one call (the "D" and "R" of TDR) on any image container."""
import numpy as np

from .io.containers import check_image, repack, unit_factor, unpack
from ._defaults import DEFAULT_N_PREDICTIONS
from .prediction.student import resolve_method
from .prediction.normalization import (describe_noise, held_out, network_input,
                                       noise_in_image_unit, replaced_pixels)
from .prediction.options import PredictionOptions
from .prediction.pipeline import predict_arrays, refined_held
from .io.provenance import (DENOISE, FRACTION, cards, check_add_keyword, denoise_record,
                            header_name, restored_fraction)
from ._validate import (NoiseMultiple, check_denoise_options, format_threshold, threshold_value)
from .model import DEFAULT_FINE_TUNE_STEPS, DEFAULT_TILE_SIZE, TDRModel
from .restore import restore
from .training.self2self import fine_tune_arrays

__all__ = ["tdr_denoise"]

#: The cards written by default: (key, long step name pointing to it in FITS headers);
#: defined with the other provenance keys in io/provenance.py.
RECORD_CARD = DENOISE
FRACTION_CARD = FRACTION


def _threshold(R, img, model, factor, unit):
    """R in the image unit: a float, or an array of the image's shape (an array R,
    or a NoiseMultiple: times the input's uncertainty, else the model's noise)."""
    if not isinstance(R, NoiseMultiple):
        return threshold_value(R, unit, shape=img.data.shape)
    sigma = img.std_uncertainty
    if sigma is None:
        return R.factor * noise_in_image_unit(model.normalization, factor)
    return R.factor * np.array(sigma, dtype=float)


def tdr_denoise(image, model, *, R=np.inf, method="auto", fine_tune_steps=None,
                n_predictions=None, seed=None, tile_size=DEFAULT_TILE_SIZE,
                progress=None, return_restored_mask=False, add_keyword=True,
                calibrate=True, refine=True, fill="initial"):
    """Denoise an image with a trained TDR model, then restore pixels changed by more than R.

    By default (``method="auto"`` with a model that has a student, as every model
    :meth:`TDRModel.fit` trains) the denoised image and its uncertainty come from
    one pass of the student distilled from the Monte-Carlo ensemble (see
    :meth:`TDRModel.distil`). With ``method="ensemble"`` (or when ``n_predictions``
    or ``fine_tune_steps`` is given) the paper's procedure runs instead: the model
    is fine-tuned for ``fine_tune_steps`` on a copy (the model you pass is never
    changed) and the denoised image is the mean of ``n_predictions`` Monte-Carlo
    dropout passes. Finally every pixel with ``|denoised - initial| > R`` gets its
    initial value back, or with ``fill="ambient"`` the mean of its unrestored
    neighbours (see :func:`~tdrdenoise.restore`). ``R`` is one threshold, one per
    pixel (an array), or a multiple of the per-pixel noise
    (:class:`~tdrdenoise.restore.NoiseMultiple`).

    The input is never modified. The output is of the same kind as the input:

    - ndarray / masked array / Quantity: the denoised-and-restored values (a masked
      array keeps its mask, or-ed with the restored pixels).
    - CCDData / NDData (and sunpy Map): a new object whose

      * ``data`` are the denoised-and-restored values, with unit, WCS and every
        header card kept;
      * ``mask`` is the input mask OR the invalid (NaN/inf) pixels OR the restored
        pixels; pass ``return_restored_mask=True`` to get the restored pixels alone;
      * ``uncertainty`` is a `~astropy.nddata.StdDevUncertainty`, the standard
        deviation of the error of the returned value: for denoised pixels (held-out
        bright ones included) the Wiener refinement's error model, measured on the
        image (see :doc:`/uncertainty`; with ``refine=False`` the network's spread,
        which is not an error bar); for restored and invalid pixels the input's own
        uncertainty, or, when the input has none, the model's noise estimate for
        restored pixels (they are raw data) and NaN for invalid ones. Errors of
        neighbouring denoised pixels are correlated (over about 12 pixels);
      * ``meta`` gains, ccdproc-style, a card ``TDRDENOI`` (pointed to by
        ``HIERARCH TDR_DENOISE`` in FITS headers) with R (for a per-pixel R its
        range, ``R=per-pixel 2.1..9.8 G``), the model and the method
        (``method=student``, or the ensemble's settings; ``fill=ambient`` when
        given), and ``TDRRFRAC``, the
        fraction of the valid pixels that were restored (see ``add_keyword``). Maps
        also get a ``history`` line.

    Invalid pixels (NaN, inf, masked) are hidden from the network and come out
    untouched. So do extreme pixels, farther than the model's ``outlier_threshold``
    (1000 by default) noise sigmas from the median, such as fill values: a
    `~tdrdenoise.TDRUserWarning` gives their count and they are masked in NDData and
    Map results. Bright extended structure (beyond the model's ``bright_threshold``,
    20 noise sigmas by default: stars, galaxy cores, sunspots) is held out of the
    network too; the Wiener refinement denoises it without the network (its pilot
    the observation's DCT coefficients above 2.7 noise sigmas), and ``R`` applies
    to it as to every pixel (with ``refine=False`` it comes back as observed, with
    the input's uncertainty or the noise of a raw pixel). For a model
    trained on impulse noise (salt and pepper) the impulse pixels are hidden from the
    network and replaced by its prediction; when the pixels the impulses spared
    carry no noise of their own (pure salt and pepper, ``model.normalization
    ["impulse_only"]``) they come back as observed and only the impulses change.

    Parameters
    ----------
    image : CCDData, NDData, sunpy Map, Quantity or array-like
        The 2-D noisy image.
    model : TDRModel
        A trained model (from :meth:`TDRModel.fit` or :meth:`TDRModel.load`), for
        images of the same kind and unit.
    R : float, array-like, `~astropy.units.Quantity` or `NoiseMultiple`, optional
        Restore threshold in the image unit (a Quantity is converted; an image
        without a unit is taken to be in the model's unit): one number, or an
        array of the image's shape with one threshold per pixel (e.g.
        ``3 * ccd.uncertainty.array * ccd.unit``), or ``NoiseMultiple(k)``: ``k``
        times the input's uncertainty where it has one, else ``k`` times the
        model's noise estimate. ``np.inf`` (default) restores nothing, ``0``
        returns the input values (with ``fill="initial"``).
    method : {"auto", "student", "ensemble"}, optional
        ``"student"``: one pass of the distilled student (fast; a 4096 x 4096 image
        in under a minute on two CPU cores, half of it the Wiener refinement).
        ``"ensemble"``: fine-tuning and the Monte-Carlo ensemble (the paper's
        method, 16 passes instead of one, and its fine-tuning: about 25 times
        slower on a 4096 x 4096 image). ``"auto"``: the student when the model has
        one and neither ``n_predictions`` nor ``fine_tune_steps`` is given, else the
        ensemble.
    fine_tune_steps : int, optional
        Fine-tuning steps of the ensemble's network on this image before predicting
        (default 10); 0 skips it.
    n_predictions : int, optional
        Monte-Carlo dropout passes averaged by the ensemble (default 16).
    seed : int, optional
        Seed for fine-tuning and prediction (the student is deterministic).
    tile_size : int, optional
        Tile side in pixels for large images (see :meth:`TDRModel.predict`).
    progress : bool or None, optional
        Progress bars; None shows them only on a terminal.
    return_restored_mask : bool, optional
        Also return the boolean mask of the restored pixels.
    add_keyword : bool, str, dict, `ccdproc.Keyword` or `~astropy.io.fits.Card`, optional
        Provenance in ``meta`` (NDData and Map results), as ccdproc's ``add_keyword``:
        True writes ``TDRDENOI`` and ``TDRRFRAC`` (above); False or None writes no
        card; a str is the key under which the ``TDRDENOI`` record goes; a Keyword,
        Card or dict replaces that record by the user's card(s). ``TDRRFRAC`` is
        written unless ``add_keyword`` is False or None.
    calibrate : bool, optional
        Level calibration of the denoised image before restoring (default True; see
        :meth:`TDRModel.predict` and :ref:`level calibration <level-calibration>`):
        where the network is measurably worse than the noise at some level of the
        image (star peaks, strong fields), part of the observation is given back.
        False records ``calibrate=False`` in ``TDRDENOI``.
    refine : bool, optional
        Wiener refinement of the denoised image, after the calibration (default
        True; see :meth:`TDRModel.predict` and :ref:`Wiener refinement
        <wiener-refinement>`): the observation comes back, frequency by frequency,
        wherever the network's estimate shows structure above the noise; its error
        model is the uncertainty of the denoised pixels. False records
        ``refine=False`` in ``TDRDENOI`` (the uncertainty is then the network's
        spread, which is not an error bar).
    fill : {"initial", "ambient"}, optional
        The value of a restored pixel (see :func:`~tdrdenoise.restore`): its
        initial value (default), or the mean of the denoised values of the valid,
        unrestored pixels in the 5 x 5 window around it (its initial value when
        there are none), recorded as ``fill=ambient`` in ``TDRDENOI``. The
        uncertainty of restored pixels is the raw pixel's with either fill.

    Returns
    -------
    result : same kind as ``image``
        The denoised-and-restored image.
    restored_mask : ndarray of bool
        Only with ``return_restored_mask=True``.

    Raises
    ------
    TypeError
        If ``model`` is not a TDRModel, ``image`` is not an image, ``R`` is not a
        number, an array of numbers, a Quantity or a NoiseMultiple,
        ``fine_tune_steps``, ``n_predictions``, ``tile_size`` or ``seed`` is not an
        integer (bools and strings included),
        ``calibrate`` or ``refine`` is not True or False, or ``add_keyword`` is of another kind.
    ValueError
        For an unknown ``method``, ``method="student"`` with a model without a
        student or with ``n_predictions`` or ``fine_tune_steps``; for negative or
        NaN ``R`` (an array ``R`` with negative values or of another shape than
        the image), an unknown ``fill``, counts that are not whole numbers or below
        their minimum (``n_predictions`` and ``tile_size`` at least 1, ``fine_tune_steps``
        at least 0), a ``seed`` outside ``0 <= seed < 2**63``, images too small or
        all-invalid images.
    RuntimeError
        If ``model`` is not trained.
    astropy.units.UnitsError
        If the image unit or the unit of ``R`` does not match the model's.

    Notes
    -----
    The output dtype holds every input value exactly, so that restored and invalid
    pixels are exactly their initial values and no finite value becomes inf: float
    input keeps its dtype (float16 becomes float32); integer input of at most 16 bits
    (int8, uint8, int16, uint16) gives float32, which holds all their values; wider
    integers give float64 (exact up to 2**53). When no pixel value changes (``R=0``
    restores them all), the result is the input values in the input dtype, bit for
    bit. :meth:`TDRModel.predict` uses the same dtypes.

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
    model.check_fitted("tdr_denoise")
    options = check_denoise_options(R, {
        "fine_tune_steps": fine_tune_steps, "n_predictions": n_predictions,
        "tile_size": tile_size, "seed": seed, "calibrate": calibrate, "refine": refine,
        "fill": fill})
    fill = options["fill"]
    fine_tune_steps, n_predictions, tile_size, seed, calibrate, refine = (
        options[name] for name in ("fine_tune_steps", "n_predictions", "tile_size", "seed",
                                   "calibrate", "refine"))
    method = resolve_method(model, method, n_predictions, fine_tune_steps)
    if method == "ensemble":
        fine_tune_steps = (DEFAULT_FINE_TUNE_STEPS if fine_tune_steps is None
                           else fine_tune_steps)
        n_predictions = DEFAULT_N_PREDICTIONS if n_predictions is None else n_predictions
    img = unpack(image, "image")
    check_image(img, "image", min_valid=1)
    factor = unit_factor(img.unit, model.unit, "image")  # a unit mismatch fails first
    # an image without a unit is taken to be in the model's unit
    unit = img.unit if img.unit is not None else model.unit
    threshold = _threshold(R, img, model, factor, unit)
    check_add_keyword(add_keyword)  # a bad kind fails before any work
    z, seen, extreme, impulse = network_input(img.data, img.invalid, model.normalization,
                                              factor)
    tuned = fine_tune_arrays(model, z, seen, steps=fine_tune_steps, seed=seed,
                             progress=progress) if fine_tune_steps else model
    held = held_out(img.data, img.invalid, model.normalization, seen, extreme, impulse,
                    factor)
    options = PredictionOptions(method=method, n_predictions=n_predictions, seed=seed,
                                tile_size=tile_size, progress=progress,
                                calibrate=calibrate, refine=refine)
    mean, std = predict_arrays(tuned, z, seen, factor, options, held=held)
    # the network's values replace what it saw and the impulse pixels it was not shown,
    # the refinement's the bright pixels held out of the network
    refined = refined_held(held, seen, mean)
    valid = replaced_pixels(model.normalization, seen, impulse) | refined
    # pixels the network did not replace are no neighbours for fill="ambient"
    restored, restored_mask = restore(img.data, np.where(valid, mean, np.nan), threshold,
                                      fill=fill)
    restored_mask &= valid
    data = np.where(valid, restored, img.data)
    if np.array_equal(data, img.data, equal_nan=True):  # e.g. R=0: the input, in its dtype
        data = img.raw.copy()
    else:
        data = data.astype(img.output_dtype, copy=False)

    mask = unc = provenance = None
    if img.kind in ("nddata", "map", "masked"):
        mask = img.invalid | extreme | restored_mask
    if img.kind in ("nddata", "map"):
        dtype = img.output_dtype
        raw_unc = img.std_uncertainty
        if raw_unc is None:
            raw_unc = np.where(img.invalid, np.nan,
                               noise_in_image_unit(model.normalization, factor))
        # denoised pixels (held-out bright ones included): the refinement's error
        # model (the network's spread with refine=False); restored ones the input's
        unc = np.where(valid & ~restored_mask, std, raw_unc).astype(dtype)
        # of the pixels with a value (bright pixels held out included)
        fraction = restored_fraction(restored_mask, ~img.invalid & ~extreme)
        record = denoise_record(
            R=format_threshold(threshold, unit, R), model_name=header_name(model.path),
            fingerprint=model.fingerprint, method=method, n_predictions=n_predictions,
            fine_tune_steps=fine_tune_steps, seed=seed,
            noise=describe_noise(model.normalization, short=True), calibrate=calibrate,
            refine=refine, fill=fill)
        provenance = cards(add_keyword, record, fraction)
    result = repack(img, data, mask=mask, std=unc, provenance=provenance)
    if return_restored_mask:
        return result, restored_mask
    return result
