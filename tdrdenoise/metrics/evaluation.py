"""All the metrics in one table, and the restore-threshold sweep that helps choose R."""
import numpy as np
from astropy import units as u
from astropy.stats import sigma_clip
from astropy.table import QTable

from ..restore import restore
from .._validate import threshold_value
from ._core import (FREQUENCY_UNIT, data_range_of, filled, first_deviation,
                    images, linear_fit, noise_fit, noise_window, spectrum,
                    unchanged_fraction, with_unit)
from .damage import large_scale_damage
from .errors import pearson_cc
from .reference import psnr, ssim

__all__ = ["evaluate", "r_sweep"]


def _hint(center):
    """The end of the message of a window that holds too few pixels."""
    return "; pass center=None to centre it on the median" if center is not None else ""


def _n2n(initial, denoised, independent, valid, clip):
    """Noise2Noise estimate of the MSE of ``denoised`` to the unknown truth.

    Returns (sigma², mean((d − y′)²), estimate, fraction of pixels clipped). The same
    pixels (those kept by sigma-clipping both residuals) enter both means.
    """
    pair = initial - independent
    resid = denoised - independent
    keep = valid.copy()
    for r in (pair, resid):
        clipped = sigma_clip(r[valid], sigma=clip, maxiters=10, masked=True)
        keep[valid] &= ~np.ma.getmaskarray(clipped)
    sigma2 = 0.5 * np.mean(pair[keep] ** 2)
    raw = np.mean(resid[keep] ** 2)
    return sigma2, raw, raw - sigma2, 1 - keep.sum() / valid.sum()


_MODES = {"original": "denoised compared with the noisy input",
          "reference": "denoised compared with a clean reference",
          "independent": "Noise2Noise estimate against an independent exposure"}


