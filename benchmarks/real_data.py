"""Real-data quality: tdrdenoise against BM3D and a Gaussian filter, in one run.

One table from one run (issue "real-data quality"), every method on the same frames:

- **HMI SHARP active regions** (issue 23): train on one SHARP CEA magnetogram
  (:data:`SHARP_TRAIN`), denoise other regions at other times (:data:`SHARP_TEST`),
  and measure the change of the unsigned flux of the strong-field pixels, the linear
  coefficient (and that of an ideal denoiser), the 8-px-smoothed residual in units of
  white noise of the map's sigma, the noise level and the quiet-Sun offset
  (:func:`active_region_measures`), against BM3D told the noise sigma.
- **HST NGC 1365, F555W** (three independent 10 s exposures): train on obs1, denoise
  obs2, score against obs3 with the Noise2Noise estimate of
  :func:`tdrdenoise.metrics.evaluate` (``gain = 10 log10(noise_variance / mse_n2n)``),
  plus the large-scale damage and the net flux change
  (:func:`tdrdenoise.metrics.large_scale_damage`).
- **MDI full-disk magnetogram**, native grid: train on the image, denoise it; noise
  level by the paper's method (Gaussian fit within +-20 G), linear coefficient at
  R = 5 G, large-scale damage.
- **MDI reprojected to CEA** (sunpy + reproject, bilinear; a 512 x 682 patch around disk
  centre at 0.176 deg/pixel, where the interpolation correlates the noise as in HMI
  SHARP cutouts): the same measures.
- **Correlated-noise synthetic**: clean granulation frames plus noise of sigma 0.1
  passed through a Gaussian kernel (sigma 0.93 px, lag-1 correlation 0.75); PSNR
  against the truth. BM3D is given the exact noise PSD. The row "the truth" gives the
  large-scale damage of removing exactly the noise: correlated noise does not average
  away over 8 pixels, so even a perfect denoiser scores well above 1 there (and on the
  CEA map).
- **Synthetic set** (Gaussian sigma 0.1 and 0.2, Poisson, salt & pepper): train on
  frame23, denoise frames 24 and 25 (``--frames``), PSNR against the truth.
  Baselines: BM3D told sigma; BM3D after an Anscombe transform for Poisson; a 3x3
  median filter then BM3D for salt & pepper.

tdrdenoise runs with the package defaults (``TDRModel().fit(image)``,
``tdr_denoise(image, model)``: one pass of the distilled student) except ``--steps``;
the rows "tdrdenoise ensemble" are the same models with ``method="ensemble"`` (10
fine-tuning steps per image and the 16-pass Monte-Carlo ensemble); the rows
"tdrdenoise calibrate=False" and "tdrdenoise refine=False" are the student without
the level calibration and without the Wiener refinement (the ablations of those
steps). ``net_change_sigma`` is in units of the noise's per-pixel
sigma (taken from the noise sample where the noise is correlated). For the synthetic
sets, ``within_1std`` is the fraction of pixels whose error to the truth is below the
returned standard deviation (0.683 for a calibrated Gaussian uncertainty). Run from
the repository root::

    OMP_NUM_THREADS=2 python benchmarks/real_data.py

It prints the table and the minutes each part took, and writes
``benchmarks/results/real_data.{ecsv,md,rst,json}`` (the minutes in the metadata).
Needs ``pip install bm3d reproject`` and the data in ``../shared/data``.
"""
import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.table import Table
from scipy import ndimage

import tdrdenoise
from tdrdenoise import TDRModel, restore, tdr_denoise
from tdrdenoise.metrics import (evaluate, large_scale_damage, linear_coefficient,
                                noise_level, psnr)

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("TDRDENOISE_DATA", HERE.parents[1] / "shared" / "data"))
MDI = "mdi/mdi.fd_m_96m_lev182.20101015_000000_TAI.data.fits"
#: HMI SHARP CEA magnetograms (issue 23): train on one region, denoise other regions at
#: other times (hmi_sharp/hmi.sharp_cea_720s.<HARP>.<time>_TAI.magnetogram.fits).
SHARP_TRAIN = "1446.20120306_142400"
SHARP_TEST = ("1425.20120306_202400", "1441.20120307_022400", "1449.20120307_142400",
              "1455.20120307_082400", "1460.20120307_142400")
