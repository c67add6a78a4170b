"""Prediction of a trained model (the "D" of TDR) at the array level.

:func:`predict_arrays` runs the Monte-Carlo ensemble of ``prediction/ensemble.py`` on each
pixel-shuffled sub-image and brings the result back to the image unit;
:func:`predict_image` wraps it for the containers of ``io/containers.py``.
:meth:`TDRModel.predict <tdrdenoise.TDRModel.predict>` delegates here.
"""
import numpy as np
from astropy import units as u

from ..io.containers import check_image, unit_factor, unpack
from .._defaults import DEFAULT_N_PREDICTIONS
from .calibration import calibrate as level_calibrate
from .ensemble import new_seed, shuffled_ensemble
from .student import resolve_method, student_predict
from .options import PredictionOptions
from .normalization import (held_out, inverse, inverse_std, network_input, pure_impulse,
                            replaced_pixels)
from .._validate import check_flag
from .wiener import refine as wiener_refine

__all__ = []


def predict_image(model, image, options):
    """:meth:`TDRModel.predict <tdrdenoise.TDRModel.predict>`: (mean, std) of ``image``
    with the settings ``options`` (a `PredictionOptions`, ``method`` maybe "auto")."""
    model.check_fitted("predict")
    calibrate = check_flag(options.calibrate, "calibrate")
    refine = check_flag(options.refine, "refine")
    method = resolve_method(model, options.method, options.n_predictions, None)
    options = options.replace(method=method, calibrate=calibrate, refine=refine)
    img = unpack(image, "image")
    check_image(img, "image", min_valid=1)
    factor = unit_factor(img.unit, model.unit, "image")
    z, valid, extreme, impulse = network_input(img.data, img.invalid, model.normalization,
                                               factor)
    held = held_out(img.data, img.invalid, model.normalization, valid, extreme, impulse,
                    factor)
    mean, std = predict_arrays(model, z, valid, factor, options, held=held)
    refined = refined_held(held, valid, mean)
    valid = replaced_pixels(model.normalization, valid, impulse) | refined
    dtype = img.output_dtype
    mean = np.where(valid, mean, img.data).astype(dtype, copy=False)
    std = np.where(valid, std, np.nan).astype(dtype, copy=False)
    if img.kind == "quantity":
        return u.Quantity(mean, img.unit), u.Quantity(std, img.unit)
    return mean, std


def refined_held(held, seen, mean):
    """The held-out pixels (``held``: see ``normalization.held_out``) that the
    refinement denoised: those with a finite ``mean``."""
    if held is None:
        return np.zeros(seen.shape, bool)
    return np.isfinite(held) & ~seen & np.isfinite(mean)


def predict_arrays(model, z, valid, factor=1.0, options=PredictionOptions(), *,
                   held=None):
    """:meth:`TDRModel.predict_arrays <tdrdenoise.TDRModel.predict_arrays>`: the mean
    and std of the network input ``z`` (the student's, or the ensemble's), in the
    image unit (float64), with the settings ``options`` (a `PredictionOptions` whose
    ``method`` is resolved), level-calibrated (``calibration.py``) unless
    ``calibrate`` is False, then Wiener-refined (``wiener.py``; the std becomes
    the refinement's error model) unless ``refine`` is False. ``held``: the
    network-unit values of the bright pixels held out of the network, NaN elsewhere
    (``normalization.held_out``); the refinement denoises them; their mean is NaN
    where it could not, or did not run."""
    method, n_predictions, seed = options.method, options.n_predictions, options.seed
    tile_size, progress = options.tile_size, options.progress
    calibrate, refine = options.calibrate, options.refine
    norm = model.normalization
    if method == "student":
        zm, zs = student_predict(model.student, z, valid, device=model.device,
                                 tile_size=tile_size)
    else:
        n_predictions = (DEFAULT_N_PREDICTIONS if n_predictions is None
                         else int(n_predictions))
        if n_predictions < 1:
            raise ValueError(f"n_predictions must be at least 1; got {n_predictions}")
        seed = new_seed() if seed is None else int(seed)
        zm, zs = shuffled_ensemble(model.network, z, valid, stride=model.stride,
                                   n_predictions=n_predictions, seed=seed,
                                   keep_prob=model.keep_prob, device=model.device,
                                   tile_size=tile_size, progress=progress)
    # pure impulse noise is left alone: there only the impulses are replaced
    refined = False
    if not pure_impulse(norm):
        if calibrate:
            zm, zs = level_calibrate(z, zm, zs, valid)
        if refine:
            zm, zvar = wiener_refine(z, zm, valid, model.stride, held=held, error=True)
            # the refinement's error model where it ran (its estimate is returned)
            zs = np.where(np.isfinite(zvar), np.sqrt(np.maximum(zvar, 0)), zs)
            refined = True
    if held is not None and not refined:
        zm = np.where(np.isfinite(held) & ~valid, np.nan, zm)
    return inverse(zm, norm, factor), inverse_std(zm, zs, norm, factor)