def evaluate(initial, denoised, reference=None, independent=None, *, range=None, center=0,
             data_range=None, tolerance=0.1, clip_sigma=5.0, smoothing=8,
             noise_sample=None):
    """All the metrics of a denoised image in one table row.

    Three modes, chosen by the arguments given:

    - ``"original"`` (always): how the denoised image relates to the noisy input
      (noise levels, changes, correlation, linear coefficient, restored fraction,
      deviation frequency, large-scale damage).
    - ``"reference"``: against a clean ``reference`` (simulations): MSE, PSNR, SSIM
      and correlation to the truth, and the PSNR and SSIM of the noisy input.
    - ``"independent"``: against an ``independent`` observation of the same scene
      (Noise2Noise-style): with y′ the independent frame and
      σ² = mean((initial − y′)²) / 2 the noise variance of one frame, the MSE of
      the denoised image to the unknown truth is estimated by
      mean((denoised − y′)²) − σ² (unbiased when the noise of the two frames is
      independent and of equal variance). Both means use the same pixels: those
      kept by sigma-clipping (at ``clip_sigma``) of both ``initial − y′`` and
      ``denoised − y′``, which removes cosmic rays. The raw input has an MSE of σ²,
      so ``mse_n2n / noise_variance`` is the fraction of the noise power left.

    Columns (units are those of ``initial``, squared for squared errors):

    ``mode``; ``noise_initial``, ``noise_denoised`` (:func:`noise_level`, both
    fitted over one window, see ``range``); ``absolute_error``
    (``mean(|initial − denoised|)``), ``mean_squared_error``
    (``mean((initial − denoised)²)``);
    ``pearson_cc``, ``linear_coefficient``; ``residual_mean`` (mean(initial −
    denoised): the net flux removed per pixel, :func:`residual_flux`);
    ``restored_fraction`` (pixels equal to their initial value, see
    :func:`restored_fraction`); ``deviation_frequency``; ``damage_ratio`` and
    ``net_change_sigma`` (the ``ratio`` and ``net_change`` of
    :func:`large_scale_damage`: the residual smoothed over ``smoothing`` pixels in
    units of the white-noise expectation, or of ``noise_sample``'s, and
    ``residual_mean`` in units of the noise σ of ``initial``).
    With a reference: ``mse_reference``, ``psnr``, ``ssim``, ``cc_reference``,
    ``psnr_initial``, ``ssim_initial``. With an independent frame:
    ``noise_variance``, ``mse_independent``, ``mse_n2n``, ``n2n_clipped_fraction``.

    Parameters
    ----------
    initial : CCDData, NDData, sunpy Map, Quantity or array-like
        The noisy image that was denoised.
    denoised : CCDData, NDData, sunpy Map, Quantity or array-like
        Its denoised (and possibly restored) version.
    reference : CCDData, NDData, sunpy Map, Quantity or array-like, optional
        The clean truth.
    independent : CCDData, NDData, sunpy Map, Quantity or array-like, optional
        Another exposure of the same scene with independent noise, aligned with
        ``initial`` (not the one the model was trained on if it was trained on one).
    range, center : optional
        Histogram window of :func:`noise_level`, one for both images (as the paper
        fits every image over ±20 G). By default the initial image's: centred on 0
        (``center=None``: on its median), five robust standard deviations of it
        wide.
    data_range : float or `~astropy.units.Quantity`, optional
        For PSNR and SSIM; default ``max − min`` of the reference.
    tolerance : float, optional
        For :func:`deviation_frequency`, in dex.
    clip_sigma : float, optional
        Clipping threshold of the Noise2Noise statistics, in standard deviations.
    smoothing : int, optional
        Window of :func:`large_scale_damage`, in pixels.
    noise_sample : CCDData, NDData, sunpy Map, Quantity or array-like, optional
        Noise alone with the correlations of ``initial``'s, for
        :func:`large_scale_damage` (give it for correlated noise).

    Returns
    -------
    `~astropy.table.QTable`
        One row; ``meta["mode"]`` describes the mode, ``meta["n_valid"]`` counts the
        pixels used.

    Raises
    ------
    ValueError
        If the shapes differ, no pixel is valid in all the images, or the noise of
        ``initial`` cannot be estimated (too few adjacent valid pixels).
    astropy.units.UnitsError
        If the units are incompatible.

    Notes
    -----
    Masked pixels are left out, except the *restored* pixels of a
    :func:`~tdrdenoise.tdr_denoise` output: a CCDData, NDData or Map it returns
    (its meta holds a ``TDRDENOI`` card) has the restored pixels in its mask, and
    a pixel in that mask whose value equals the initial one (valid there) counts
    as a valid, restored pixel. The same holds for every paired metric.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.metrics import evaluate
    >>> rng = np.random.default_rng(0)
    >>> truth = np.zeros((64, 64))
    >>> noisy = truth + rng.normal(0, 1.0, truth.shape)
    >>> table = evaluate(noisy, 0.5 * noisy, reference=truth, data_range=10.0)
    >>> str(table["mode"][0]), float(table["linear_coefficient"][0])
    ('original+reference', 0.5)
    """
    named = [(initial, "initial"), (denoised, "denoised")]
    if reference is not None:
        named.append((reference, "reference"))
    if independent is not None:
        named.append((independent, "independent"))
    arrays, valid, unit = images(*named)
    a, d = arrays[:2]
    window = noise_window(a, valid, unit, range, center)

    def q(value, power=1):
        return with_unit(value, unit, power)

    modes = ["original"] + [name for _, name in named[2:]]
    row = {"mode": "+".join(modes)}
    for key, image in (("noise_initial", a), ("noise_denoised", d)):
        row[key] = q(noise_fit(image, valid, window, hint=_hint(center))[0])
    res = (a - d)[valid]
    row["absolute_error"] = q(np.abs(res).mean())
    row["mean_squared_error"] = q(np.mean(res ** 2), 2)
    row["pearson_cc"] = pearson_cc(np.where(valid, a, np.nan), np.where(valid, d, np.nan))
    row["linear_coefficient"] = linear_fit(a[valid], d[valid])[0]
    row["residual_mean"] = q(res.mean())
    row["restored_fraction"] = unchanged_fraction(initial, denoised, a, d, valid)
    freq, p_a = spectrum(filled(a, valid))
    p_d = spectrum(filled(d, valid))[1]
    row["deviation_frequency"] = first_deviation(p_a, p_d, freq, tolerance, 3) * FREQUENCY_UNIT
    damage = large_scale_damage(*(np.where(valid, x, np.nan) for x in (a, d)),
                                smoothing=smoothing, noise_sample=noise_sample)
    row["damage_ratio"] = damage.ratio
    row["net_change_sigma"] = damage.net_change
    if reference is not None:
        ref = arrays[2]
        masked = [np.where(valid, x, np.nan) for x in (a, d, ref)]
        rng = data_range_of(data_range, ref, valid, unit)
        row["mse_reference"] = q(np.mean(((d - ref)[valid]) ** 2), 2)
        row["psnr"] = psnr(masked[1], masked[2], rng)
        row["ssim"] = ssim(masked[1], masked[2], rng)
        row["cc_reference"] = pearson_cc(masked[1], masked[2])
        row["psnr_initial"] = psnr(masked[0], masked[2], rng)
        row["ssim_initial"] = ssim(masked[0], masked[2], rng)
    if independent is not None:
        sigma2, raw, est, clipped = _n2n(a, d, arrays[-1], valid, clip_sigma)
        row["noise_variance"] = q(sigma2, 2)
        row["mse_independent"] = q(raw, 2)
        row["mse_n2n"] = q(est, 2)
        row["n2n_clipped_fraction"] = float(clipped)
    table = QTable([[value] for value in row.values()], names=list(row))
    table.meta["mode"] = "; ".join(_MODES[m] for m in modes)
    table.meta["n_valid"] = int(valid.sum())
    return table