#: Strong-field pixels: farther than this many noise sigmas (paper's method) from 0.
STRONG_NSIGMA = 20.0
#: Gaussian kernel that correlates the synthetic noise (lag-1 correlation 0.75).
KERNEL_SIGMA = 0.93
GAUSS_SIGMA = 1.5
#: Training steps of every model: a quarter of the package default, so that the run
#: (eight models, two at a time) fits 40 minutes on 2 cores; each model's training
#: and distillation take 7-8 minutes on one thread.
STEPS = 500


def _bm3d():
    import bm3d
    if not hasattr(np, "trapz"):  # bm3d's PSD path still calls np.trapz (numpy < 2.4)
        np.trapz = np.trapezoid
    return bm3d


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=STEPS,
                        help=f"training steps of every model (default {STEPS}; 0: the "
                             "package default)")
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    parser.add_argument("--out", type=Path, default=HERE / "results",
                        help="folder for the result tables")
    parser.add_argument("--frames", default="24,25",
                        help="synthetic test frames (default 24,25: two keep the run "
                             "shorter; run_benchmarks.py scores 24-27)")
    parser.add_argument("--only", help="comma-separated parts: sharp,hst,mdi,cea,corr,synthetic")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2,
                        help="parts run side by side, each on one thread (default 2, "
                             "for 2 cores; 1: one part at a time on all threads of "
                             "OMP_NUM_THREADS)")
    return parser.parse_args(argv)


def read(path):
    return fits.getdata(path).astype(np.float64)


