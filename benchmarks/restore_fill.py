"""The two fills of the restore step (issue 25): ``fill="initial"`` against ``"ambient"``.

- **HST NGC 1365, F555W**: a model trained on obs1 (200 steps), obs2 denoised once at
  R = inf, then restored at R = 0.1, 0.2 and 0.3 (counts/s) with each fill; the
  Noise2Noise gain against obs3 (``10 log10(noise_variance / mse_n2n)`` of
  :func:`tdrdenoise.metrics.evaluate`), the fraction of pixels restored, and the
  change of the summed flux above the sky (median) of the bright pixels (more than
  20 sigma above it in obs2: star peaks, galaxy core, cosmic rays), in %.
- **HMI SHARP**: a model trained on region 1446 (2012-03-06 14:24, 200 steps), three
  other regions denoised once at R = inf, then restored at R = 5 G with each fill:
  the noise level after (paper's method, :func:`tdrdenoise.metrics.noise_level` with
  a +-20 G window), the change of the unsigned flux of the strong-field pixels
  (|B| > 20 sigma), the linear coefficient denoised vs initial, and the fraction
  restored.

Restoring the R = inf result with :func:`tdrdenoise.restore`, the pixels the network
did not replace (invalid, extreme) held out, is what ``tdr_denoise(..., R=R,
fill=fill)`` and ``tdrdenoise restore`` do, without a network pass per R. Models are
cached in ``--models`` (trained there when missing, a few minutes each on one
thread). Run from the repository root::

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/restore_fill.py --models /work/exp25
"""
import argparse
import os
import time
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.nddata import CCDData

from tdrdenoise import TDRModel, restore, tdr_denoise
from tdrdenoise.metrics import evaluate, linear_coefficient, noise_level

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("TDRDENOISE_DATA", HERE.parents[1] / "shared" / "data"))
SHARP_TRAIN = "1446.20120306_142400"
SHARP_TEST = ("1425.20120306_202400", "1449.20120307_142400", "1460.20120307_142400")
HST_R = (0.1, 0.2, 0.3)
SHARP_R = 5.0
STRONG_NSIGMA = 20.0


def sharp_path(data, name):
    return data / f"hmi_sharp/hmi.sharp_cea_720s.{name}_TAI.magnetogram.fits"


def model_for(path, image, steps):
    if path.exists():
        return TDRModel.load(path, device="cpu")
    model = TDRModel().fit(image, steps=steps, seed=0, progress=False)
    model.save(path)
    return model


def denoise_once(image, model, unit):
    """(initial, denoised at R = inf with NaN where the network replaced nothing)."""
    ccd = CCDData(np.asarray(image, dtype=np.float64), unit=unit)
    out = tdr_denoise(ccd, model, R=np.inf, seed=0, progress=False, add_keyword=False)
    return ccd.data, np.where(out.mask, np.nan, out.data)


def restored(initial, denoised, R, fill):
    """What tdr_denoise(R=R, fill=fill) returns: held-out pixels keep their values."""
    out, mask = restore(initial, denoised, R, fill=fill)
    held = ~np.isfinite(denoised)
    return np.where(held, initial, out), mask & ~held


def hst(args):
    o1, o2, o3 = [fits.getdata(args.data / f"hst/NGC1365_F555W_10s_obs{i}.fits")
                  .astype(np.float64) for i in (1, 2, 3)]
    model = model_for(args.models / "hst_200.tdr", o1, args.steps)
    initial, den = denoise_once(o2, model, "adu")
    sky = np.nanmedian(o2)
    sigma = float(np.sqrt(evaluate(o2, o2, independent=o3)["noise_variance"][0]))
    bright = np.isfinite(den) & (o2 - sky > STRONG_NSIGMA * sigma)
    print(f"HST F555W obs2 vs obs3 (Noise2Noise gain, dB; noise {sigma:.3f} ct/s, "
          f"{bright.sum()} bright pixels)")
    print(f"{'R':>6} {'fill':>8} {'gain_dB':>8} {'restored_%':>10} {'bright_flux_%':>13}")
    for R in (np.inf,) + HST_R:
        for fill in ("initial", "ambient"):
            if np.isinf(R) and fill == "ambient":
                continue
            d, mask = restored(initial, den, R, fill)
            row = evaluate(o2, d, independent=o3)
            gain = 10 * np.log10(float(row["noise_variance"][0]) / float(row["mse_n2n"][0]))
            flux = ((d[bright] - sky).sum() / (o2[bright] - sky).sum() - 1) * 100
            print(f"{R:>6g} {fill:>8} {gain:>8.2f} {100 * mask.mean():>10.3f} "
                  f"{flux:>13.2f}", flush=True)


def sharp_measures(initial, d, sigma):
    valid = np.isfinite(initial) & np.isfinite(d)
    x, y = initial[valid], d[valid]
    strong = np.abs(x) > STRONG_NSIGMA * sigma
    flux = float((np.abs(y[strong]).sum() / np.abs(x[strong]).sum() - 1) * 100)
    after = noise_level(np.where(valid, d, np.nan), 20.0)[0]
    return (float(getattr(after, "value", after)), flux,
            float(linear_coefficient(initial, d)))


def sharp(args):
    train = CCDData.read(sharp_path(args.data, SHARP_TRAIN), hdu=1, unit="G")
    model = model_for(args.sharp_model or args.models / "sharp_200.tdr", train, args.steps)
    print(f"HMI SHARP, R = {SHARP_R:g} G (noise after in G, strong-field flux change in %, "
          "linear coefficient)")
    print(f"{'region':>22} {'R':>5} {'fill':>8} {'noise_G':>8} {'strong_%':>9} "
          f"{'lc':>7} {'restored_%':>10}")
    for name in SHARP_TEST:
        ccd = CCDData.read(sharp_path(args.data, name), hdu=1, unit="G")
        initial, den = denoise_once(ccd.data, model, "G")
        sigma = float(getattr(noise_level(initial, 20.0)[0], "value",
                              noise_level(initial, 20.0)[0]))
        print(f"{name:>22} noise before {sigma:.2f} G")
        for R in (np.inf, SHARP_R):
            for fill in ("initial", "ambient"):
                if np.isinf(R) and fill == "ambient":
                    continue
                d, mask = restored(initial, den, R, fill)
                noise, flux, lc = sharp_measures(initial, d, sigma)
                print(f"{name:>22} {R:>5g} {fill:>8} {noise:>8.2f} {flux:>9.2f} {lc:>7.4f} "
                      f"{100 * mask[np.isfinite(initial)].mean():>10.2f}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--models", type=Path, default=HERE / "results" / "models",
                        help="folder of the cached models (hst_200.tdr, sharp_200.tdr)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--sharp-model", type=Path, default=None,
                        help="a model file trained on the SHARP training map, used "
                             "instead of models/sharp_200.tdr")
    parser.add_argument("--only", choices=["hst", "sharp"], default=None)
    args = parser.parse_args(argv)
    args.models.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.only in (None, "hst"):
        hst(args)
    if args.only in (None, "sharp"):
        sharp(args)
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
