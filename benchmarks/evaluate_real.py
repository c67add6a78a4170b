"""The paper's evaluation of TDR on real and simulated data, with tdrdenoise.metrics.

(a) HST NGC 1365, F555W (three independent 10 s exposures, no clean truth): train a
    TDRModel on obs1, denoise obs2 (R = inf, and R = 0.3 counts/s by restoring), then
    ``evaluate(initial=obs2, denoised, independent=obs3)`` (the Noise2Noise-style
    estimate of the error to the unknown truth), ``r_sweep`` over
    R = 0.1, 0.2, 0.3, 0.5, 1.0, inf counts/s, and ``detect_sources`` before/after at
    the same threshold.
(b) Synthetic photosphere, Gaussian noise sigma 0.1: train on frame23, denoise frame24,
    evaluate against clean/frame24 (PSNR data range 1) and sweep R.

Tables are printed and written as ECSV to ``--out``; the figures of the documentation
page *Evaluating a denoised image* go to ``--figures``. Everything except the training
steps uses the package defaults (``tdr_denoise``: 10 fine-tuning steps, a 16-pass
ensemble)::

    OMP_NUM_THREADS=2 python benchmarks/evaluate_real.py --steps 300

Data are read from ``../shared/data`` (or ``$TDRDENOISE_DATA``, or ``--data``).
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.table import QTable, vstack

from tdrdenoise import TDRModel, restore, tdr_denoise
from tdrdenoise.metrics import detect_sources, evaluate, psnr, r_sweep, ssim

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("TDRDENOISE_DATA", HERE.parents[1] / "shared" / "data"))
HST_RS = [0.1, 0.2, 0.3, 0.5, 1.0, np.inf]
SYNTHETIC_RS = [0.02, 0.05, 0.1, 0.2, 0.3, np.inf]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300,
                        help="training steps of each model (default: 300)")
    parser.add_argument("--data", type=Path, default=DATA,
                        help="the shared data folder (default: ../shared/data)")
    parser.add_argument("--out", type=Path, default=HERE / "results",
                        help="folder for the ECSV tables (default: benchmarks/results)")
    parser.add_argument("--figures", type=Path,
                        default=HERE.parent / "docs" / "_static" / "figures",
                        help="folder for the PNG figures (default: docs/_static/figures)")
    parser.add_argument("--no-figures", action="store_true", help="skip the figures")
    parser.add_argument("--only", choices=["hst", "synthetic"], help="run one part only")
    parser.add_argument("--seed", type=int, default=0, help="training and ensemble seed")
    parser.add_argument("--device", default="auto", help="torch device (default: auto)")
    parser.add_argument("--cache", type=Path,
                        help="folder for the denoised images: read them from there when "
                             "present (no training), else write them there")
    return parser.parse_args(argv)


# ---------------------------------------------------------------------- output
def long_form(table, labels):
    """A wide one-row-per-image table as one row per metric (easier to read)."""
    out = QTable()
    names = [c for c in table.colnames if c not in ("image", "mode")]
    out["metric"] = names
    out["unit"] = [str(getattr(table[c], "unit", "") or "") for c in names]
    for i, label in enumerate(labels):
        out[label] = [_fmt(table[c][i]) for c in names]
    return out


def _fmt(value):
    value = value.value if isinstance(value, u.Quantity) else value
    return f"{value:.4g}" if isinstance(value, (float, np.floating)) else str(value)


def show(title, table):
    print(f"\n{title}\n" + "-" * len(title))
    table.pprint_all()


def write(table, path):
    table.write(path, format="ascii.ecsv", overwrite=True)
    print(f"wrote {path}")


def save(fig, path):
    fig.savefig(path, dpi=72)
    import matplotlib.pyplot as plt
    plt.close(fig)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} kB)")


def train_and_denoise(training, image, args, what):
    """Train on ``training``, denoise ``image`` with R=inf; values as an array.

    With ``--cache``, a denoised image saved by an earlier run with the same steps
    and seed is read instead.
    """
    cached = None
    if args.cache is not None:
        cached = args.cache / f"{what}_steps{args.steps}_seed{args.seed}.fits"
        if cached.is_file():
            print(f"{what}: read the denoised image from {cached}")
            return fits.getdata(cached)
    t0 = time.perf_counter()
    model = TDRModel(device=args.device).fit(training, steps=args.steps, seed=args.seed)
    print(f"{what}: trained {args.steps} steps in {time.perf_counter() - t0:.0f} s")
    t0 = time.perf_counter()
    out = tdr_denoise(image, model, R=np.inf, seed=args.seed)
    print(f"{what}: denoised in {time.perf_counter() - t0:.0f} s")
    data = np.asarray(getattr(out, "data", out))
    if cached is not None:
        args.cache.mkdir(parents=True, exist_ok=True)
        fits.writeto(cached, data, overwrite=True)
    return data


# ---------------------------------------------------------------------- HST
def run_hst(args):
    folder = args.data / "hst"
    obs1, obs2, obs3 = (CCDData.read(folder / f"NGC1365_F555W_10s_obs{i}.fits")
                        for i in (1, 2, 3))  # unit from BUNIT: count / s
    unit = obs2.unit
    initial = u.Quantity(obs2.data, unit)
    den_inf = u.Quantity(train_and_denoise(obs1, obs2, args, "hst_obs2"), unit)
    # the same as tdr_denoise(obs2, model, R=0.3 * unit, seed=...) with the same seed;
    # a Quantity keeps the restored pixels valid (a CCDData output masks them)
    den_03, _ = restore(initial, den_inf, 0.3 * unit)

    labels = ["obs2 (noisy)", "R=inf", "R=0.3 ct/s"]
    table = vstack([evaluate(obs2, image, independent=obs3, center=None)
                    for image in (initial, den_inf, den_03)])
    table.add_column(labels, name="image", index=0)
    show("HST: evaluate(initial=obs2, denoised, independent=obs3)", long_form(table, labels))
    write(table, args.out / "hst_evaluate.ecsv")

    Rs = [R * unit for R in HST_RS]
    sweep = r_sweep(initial, den_inf, Rs, center=None)
    sweep["mse_n2n"] = u.Quantity([evaluate(obs2, restore(initial, den_inf, R)[0],
                                            independent=obs3, center=None)["mse_n2n"][0]
                                   for R in Rs])
    show(f"HST: r_sweep (noise level of obs2: {sweep.meta['noise_initial']:.3f}; "
         f"raw MSE sigma^2 = {table['noise_variance'][0]:.4f})", sweep)
    write(sweep, args.out / "hst_r_sweep.ecsv")

    rows = []
    for label, image in zip(labels[1:], (den_inf, den_03)):
        found = detect_sources(initial, image, nsigma=3.0, npixels=5)
        rows.append({"denoised": label, "threshold": found["threshold"],
                     "n_initial": found["n_initial"], "n_denoised": found["n_denoised"],
                     "n_new": found["n_new"]})
    sources = QTable(rows=rows)
    show("HST: detect_sources(obs2, denoised, nsigma=3, npixels=5)", sources)
    write(sources, args.out / "hst_sources.ecsv")

    if not args.no_figures:
        from tdrdenoise import visualization as vis
        fig = args.figures
        save(vis.plot_comparison(obs2, den_inf, stretch="asinh"), fig / "hst_comparison.png")
        save(vis.plot_scatter(initial, den_inf, limits=(-0.5, 3.0)), fig / "hst_scatter.png")
        names = ["obs2", "denoised, R=inf", "restored, R=0.3"]
        save(vis.plot_histograms(initial, den_inf, center=None, reference=den_03,
                                 labels=names, log=True), fig / "hst_histograms.png")
        save(vis.plot_power_spectra(initial, den_inf, reference=den_03, labels=names),
             fig / "hst_power_spectra.png")
        save(vis.plot_r_sweep(sweep), fig / "hst_r_sweep.png")


# ---------------------------------------------------------------------- synthetic
def run_synthetic(args):
    folder = args.data / "synthetic"

    def read(kind, frame):
        return fits.getdata(folder / kind / f"frame{frame}.fits").astype(np.float64)

    train_image, initial, clean = (read("gaussian_sigma0.1", 23),
                                   read("gaussian_sigma0.1", 24), read("clean", 24))
    den_inf = train_and_denoise(train_image, initial, args, "synthetic_frame24")

    labels = ["frame24 (noisy)", "R=inf"]
    table = vstack([evaluate(initial, image, reference=clean, data_range=1.0, center=None)
                    for image in (initial, den_inf)])
    table.add_column(labels, name="image", index=0)
    show("Synthetic sigma=0.1: evaluate(frame24, denoised, reference=clean/frame24)",
         long_form(table, labels))
    write(table, args.out / "synthetic_evaluate.ecsv")

    sweep = r_sweep(initial, den_inf, SYNTHETIC_RS, center=None)
    restored = [restore(initial, den_inf, R)[0] for R in SYNTHETIC_RS]
    sweep["psnr"] = [psnr(x, clean, data_range=1.0) for x in restored]
    sweep["ssim"] = [ssim(x, clean, data_range=1.0) for x in restored]
    show("Synthetic sigma=0.1: r_sweep (true noise sigma 0.1)", sweep)
    write(sweep, args.out / "synthetic_r_sweep.ecsv")

    if not args.no_figures:
        from tdrdenoise import visualization as vis
        fig = args.figures
        crop = (slice(0, 128), slice(0, 128))  # a corner, to see the granules
        save(vis.plot_comparison(initial[crop], den_inf[crop], reference=clean[crop]),
             fig / "synthetic_comparison.png")
        save(vis.plot_power_spectra(initial, den_inf, reference=clean),
             fig / "synthetic_power_spectra.png")
        save(vis.plot_r_sweep(sweep), fig / "synthetic_r_sweep.png")


def main(argv=None):
    args = parse_args(argv)
    if not args.data.is_dir():
        sys.exit(f"no data folder at {args.data}; pass --data or set TDRDENOISE_DATA")
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.no_figures:
        import matplotlib
        matplotlib.use("Agg")
        args.figures.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.only in (None, "hst"):
        run_hst(args)
    if args.only in (None, "synthetic"):
        run_synthetic(args)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