class Bench:
    def __init__(self, args):
        self.args = args
        self.rows = []
        self.fit_kwargs = {"seed": args.seed, "progress": False}
        if args.steps:
            self.fit_kwargs["steps"] = args.steps

    def fit(self, image):
        t0 = time.perf_counter()
        model = TDRModel().fit(image, **self.fit_kwargs)
        return model, time.perf_counter() - t0

    def denoise(self, image, model):
        """{row label: (denoised, std, seconds)}: the default (the student) and the
        ensemble, at R = inf, and the student without the level calibration and
        without the Wiener refinement (the ablations of those steps, in the same run)."""
        out = {}
        for label, method, options in (
                ("tdrdenoise", "auto", {}),
                ("tdrdenoise ensemble", "ensemble", {}),
                ("tdrdenoise calibrate=False", "auto", {"calibrate": False}),
                ("tdrdenoise refine=False", "auto", {"refine": False})):
            t0 = time.perf_counter()
            res = tdr_denoise(CCDData(image, unit="adu"), model, method=method,
                              seed=self.args.seed, progress=False, add_keyword=False,
                              **options)
            seconds = time.perf_counter() - t0
            std = np.where(np.isfinite(image), res.uncertainty.array, np.nan)
            out[label] = (np.where(np.isfinite(image), res.data, np.nan), std, seconds)
        return out

    def add(self, dataset, method, **values):
        row = {"dataset": dataset, "method": method}
        row.update(values)
        self.rows.append(row)
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in values.items())
        print(f"{dataset:<22} {method:<32} {shown}", flush=True)

    # ---------------------------------------------------------------- HST
    def hst(self):
        o1, o2, o3 = [read(self.args.data / f"hst/NGC1365_F555W_10s_obs{i}.fits")
                      for i in (1, 2, 3)]
        model, t_fit = self.fit(o1)
        bm3d = _bm3d()
        # the noise of one frame from the two independent exposures (robust)
        sigma = float(evaluate(o2, o2, independent=o3)["noise_variance"][0]) ** 0.5
        methods = [(f"{label} R=inf", den, t_fit, t_den)
                   for label, (den, _, t_den) in self.denoise(o2, model).items()]
        methods += [(f"Gaussian filter {GAUSS_SIGMA} px", ndimage.gaussian_filter(o2, GAUSS_SIGMA),
                    0.0, 0.0)]
        t0 = time.perf_counter()
        b = bm3d.bm3d(o2, sigma_psd=sigma)
        methods.append((f"BM3D told sigma={sigma:.3f}", b, 0.0, time.perf_counter() - t0))
        for name, d, tf, td in methods:
            row = evaluate(o2, d, independent=o3)
            gain = 10 * np.log10(float(row["noise_variance"][0]) / float(row["mse_n2n"][0]))
            dmg = large_scale_damage(o2, d)
            self.add("HST F555W", name, n2n_gain_db=round(gain, 2),
                     damage=round(float(dmg.ratio), 2),
                     net_change_sigma=round(float(dmg.net_change), 3),
                     train_s=round(tf, 1), denoise_s=round(td, 1))

    # ---------------------------------------------------------------- MDI
    def _magnetogram(self, dataset, data, sample=None):
        """The measures on one magnetogram; ``sample``: noise alone with the
        correlations of the map's (for the damage in the noise's own units)."""
        model, t_fit = self.fit(data)
        ours = [(label, den, restore(data, den, 5.0)[0], t_fit, t_den)
                for label, (den, _, t_den) in self.denoise(data, model).items()]
        bm3d = _bm3d()
        valid = np.isfinite(data)
        filled = np.where(valid, data, 0.0)
        sigma = float(noise_level(data, 20.0)[0])
        gauss = np.where(valid, ndimage.gaussian_filter(filled, GAUSS_SIGMA), np.nan)
        b = np.where(valid, bm3d.bm3d(filled, sigma_psd=sigma), np.nan)
        for name, d, d5, tf, td in ours + [
                (f"Gaussian filter {GAUSS_SIGMA} px", gauss, None, 0, 0),
                (f"BM3D told sigma={sigma:.1f} G", b, None, 0, 0)]:
            nl = noise_level(d, 20.0)[0]
            dmg = large_scale_damage(data, d)
            vals = dict(noise_before_G=round(sigma, 2),
                        noise_after_G=round(float(getattr(nl, "value", nl)), 2))
            vals["noise_ratio"] = round(vals["noise_before_G"] / vals["noise_after_G"], 2)
            if d5 is not None:
                vals["lc_R5"] = round(float(linear_coefficient(data, d5)), 4)
            vals.update(damage=round(float(dmg.ratio), 2))
            if sample is not None:
                # in the units of this noise: the ratio, and the net change in its
                # per-pixel sigma (the difference estimate is smaller for correlated noise)
                dmg = large_scale_damage(data, d, noise_sample=sample)
                vals["damage_vs_noise"] = round(float(dmg.ratio), 2)
            vals.update(net_change_sigma=round(float(dmg.net_change), 3),
                        train_s=round(tf, 1), denoise_s=round(td, 1))
            self.add(dataset, name, **vals)

    def mdi(self):
        import sunpy.map
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = sunpy.map.Map(str(self.args.data / MDI))
        self._magnetogram("MDI native", m.data.astype(np.float64))

    def cea(self):
        import sunpy.map
        from sunpy.map.header_helper import make_heliographic_header
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = sunpy.map.Map(str(self.args.data / MDI))
            hdr = make_heliographic_header(m.date, m.observer_coordinate, (1024, 2048),
                                           frame="stonyhurst", projection_code="CEA")
            cea = m.reproject_to(hdr, algorithm="interpolation", order="bilinear")
            # white noise on the native grid through the same reprojection: noise with
            # the correlations of the CEA map's (MDI's own noise is close to white)
            white = np.where(np.isfinite(m.data), np.random.default_rng(self.args.seed)
                             .normal(0.0, 1.0, m.data.shape), np.nan)
            noise = sunpy.map.Map(white, m.meta).reproject_to(
                hdr, algorithm="interpolation", order="bilinear")
        patch = np.asarray(cea.data[256:768, 683:1365], dtype=np.float64)
        sample = np.asarray(noise.data[256:768, 683:1365], dtype=np.float64)
        self._magnetogram("MDI CEA (reprojected)", patch, sample)

    # ---------------------------------------------------------------- HMI SHARP
    def sharp(self):
        """Active regions: train on one SHARP map, denoise other regions at other
        times; strong-field flux, linear coefficient, 8-px residual, noise level and
        quiet-Sun offset against BM3D told the noise sigma and a Gaussian filter."""
        model, t_fit = self.fit(read_sharp(self.args.data, SHARP_TRAIN))
        bm3d = _bm3d()
        worst = {}
        for name in SHARP_TEST:
            data = read_sharp(self.args.data, name)
            valid = np.isfinite(data)
            filled = np.where(valid, data, 0.0)
            sigma = float(noise_level(data, 20.0)[0])
            ours = [(label, den, restore(data, den, 5.0)[0], t_fit, t_den)
                    for label, (den, _, t_den) in self.denoise(data, model).items()]
            t0 = time.perf_counter()
            b = np.where(valid, bm3d.bm3d(filled, sigma_psd=sigma), np.nan)
            t_b = time.perf_counter() - t0
            gauss = np.where(valid, ndimage.gaussian_filter(filled, GAUSS_SIGMA), np.nan)
            for label, d, d5, tf, td in ours + [
                    (f"Gaussian filter {GAUSS_SIGMA} px", gauss, None, 0, 0),
                    ("BM3D told sigma", b, None, 0, t_b)]:
                vals = active_region_measures(data, d, sigma)
                if d5 is not None:
                    vals["lc_R5"] = round(float(linear_coefficient(data, d5)), 4)
                vals.update(train_s=round(tf, 1), denoise_s=round(td, 1))
                self.add(f"HMI SHARP {name.split('.')[0]}", label, **vals)
                w = worst.setdefault(label, {})
                for key, pick in (("strong_flux_pct", lambda v: max(v, key=abs)),
                                  ("lc", min), ("damage_8px", max),
                                  ("quiet_offset_sigma", lambda v: max(v, key=abs))):
                    w.setdefault(key, []).append(vals[key])
                w.setdefault("noise_drop", []).append(vals["noise_before_G"] /
                                                      vals["noise_after_G"])
        for label, w in worst.items():
            self.add(f"HMI SHARP worst of {len(SHARP_TEST)}", label,
                     strong_flux_pct=max(w["strong_flux_pct"], key=abs),
                     lc=min(w["lc"]), damage_8px=max(w["damage_8px"]),
                     noise_ratio=round(min(w["noise_drop"]), 2),
                     quiet_offset_sigma=max(w["quiet_offset_sigma"], key=abs))

    # ---------------------------------------------------------------- synthetic
    def corr(self):
        frames = [int(f) for f in self.args.frames.split(",")]
        clean23 = read(self.args.data / "synthetic/clean/frame23.fits")
        model, t_fit = self.fit(clean23 + correlated_noise(clean23.shape, 0.1, 23))
        bm3d = _bm3d()
        scores = {"tdrdenoise R=inf": [], "tdrdenoise ensemble R=inf": [],
                  "Gaussian filter 2 px": [], "BM3D given the PSD": [], "noisy": []}
        dmg, cover, secs = {}, {}, {}
        truth, truth_vs_noise = [], []
        for f in frames:
            clean = read(self.args.data / f"synthetic/clean/frame{f}.fits")
            noisy = clean + correlated_noise(clean.shape, 0.1, f)
            scores["noisy"].append(psnr(noisy, clean, data_range=1))
            # what removing exactly the noise scores: correlated noise does not average
            # away over 8 px as white noise does, so its ratio is well above 1
            truth.append(large_scale_damage(noisy, clean))
            # the same in units of what this noise leaves after the smoothing (another
            # realisation of it): about 1 for a perfect denoiser
            sample = correlated_noise(clean.shape, 0.1, 1000 + f)
            truth_vs_noise.append(large_scale_damage(noisy, clean, noise_sample=sample))
            self._score(noisy, clean, model, scores, dmg, cover, secs, sample)
            psd = correlated_psd(clean.shape, 0.1)
            for name, est in (("Gaussian filter 2 px", ndimage.gaussian_filter(noisy, 2.0)),
                              ("BM3D given the PSD", bm3d.bm3d(noisy, sigma_psd=psd))):
                scores[name].append(psnr(est, clean, data_range=1))
                dmg.setdefault(name, []).append(large_scale_damage(noisy, est))
                dmg.setdefault(name + " vs noise", []).append(
                    large_scale_damage(noisy, est, noise_sample=sample))
        self._add_scores("synthetic correlated", scores, dmg, cover, secs, t_fit)
        self.add("synthetic correlated", "the truth (removes exactly the noise)",
                 damage=round(float(np.mean([d.ratio for d in truth])), 2),
                 damage_vs_noise=round(float(np.mean([d.ratio for d in truth_vs_noise])),
                                       2),
                 net_change_sigma=round(float(np.mean([d.net_change
                                                       for d in truth_vs_noise])), 3))

    def _score(self, noisy, clean, model, scores, dmg, cover, secs, sample=None):
        """PSNR, damage, calibration and time of both tdrdenoise paths on one frame
        (``sample``: a noise sample for the damage in the noise's own units)."""
        for label, (den, std, seconds) in self.denoise(noisy, model).items():
            name = f"{label} R=inf"
            scores.setdefault(name, []).append(psnr(den, clean, data_range=1))
            dmg.setdefault(name, []).append(large_scale_damage(noisy, den))
            if sample is not None:
                dmg.setdefault(name + " vs noise", []).append(
                    large_scale_damage(noisy, den, noise_sample=sample))
            cover.setdefault(name, []).append(float(np.mean(np.abs(den - clean) < std)))
            secs.setdefault(name, []).append(seconds)

    def _add_scores(self, dataset, scores, dmg, cover, secs, t_fit):
        def mean(values, digits):
            return round(float(np.mean(values)), digits)

        for name, vals in scores.items():
            extra = {}
            if name in dmg:
                extra["damage"] = mean([d.ratio for d in dmg[name]], 2)
                if name + " vs noise" in dmg:
                    extra["damage_vs_noise"] = mean(
                        [d.ratio for d in dmg[name + " vs noise"]], 2)
                # per-pixel sigma: from the noise sample where there is one
                net = dmg.get(name + " vs noise", dmg[name])
                extra["net_change_sigma"] = mean([d.net_change for d in net], 3)
            if name in cover:
                extra.update(within_1std=mean(cover[name], 3), train_s=round(t_fit, 1),
                             denoise_s=mean(secs[name], 2))
            self.add(dataset, name, psnr_db=round(float(np.mean(vals)), 2), **extra)

    def synthetic(self, noise):
        frames = [int(f) for f in self.args.frames.split(",")]
        bm3d = _bm3d()
        sigmas = {"gaussian_sigma0.1": 0.1, "gaussian_sigma0.2": 0.2}
        folder = self.args.data / "synthetic" / noise
        model, t_fit = self.fit(read(folder / "frame23.fits"))
        scores = {"noisy": [], "tdrdenoise R=inf": [], "tdrdenoise ensemble R=inf": []}
        dmg, cover, secs = {}, {}, {}
        for f in frames:
            clean = read(self.args.data / f"synthetic/clean/frame{f}.fits")
            noisy = read(folder / f"frame{f}.fits")
            scores["noisy"].append(psnr(noisy, clean, data_range=1))
            self._score(noisy, clean, model, scores, dmg, cover, secs)
            for name, est in baselines(bm3d, noise, noisy, sigmas.get(noise)):
                scores.setdefault(name, []).append(psnr(est, clean, data_range=1))
        self._add_scores(f"synthetic {noise}", scores, dmg, cover, secs, t_fit)


