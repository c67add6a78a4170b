"""Is the returned uncertainty an error bar? Coverage and reliability, in one run.

For each data set a model is trained with the package defaults (``--steps`` aside) and
other images are denoised with ``tdr_denoise`` at R = inf, with the default student
pass and with ``method="ensemble"``. The returned ``uncertainty`` should be the
standard deviation of the error of the returned value:

- **Synthetic** (truth known): Gaussian sigma 0.1 and 0.2, Poisson, and noise of sigma
  0.1 correlated between neighbours (``real_data.correlated_noise``); train on
  frame23, denoise frames 24 and 25. Reported: the fraction of pixels whose error is
  within 1 and 2 returned sigmas (0.683 and 0.954 for an honest Gaussian error bar),
  and in each fifth of the pixels sorted by sigma the ratio RMS(error) / RMS(sigma)
  (1 for an honest error bar: a reliability diagram).
- **HST NGC 1365 F555W** (no truth): train on obs1, denoise obs2; in each fifth of
  the pixels sorted by sigma the squared error is estimated from the independent
  exposures as ``mean((d - obs3)**2) - mean((obs1 - obs3)**2) / 2`` (cosmic-ray
  pixels, more than 5 sigmas in ``obs1 - obs3`` or ``obs2 - obs3``, left out), and its
  root against RMS(sigma) is the ratio. On a 300 x 300 frame each fifth holds 18 000
  pixels, and the estimate is the small difference of two terms of the size of the
  noise variance: ``se_fifth1..5`` give the standard error of each ratio (from the
  scatter of the estimate in the fifth), large in the fifths of small sigma.
- A baseline in the same run: a **constant** error bar equal to the whole image's RMS
  error (an oracle: it needs the truth), which a per-pixel sigma must beat in the
  reliability diagram.

Run from the repository root::

    OMP_NUM_THREADS=2 python benchmarks/uncertainty.py

It writes ``benchmarks/results/uncertainty.{ecsv,md,rst}`` and the reliability diagram
``docs/_static/figures/uncertainty_reliability.png`` (page *Trusting the output*).
Needs the data in ``../shared/data`` (or ``$TDRDENOISE_DATA``) and matplotlib.
"""
import argparse
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

import tdrdenoise
from tdrdenoise import TDRModel, tdr_denoise

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from real_data import DATA, correlated_noise  # noqa: E402

