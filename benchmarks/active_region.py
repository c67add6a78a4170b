"""The HMI tutorial's active region: before, after and residual at R = inf and R = 5 G.

Trains on the SHARP map that ``real_data.py`` trains on (HARP 1446, 2012-03-06
14:24), denoises NOAA 11429 (HARP 1449) a day later with the defaults, and prints the
measures of issue 23 (:func:`real_data.active_region_measures`) for R = inf, R = 5 G
and BM3D told the noise sigma. Writes ``docs/_static/figures/hmi_active_region.png``.
Run from the repository root::

    OMP_NUM_THREADS=2 python benchmarks/active_region.py

Needs ``pip install bm3d`` and the data in ``../shared/data``.
"""
import argparse
import time
from pathlib import Path

import astropy.units as u
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from astropy.nddata import CCDData  # noqa: E402

from real_data import (DATA, SHARP_TRAIN, STEPS, _bm3d, active_region_measures,  # noqa: E402
                       read_sharp)
from tdrdenoise import TDRModel, tdr_denoise  # noqa: E402
from tdrdenoise.metrics import noise_level  # noqa: E402

HERE = Path(__file__).resolve().parent
TARGET = "1449.20120307_142400"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path,
                        default=HERE.parent / "docs/_static/figures/hmi_active_region.png")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    train = CCDData(read_sharp(args.data, SHARP_TRAIN), unit="G")
    model = TDRModel().fit(train, steps=args.steps, seed=0, progress=False)
    print(model, f"({time.perf_counter() - t0:.0f} s)")
    x = read_sharp(args.data, TARGET)
    ccd = CCDData(x, unit="G")
    sigma = float(noise_level(x, 20.0)[0])
    out = {}
    for label, R in (("R = inf", np.inf), ("R = 5 G", 5 * u.G)):
        res = tdr_denoise(ccd, model, R=R, seed=0, progress=False)
        out[label] = (res.data, res.meta["TDRRFRAC"])
    bm3d = _bm3d().bm3d(np.nan_to_num(x), sigma_psd=sigma)
    for label, (d, frac) in list(out.items()) + [("BM3D told sigma", (bm3d, None))]:
        m = active_region_measures(x, d, sigma)
        extra = "" if frac is None else f", restored {100 * frac:.1f} %"
        print(f"{label:16s} strong-field flux {m['strong_flux_pct']:+.2f} %, LC {m['lc']:.4f}, "
              f"8-px residual {m['damage_8px']:.2f}, noise {m['noise_before_G']:.2f} -> "
              f"{m['noise_after_G']:.2f} G, quiet offset {m['quiet_offset_sigma']:+.3f} "
              f"sigma{extra}")
    # a 200 x 300 pixel cut around the strongest fields
    iy, ix = np.unravel_index(np.nanargmax(np.abs(x)), x.shape)
    y0 = int(np.clip(iy - 100, 0, x.shape[0] - 200))
    x0 = int(np.clip(ix - 150, 0, x.shape[1] - 300))
    cut = (slice(y0, y0 + 200), slice(x0, x0 + 300))
    fig, axes = plt.subplots(2, 3, figsize=(13, 6), constrained_layout=True)
    panels = [(x, "observed", 500), (out["R = inf"][0], "tdrdenoise, R = inf", 500),
              (x - out["R = inf"][0], "observed - denoised, R = inf", 20),
              (bm3d, "BM3D told sigma", 500), (out["R = 5 G"][0], "tdrdenoise, R = 5 G", 500),
              (x - out["R = 5 G"][0], "observed - denoised, R = 5 G", 20)]
    for ax, (img, title, lim) in zip(axes.flat, panels):
        im = ax.imshow(img[cut], origin="lower", cmap="gray", vmin=-lim, vmax=lim)
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, shrink=0.8, label="G")
    fig.suptitle(f"HMI SHARP {TARGET} (NOAA 11429), model trained on {SHARP_TRAIN}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    print(f"wrote {args.out} ({time.perf_counter() - t0:.0f} s in all)")


if __name__ == "__main__":
    main()