def read_sharp(data, name):
    """One HMI SHARP CEA magnetogram (compressed: the image is in HDU 1), float64."""
    path = data / f"hmi_sharp/hmi.sharp_cea_720s.{name}_TAI.magnetogram.fits"
    return fits.getdata(path, 1).astype(np.float64)


def active_region_measures(initial, denoised, sigma):
    """The measures of issue 23 on one magnetogram, ``sigma`` its noise level (the
    paper's method, G):

    - ``strong_flux_pct``: change of the unsigned flux of the pixels farther than
      :data:`STRONG_NSIGMA` sigma from 0 in ``initial``, in %;
    - ``lc``: the linear coefficient denoised vs initial, and ``lc_ideal``, that of a
      denoiser that removes exactly noise of variance ``sigma**2`` and nothing else,
      ``1 - sigma**2 / var(initial)`` (a least-squares slope of the truth on the
      noisy image is below 1 by that much);
    - ``damage_8px``: the RMS of the residual smoothed over 8 x 8 pixels in units of
      what white noise of ``sigma`` leaves (correlated noise alone gives about 3);
    - the noise level after, and ``quiet_offset_sigma``: mean(denoised - initial)
      over the quiet pixels (``|initial| < 3 sigma``) in units of ``sigma``.
    """
    valid = np.isfinite(initial) & np.isfinite(denoised)
    x, d = initial[valid], denoised[valid]
    strong = np.abs(x) > STRONG_NSIGMA * sigma
    flux = float((np.abs(d[strong]).sum() / np.abs(x[strong]).sum() - 1) * 100)
    quiet = np.abs(x) < 3 * sigma
    after = noise_level(np.where(valid, denoised, np.nan), 20.0)[0]
    return dict(strong_flux_pct=round(flux, 2),
                lc=round(float(linear_coefficient(initial, denoised)), 4),
                lc_ideal=round(1 - sigma ** 2 / float(np.var(x)), 4),
                damage_8px=round(float(large_scale_damage(initial, denoised,
                                                          noise=sigma).ratio), 2),
                noise_before_G=round(sigma, 2),
                noise_after_G=round(float(getattr(after, "value", after)), 2),
                quiet_offset_sigma=round(float(np.mean(d[quiet] - x[quiet]) / sigma), 3))