def r_sweep(initial, denoised, Rs, *, range=None, center=0, tolerance=0.1):
    """Restore with each threshold R and measure the result, to help choose R.

    For each R, :func:`~tdrdenoise.restore` is applied to ``denoised`` and the
    restored image is measured: the fraction of valid pixels restored, its noise
    level (:func:`noise_level` over one window for all, that of ``initial`` by
    default), its linear coefficient
    against ``initial`` and its deviation frequency. Small R keeps more of the
    initial image (fraction and linear coefficient rise towards 1, the deviation
    frequency towards 0.5 pix⁻¹) at the price of more noise; the paper chooses R
    below the noise level of the initial image (given in ``meta["noise_initial"]``).

    Parameters
    ----------
    initial : CCDData, NDData, sunpy Map, Quantity or array-like
        The noisy image.
    denoised : CCDData, NDData, sunpy Map, Quantity or array-like
        Its denoised version *before* restoring (``tdr_denoise(..., R=np.inf)``).
    Rs : sequence of float or `~astropy.units.Quantity`
        Thresholds in the image unit; ``np.inf`` restores nothing.
    range, center : optional
        Histogram window of :func:`noise_level`, one for every R and for
        ``initial``; by default the initial image's, as in :func:`evaluate`.
    tolerance : float, optional
        For :func:`deviation_frequency`, in dex.

    Returns
    -------
    `~astropy.table.QTable`
        Columns ``R``, ``restored_fraction``, ``noise_level``,
        ``linear_coefficient``, ``deviation_frequency``, one row per R in the order
        given; ``meta["noise_initial"]`` is the noise level of ``initial``.

    Raises
    ------
    ValueError
        If the shapes differ, no pixel is valid in both, ``Rs`` is empty or holds a
        negative R.
    astropy.units.UnitsError
        If an R cannot be converted to the image unit.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.metrics import r_sweep
    >>> rng = np.random.default_rng(0)
    >>> initial = rng.normal(0, 1.0, (64, 64))
    >>> table = r_sweep(initial, 0.2 * initial, [0.5, 1.0, np.inf])
    >>> table["restored_fraction"].round(2).tolist()
    [0.54, 0.21, 0.0]
    """
    (a, d), valid, unit = images((initial, "initial"), (denoised, "denoised"))
    if isinstance(Rs, u.Quantity):
        Rs = list(np.atleast_1d(Rs))
    thresholds = [threshold_value(R, unit) for R in Rs]
    if not thresholds:
        raise ValueError("Rs must hold at least one threshold")
    a_nan = np.where(valid, a, np.nan)
    window = noise_window(a, valid, unit, range, center)
    freq, p_a = spectrum(filled(a, valid))
    rows = []
    for R in thresholds:
        out, mask = restore(a_nan, np.where(valid, d, np.nan), R)
        rows.append((R, float(mask[valid].mean()),
                     noise_fit(out, valid, window, hint=_hint(center))[0],
                     linear_fit(a[valid], out[valid])[0],
                     first_deviation(p_a, spectrum(filled(out, valid))[1], freq, tolerance, 3)))
    cols = list(zip(*rows))
    table = QTable()
    table["R"] = with_unit(np.array(cols[0]), unit)
    table["restored_fraction"] = np.array(cols[1])
    table["noise_level"] = with_unit(np.array(cols[2]), unit)
    table["linear_coefficient"] = np.array(cols[3])
    table["deviation_frequency"] = np.array(cols[4]) * FREQUENCY_UNIT
    sigma = noise_fit(a, valid, window, hint=_hint(center))[0]
    table.meta["noise_initial"] = with_unit(sigma, unit)
    return table