#: Training steps of every model (a fifth of the package default, to keep the run short).
STEPS = 400
SETS = ("gaussian_sigma0.1", "gaussian_sigma0.2", "poisson", "correlated", "hst")
#: Bins of the reliability diagram in the figure (the table has fifths).
FIGURE_BINS = 10


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=STEPS,
                        help=f"training steps of every model (default {STEPS})")
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--figure", type=Path,
                        default=HERE.parent / "docs/_static/figures/uncertainty_reliability.png")
    parser.add_argument("--only", help="comma-separated sets: " + ",".join(SETS))
    parser.add_argument("--jobs", type=int, default=2,
                        help="sets run side by side, one thread each (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def read(path):
    return fits.getdata(path).astype(np.float64)


def binned(err2, var, nbins, const=None):
    """RMS(error) / RMS(sigma), RMS(sigma) and RMS(error) in ``nbins`` bins of equal
    counts of pixels sorted by sigma (``err2``: the squared error, or an unbiased
    estimate of it); ``const``: a constant sigma in place of the returned one (the
    bins stay those of the returned sigma)."""
    order = np.argsort(var, kind="stable")
    out = []
    for chunk in np.array_split(order, nbins):
        e2 = float(np.mean(err2[chunk]))
        v = float(np.mean(var[chunk])) if const is None else const ** 2
        out.append((np.sqrt(max(e2, 0.0) / v), np.sqrt(v), np.sqrt(max(e2, 0.0))))
    return out


def ratio_errors(err2, var, nbins):
    """The standard error of each bin's ratio of :func:`binned` (from the scatter of
    ``err2`` in the bin; the delta method; NaN where the mean is not positive)."""
    order = np.argsort(var, kind="stable")
    out = []
    for chunk in np.array_split(order, nbins):
        e2, v = float(np.mean(err2[chunk])), float(np.mean(var[chunk]))
        se = float(np.std(err2[chunk])) / np.sqrt(chunk.size)
        out.append(se / (2 * np.sqrt(e2 * v)) if e2 > 0 else np.nan)
    return out


def images(args, name):
    """(training image, [(noisy, truth or None, independent or None), ...])."""
    syn = args.data / "synthetic"
    if name == "hst":
        o1, o2, o3 = [read(args.data / f"hst/NGC1365_F555W_10s_obs{i}.fits")
                      for i in (1, 2, 3)]
        return o1, [(o2, None, (o1, o3))]
    frames = []
    for f in (23, 24, 25):
        clean = read(syn / f"clean/frame{f}.fits")
        if name == "correlated":
            noisy = clean + correlated_noise(clean.shape, 0.1, f)
        else:
            noisy = read(syn / f"{name}/frame{f}.fits")
        frames.append((noisy, clean, None))
    return frames[0][0], frames[1:]


def run_set(args, name, threads=None):
    """The rows and the figure's curves of one data set."""
    warnings.simplefilter("ignore")
    if threads:
        import torch
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    train, tests = images(args, name)
    model = TDRModel().fit(train, steps=args.steps, seed=args.seed, progress=False)
    t_fit = time.perf_counter() - t0
    rows, curves = [], {}
    for method in ("student", "ensemble"):
        err2, var, within1, within2, seconds = [], [], [], [], 0.0
        for noisy, truth, indep in tests:
            t1 = time.perf_counter()
            res = tdr_denoise(CCDData(noisy, unit="adu"), model, method=method,
                              seed=args.seed, progress=False, add_keyword=False)
            seconds += time.perf_counter() - t1
            d, s = res.data, res.uncertainty.array
            if truth is not None:
                ok = np.isfinite(d) & np.isfinite(s)
                e = (d - truth)[ok]
                err2.append(e * e)
                var.append(s[ok] ** 2)
                within1.append(np.abs(e) <= s[ok])
                within2.append(np.abs(e) <= 2 * s[ok])
            else:
                o1, o3 = indep
                n13 = o1 - o3
                mad = 1.4826 * np.median(np.abs(n13 - np.median(n13)))
                ok = ((np.abs(n13) < 5 * mad) & (np.abs(noisy - o3) < 5 * mad)
                      & np.isfinite(d) & np.isfinite(s))
                err2.append(((d - o3) ** 2 - n13 ** 2 / 2)[ok])
                var.append(s[ok] ** 2)
        err2, var = np.concatenate(err2), np.concatenate(var)
        fifths = binned(err2, var, 5)
        row = {"data": name, "method": method, "steps": args.steps}
        if within1:
            row["within_1sigma"] = round(float(np.mean(np.concatenate(within1))), 3)
            row["within_2sigma"] = round(float(np.mean(np.concatenate(within2))), 3)
        for i, (ratio, _, _) in enumerate(fifths, 1):
            row[f"ratio_fifth{i}"] = round(ratio, 2)
        if not within1:  # estimated squared errors: how precise each ratio is
            for i, se in enumerate(ratio_errors(err2, var, 5), 1):
                row[f"se_fifth{i}"] = round(se, 2)
        row["rms_error_over_rms_sigma"] = round(
            float(np.sqrt(max(err2.mean(), 0) / var.mean())), 3)
        row["train_s"] = round(t_fit, 1)
        row["denoise_s"] = round(seconds / len(tests), 2)
        rows.append(row)
        curves[method] = binned(err2, var, FIGURE_BINS)
        if within1 and method == "student":
            # the oracle constant error bar: the whole image's RMS error everywhere,
            # in the fifths of the student's sigma
            const = float(np.sqrt(err2.mean()))
            e = np.sqrt(err2)
            rows.append({"data": name, "method": "constant sigma (oracle RMS error)",
                         "steps": args.steps,
                         "within_1sigma": round(float(np.mean(e <= const)), 3),
                         "within_2sigma": round(float(np.mean(e <= 2 * const)), 3),
                         **{f"ratio_fifth{i}": round(r, 2) for i, (r, _, _) in
                            enumerate(binned(err2, var, 5, const), 1)},
                         "rms_error_over_rms_sigma": 1.0})
    for row in rows:
        print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    return rows, curves


def figure(curves, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(curves)
    fig, axes = plt.subplots(1, len(names), figsize=(3.0 * len(names), 3.2))
    for ax, name in zip(np.atleast_1d(axes), names):
        lo, hi = np.inf, 0.0
        for method, style in (("student", "o-"), ("ensemble", "s--")):
            pts = curves[name][method]
            x = [p[1] for p in pts]
            y = [p[2] for p in pts]
            ax.plot(x, y, style, ms=4, label=method)
            lo, hi = min(lo, *x, *[v for v in y if v > 0]), max(hi, *x, *y)
        grid = np.array([lo / 1.3, hi * 1.3])
        ax.fill_between(grid, grid * 0.8, grid * 1.25, color="0.9", label="ratio 0.8-1.25")
        ax.plot(grid, grid, "k:", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("RMS returned sigma")
    np.atleast_1d(axes)[0].set_ylabel("RMS error")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def write(rows, args, seconds):
    args.out.mkdir(parents=True, exist_ok=True)
    keys = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    table = Table({k: [row.get(k, np.nan if k not in ("data", "method") else "")
                       for row in rows] for k in keys})
    table.meta.update({"command": "python benchmarks/uncertainty.py " + " ".join(sys.argv[1:]),
                       "seconds": round(seconds, 1), "tdrdenoise": tdrdenoise.__version__,
                       "machine": f"{platform.processor() or platform.machine()}, "
                                  f"{os.cpu_count()} cores, OMP_NUM_THREADS="
                                  f"{os.environ.get('OMP_NUM_THREADS')}"})
    table.write(args.out / "uncertainty.ecsv", overwrite=True)
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(k, "")) for k in keys) + " |")
    (args.out / "uncertainty.md").write_text("\n".join(lines) + "\n")
    text = Table({k: [str(row.get(k, "")) for row in rows] for k in keys})
    text.write(args.out / "uncertainty.rst", format="ascii.rst", overwrite=True)


def main(argv=None):
    args = parse_args(argv)
    if not args.data.is_dir():
        sys.exit(f"no data at {args.data}: pass --data or set TDRDENOISE_DATA")
    names = args.only.split(",") if args.only else list(SETS)
    t0 = time.perf_counter()
    if args.jobs > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
            results = list(pool.map(run_set, [args] * len(names), names, [1] * len(names)))
    else:
        results = [run_set(args, name) for name in names]
    rows = [row for part, _ in results for row in part]
    curves = {name: c for name, (_, c) in zip(names, results)}
    seconds = time.perf_counter() - t0
    write(rows, args, seconds)
    figure(curves, args.figure)
    print(f"total {seconds / 60:.1f} min")


if __name__ == "__main__":
    main()