def correlated_noise(shape, sigma, seed):
    """White noise through a Gaussian kernel (periodic), scaled to ``sigma``."""
    white = np.random.default_rng(seed).normal(0.0, 1.0, shape)
    noise = ndimage.gaussian_filter(white, KERNEL_SIGMA, mode="wrap")
    return noise * (sigma / np.sqrt(kernel_power(shape)))


def noise_kernel(shape):
    """The periodic impulse response of the kernel that correlates the noise."""
    impulse = np.zeros(shape)
    impulse[0, 0] = 1.0
    return ndimage.gaussian_filter(impulse, KERNEL_SIGMA, mode="wrap")


def kernel_power(shape):
    return float((noise_kernel(shape) ** 2).sum())


def correlated_psd(shape, sigma):
    """The exact noise PSD of :func:`correlated_noise`, in BM3D's convention."""
    k = noise_kernel(shape)
    k *= sigma / np.sqrt((k ** 2).sum())
    return np.abs(np.fft.fft2(k)) ** 2 * shape[0] * shape[1]


def anscombe(x):
    return 2.0 * np.sqrt(np.maximum(x, 0) + 3.0 / 8.0)


def inverse_anscombe(y):
    # closed-form approximation of the exact unbiased inverse (Makitalo & Foi 2011)
    y = np.maximum(y, 1e-3)
    return (0.25 * y ** 2 + 0.25 * np.sqrt(1.5) / y - 11.0 / 8.0 / y ** 2
            + 0.625 * np.sqrt(1.5) / y ** 3 - 1.0 / 8.0)


def baselines(bm3d, noise, noisy, sigma):
    """(name, estimate) of the classical baselines for one synthetic noise type."""
    out = []
    if sigma is not None:
        out.append((f"BM3D told sigma={sigma}", bm3d.bm3d(noisy, sigma_psd=sigma)))
    elif noise == "poisson":
        # the frames are counts scaled to [0, 1]: recover the scale from mean/variance
        peak = poisson_peak(noisy)
        a = anscombe(noisy * peak)
        estimate = inverse_anscombe(bm3d.bm3d(a, sigma_psd=1.0)) / peak
        out.append((f"Anscombe + BM3D (peak {peak:.0f})", estimate))
    else:
        med = ndimage.median_filter(noisy, 3)
        resid = noisy - med
        sigma_med = float(1.4826 * np.median(np.abs(resid - np.median(resid))))
        out.append(("median 3x3 + BM3D", bm3d.bm3d(med, sigma_psd=max(sigma_med, 1e-3))))
        out.append(("median 3x3", med))
    out.append((f"Gaussian filter {GAUSS_SIGMA} px", ndimage.gaussian_filter(noisy, GAUSS_SIGMA)))
    return out


def poisson_peak(noisy):
    """Counts per unit of a Poisson image scaled by 1/peak: var = mean / peak."""
    smooth = ndimage.uniform_filter(noisy, 5)
    resid = noisy - smooth
    # variance of the residual of a 5x5 mean: (1 - 1/25) var
    var = float(np.mean(resid ** 2)) / (1 - 1 / 25)
    return float(np.mean(noisy)) / var


def write(rows, args, seconds, part_minutes):
    args.out.mkdir(parents=True, exist_ok=True)
    keys = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    cols = {k: [row.get(k, np.nan if k not in ("dataset", "method") else "")
                for row in rows] for k in keys}
    table = Table(cols)
    table.meta.update({"command": "python benchmarks/real_data.py " + " ".join(sys.argv[1:]),
                       "seconds": round(seconds, 1), "tdrdenoise": tdrdenoise.__version__,
                       "machine": f"{platform.processor() or platform.machine()}, "
                                  f"{os.cpu_count()} cores, OMP_NUM_THREADS="
                                  f"{os.environ.get('OMP_NUM_THREADS')}",
                       "part_minutes": part_minutes})
    table.write(args.out / "real_data.ecsv", overwrite=True)
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        lines.append("| " + " | ".join("" if row.get(k) is None else str(row.get(k, ""))
                                       for k in keys) + " |")
    (args.out / "real_data.md").write_text("\n".join(lines) + "\n")
    text = Table({k: ["" if row.get(k) is None else str(row.get(k, "")) for row in rows]
                  for k in keys})
    text.write(args.out / "real_data.rst", format="ascii.rst", overwrite=True)
    with open(args.out / "real_data.json", "w") as fh:
        json.dump({"meta": dict(table.meta), "rows": rows}, fh, indent=1, default=float)


SYNTHETIC = ("gaussian_sigma0.1", "gaussian_sigma0.2", "poisson", "salt_pepper")


def run_part(args, part, threads=None):
    """Rows of one part of the benchmark (in a worker process when ``--jobs`` > 1)."""
    if threads:
        import torch
        torch.set_num_threads(threads)
    bench = Bench(args)
    t0 = time.perf_counter()
    try:
        if part.startswith("synthetic:"):
            bench.synthetic(part.split(":", 1)[1])
        else:
            getattr(bench, part)()
    except Exception:  # one failing part must not lose the others' rows
        import traceback
        traceback.print_exc()
        bench.add(part, "FAILED (see the log)")
    minutes = (time.perf_counter() - t0) / 60
    print(f"part {part} took {minutes:.1f} min", flush=True)
    return bench.rows, round(minutes, 1)


def main(argv=None):
    args = parse_args(argv)
    if not args.data.is_dir():
        sys.exit(f"no data at {args.data}: pass --data or set TDRDENOISE_DATA")
    parts = []
    for part in (args.only or "sharp,hst,mdi,cea,corr,synthetic").split(","):
        parts += [f"synthetic:{n}" for n in SYNTHETIC] if part == "synthetic" else [part]
    t0 = time.perf_counter()
    print(f"tdrdenoise {tdrdenoise.__version__}; steps="
          f"{args.steps if args.steps else 'default'}; jobs={args.jobs}", flush=True)
    if args.jobs > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
            results = list(pool.map(run_part, [args] * len(parts), parts,
                                    [1] * len(parts)))
    else:
        results = [run_part(args, part) for part in parts]
    rows = [row for part_rows, _ in results for row in part_rows]
    minutes = {part: m for part, (_, m) in zip(parts, results)}
    seconds = time.perf_counter() - t0
    write(rows, args, seconds, minutes)
    print(f"total {seconds / 60:.1f} min")


if __name__ == "__main__":
    main()
