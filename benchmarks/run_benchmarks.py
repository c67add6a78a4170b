"""The speed and quality benchmark of tdrdenoise (issue: minutes on a laptop CPU).

Protocol (../shared/data/synthetic, see its README): for every noise type, train a
model with the package defaults on frame23 (training and the distillation of the fast
student), denoise frames 24-27 with the defaults of ``tdr_denoise`` (one pass of the
student) and with ``method="ensemble"`` (per-image fine-tuning and the 16-pass
Monte-Carlo ensemble, the paper's procedure), and compare with clean/; the column
``within_1std`` is the fraction of pixels whose error is below the returned standard
deviation (0.683 for a calibrated Gaussian uncertainty). Also:

- the same frames restored with R = (model noise estimate) / 2;
- BM3D told the true noise sigma, when the ``bm3d`` package is installed;
- the reference configuration of the paper (whole-image steps, learning rate 1e-4,
  100-pass ensemble) trained for the same wall time as the defaults (sigma 0.1 only);
- the default ensemble against a 100-pass ensemble of the same model (sigma 0.1);
- a 4096 x 4096 float32 image (HMI full-disk size) denoised with the defaults (the
  student) and with the ensemble: seconds and peak memory;
- scale-out: ``denoise_files`` over a dask LocalCluster of 1 and of 2 single-thread
  workers, files per minute and their ratio.

Run ``python benchmarks/run_benchmarks.py`` (over an hour on 2 cores); it writes
``benchmarks/results/benchmark.json``, ``benchmark.md`` and ``benchmark.rst``.
``--quick`` runs a tiny smoke version of everything in a minute.
"""
import argparse
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import torch
from astropy.io import fits
from astropy.nddata import CCDData

import tdrdenoise
from tdrdenoise import TDRModel, restore, tdr_denoise
from tdrdenoise.metrics import ssim as _ssim
from tdrdenoise.model import DEFAULT_FINE_TUNE_STEPS, DEFAULT_N_PREDICTIONS, DEFAULT_STEPS

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("TDRDENOISE_DATA", HERE.parents[1] / "shared" / "data"))
NOISES = ["gaussian_sigma0.1", "gaussian_sigma0.2", "poisson", "salt_pepper"]
TEST_FRAMES = [24, 25, 26, 27]


class PeakMemory:
    """Peak resident memory of this process (sampled every 20 ms) within a block."""

    def __enter__(self):
        self._proc = psutil.Process()
        self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(0.02)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)
        self.gib = self.peak / 2**30


def read(noise, frame):
    return fits.getdata(DATA / "synthetic" / noise / f"frame{frame}.fits").astype(np.float64)


def psnr(x, ref):
    return float(10 * np.log10(1.0 / np.mean((np.asarray(x, float) - ref) ** 2)))


def ssim(x, ref):
    return float(_ssim(x, ref, data_range=1.0))


def bm3d_denoise(noisy, sigma):
    try:
        import bm3d
    except ImportError:
        return None
    return bm3d.bm3d(noisy, sigma_psd=sigma)


def run_noise(noise, args, rows, extra):
    train = read(noise, 23)
    model = TDRModel()
    t0 = time.perf_counter()
    with PeakMemory() as mem:
        model.fit(train, steps=args.steps, seed=0, progress=False)
    train_s = time.perf_counter() - t0
    print(f"[{noise}] trained {args.steps} steps in {train_s:.0f} s", flush=True)
    R = model.normalization["scale"] / 2
    res = {k: [] for k in ("tdr", "tdr_R", "ens", "bm3d", "noisy")}
    times = {"tdr": [], "ens": [], "bm3d": []}
    peak = {"tdr": mem.gib, "ens": mem.gib, "bm3d": 0.0}
    cover = {"tdr": [], "ens": []}
    denoised24 = None
    for frame in TEST_FRAMES[:args.frames]:
        noisy, clean = read(noise, frame), read("clean", frame)
        for key, options in (("tdr", {}), ("ens", {"method": "ensemble",
                                                   "n_predictions": args.n_predictions})):
            t0 = time.perf_counter()
            with PeakMemory() as mem:
                out = tdr_denoise(CCDData(noisy, unit="adu"), model, seed=frame,
                                  progress=False, add_keyword=False, **options)
            times[key].append(time.perf_counter() - t0)
            peak[key] = max(peak[key], mem.gib)
            den = out.data
            cover[key].append(float(np.mean(np.abs(den - clean) < out.uncertainty.array)))
            res[key].append((psnr(den, clean), ssim(den, clean)))
            if key == "tdr":
                restored, _ = restore(noisy, den, R)
                res["tdr_R"].append((psnr(restored, clean), ssim(restored, clean)))
                if denoised24 is None:
                    denoised24 = den
        res["noisy"].append((psnr(noisy, clean), ssim(noisy, clean)))
        sigma = float(np.std(noisy - clean))
        t0 = time.perf_counter()
        with PeakMemory() as mem:
            b = bm3d_denoise(noisy, sigma) if not args.no_bm3d else None
        if b is not None:
            times["bm3d"].append(time.perf_counter() - t0)
            peak["bm3d"] = max(peak["bm3d"], mem.gib)
            res["bm3d"].append((psnr(b, clean), ssim(b, clean)))
        print(f"[{noise}] frame{frame}: noisy {res['noisy'][-1][0]:.2f} dB, "
              f"tdr {res['tdr'][-1][0]:.2f} dB, ensemble {res['ens'][-1][0]:.2f} dB, "
              f"tdr R={R:.3f} {res['tdr_R'][-1][0]:.2f} dB"
              + (f", bm3d {res['bm3d'][-1][0]:.2f} dB" if b is not None else ""),
              flush=True)

    def add(method, key, train_seconds, label=None):
        if not res[key]:
            return
        p, s = np.mean(res[key], axis=0)
        rows.append({"noise": noise, "method": label or method, "psnr_db": round(p, 2),
                     "ssim": round(s, 4),
                     "within_1std": (round(float(np.mean(cover[key])), 3)
                                     if cover.get(key) else None),
                     "train_s": train_seconds,
                     "denoise_s_per_frame": (round(float(np.mean(times[method])), 1)
                                             if times.get(method) else None),
                     "peak_mem_gib": round(peak.get(method, 0.0), 2) or None})

    add("noisy", "noisy", None, "noisy input")
    add("tdr", "tdr", round(train_s), "tdrdenoise R=inf (student, default)")
    add("ens", "ens", round(train_s), "tdrdenoise ensemble R=inf")
    add("tdr", "tdr_R", round(train_s), f"tdrdenoise R=sigma/2 ({R:.3f})")
    add("bm3d", "bm3d", None, "BM3D (true sigma)")
    return model, train_s, denoised24


def reference_config(train_s, args, rows, extra):
    """The paper's configuration (whole image, lr 1e-4, 100 passes) for equal time."""
    noise = "gaussian_sigma0.1"
    train, noisy, clean = read(noise, 23), read(noise, 24), read("clean", 24)
    ref = TDRModel(patch_size=544, batch_size=1, learning_rate=1e-4)
    probe = time.perf_counter()
    ref.fit(train, steps=2, seed=0, progress=False, distil_steps=0)
    per_step = (time.perf_counter() - probe) / 2
    steps = max(1, int(train_s / per_step))
    t0 = time.perf_counter()
    ref.fit(train, steps=steps, seed=0, progress=False, distil_steps=0)
    ref_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    with PeakMemory() as mem:
        mean, _ = ref.predict(noisy, n_predictions=args.reference_passes, seed=0,
                              progress=False)
    rows.append({"noise": noise, "method": f"whole-image steps ({steps} steps, lr 1e-4, "
                 f"{args.reference_passes} passes; frame24)",
                 "psnr_db": round(psnr(mean, clean), 2), "ssim": round(ssim(mean, clean), 4),
                 "train_s": round(ref_train),
                 "denoise_s_per_frame": round(time.perf_counter() - t0, 1),
                 "peak_mem_gib": round(mem.gib, 2)})
    print(f"[reference] {steps} steps, {psnr(mean, clean):.2f} dB", flush=True)


def ensemble_convergence(model, args, extra):
    """Default ensemble vs a 100-pass ensemble of the same fine-tuned model (frame24)."""
    noisy, clean = read("gaussian_sigma0.1", 24), read("clean", 24)
    tuned = model.fine_tune(noisy, steps=DEFAULT_FINE_TUNE_STEPS, seed=24)
    out = {}
    for n in sorted({1, 4, args.n_predictions, args.reference_passes}):
        t0 = time.perf_counter()
        mean, _ = tuned.predict(noisy, n_predictions=n, seed=0, progress=False)
        out[n] = {"psnr_db": round(psnr(mean, clean), 2),
                  "seconds": round(time.perf_counter() - t0, 1)}
        print(f"[ensemble] {n} passes: {out[n]['psnr_db']} dB", flush=True)
    extra["ensemble_passes"] = out


def full_disk(model, args, extra):
    """Seconds and peak memory for a 4096 x 4096 float32 image.

    The default (one pass of the student) is run as a user runs it. One pass of the
    teacher network over 4096 x 4096 pixels takes about a minute on 2 cores, so the
    16-pass ensemble is not run here (it would take a quarter of an hour): the
    fine-tuning and a 2-pass ensemble are timed, and the time of the ensemble is
    reported as fine-tuning + 16 / 2 x (2-pass time), the ensemble being a loop over
    passes.
    """
    size = args.full_disk_size
    frame = read("gaussian_sigma0.1", 24).astype(np.float32)
    reps = (size // frame.shape[0] + 1, size // frame.shape[1] + 1)
    image = np.ascontiguousarray(np.tile(frame, reps)[:size, :size])
    t0 = time.perf_counter()
    with PeakMemory() as mem_fast:
        fast = tdr_denoise(image, model, R=np.inf, progress=False)
    fast_s = time.perf_counter() - t0
    assert fast.shape == image.shape and np.isfinite(fast).all()
    del fast
    passes = min(2, args.n_predictions)
    t0 = time.perf_counter()
    with PeakMemory() as mem_ft:
        tuned = model.fine_tune(image, steps=DEFAULT_FINE_TUNE_STEPS, seed=0)
    tune_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with PeakMemory() as mem:
        mean, std = tuned.predict(image, n_predictions=passes, seed=0, progress=False)
    predict_s = time.perf_counter() - t0
    assert mean.shape == image.shape and np.isfinite(mean).all()
    estimate = tune_s + predict_s * args.n_predictions / passes
    extra["full_disk"] = {"shape": list(image.shape), "student_s": round(fast_s, 1),
                          "student_peak_mem_gib": round(mem_fast.gib, 2),
                          "fine_tune_s": round(tune_s, 1),
                          "passes_measured": passes,
                          "predict_s_measured": round(predict_s, 1),
                          "seconds_per_pass": round(predict_s / passes, 1),
                          "default_estimate_s": round(estimate),
                          "n_predictions_default": args.n_predictions,
                          "peak_mem_gib": round(max(mem.gib, mem_ft.gib), 2)}
    print(f"[full disk] {size}x{size}: student {fast_s:.1f} s (peak "
          f"{mem_fast.gib:.2f} GiB); ensemble: fine-tune {tune_s:.0f} s, {passes} passes "
          f"{predict_s:.0f} s, peak {max(mem.gib, mem_ft.gib):.2f} GiB", flush=True)


def scale_out(model, args, extra):
    """Files per minute of ``denoise_files`` on a LocalCluster of 1 and 2 workers."""
    import tempfile

    from dask.distributed import Client, LocalCluster

    from tdrdenoise.batch import denoise_files
    size, n_files = args.scale_out_size, args.scale_out_files
    frame = read("gaussian_sigma0.1", 24).astype(np.float32)
    reps = (size // frame.shape[0] + 1, size // frame.shape[1] + 1)
    image = np.ascontiguousarray(np.tile(frame, reps)[:size, :size])
    out = {}
    with tempfile.TemporaryDirectory() as folder:
        files = []
        for i in range(n_files):
            files.append(os.path.join(folder, f"frame{i}.fits"))
            CCDData(np.roll(image, 7 * i, axis=1), unit="adu").write(files[-1])
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                              dashboard_address=None,
                              env={"OMP_NUM_THREADS": "1"}) as cluster, \
                    Client(cluster) as client:
                client.run(lambda: __import__("torch").set_num_threads(1))
                t0 = time.perf_counter()
                table = denoise_files(files, model, output_dir=os.path.join(
                    folder, f"out{workers}"), client=client, device="cpu")
                seconds = time.perf_counter() - t0
            assert table.meta["n_done"] == n_files, table
            out[workers] = {"seconds": round(seconds, 1),
                            "files_per_min": round(60 * n_files / seconds, 2)}
            print(f"[scale-out] {workers} worker(s): {n_files} files of {size}^2 in "
                  f"{seconds:.1f} s", flush=True)
    out["ratio"] = round(out[2]["files_per_min"] / out[1]["files_per_min"], 2)
    extra["scale_out"] = {"size": size, "files": n_files}
    extra["scale_out"].update({str(k): v for k, v in out.items()})


def write_tables(rows, extra, out_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    cols = ["noise", "method", "psnr_db", "ssim", "within_1std", "train_s",
            "denoise_s_per_frame", "peak_mem_gib"]
    heads = ["noise", "method", "PSNR (dB)", "SSIM", "within 1 std", "train (s)",
             "denoise (s/frame)", "peak memory (GiB)"]
    fmt = [[("" if r.get(c) is None else str(r[c])) for c in cols] for r in rows]
    md = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    md += ["| " + " | ".join(f) + " |" for f in fmt]
    widths = [max(len(h), *(len(f[i]) for f in fmt)) for i, h in enumerate(heads)]
    sep = " ".join("=" * w for w in widths)
    rst = [sep, " ".join(h.ljust(w) for h, w in zip(heads, widths)), sep]
    rst += [" ".join((v or "..").ljust(w) for v, w in zip(f, widths)) for f in fmt]
    rst.append(sep)
    notes = []
    if "ensemble_passes" in extra:
        notes.append("Ensemble size on gaussian_sigma0.1 frame24 (same fine-tuned model): " +
                     ", ".join(f"{n} passes {v['psnr_db']} dB ({v['seconds']} s)"
                               for n, v in extra["ensemble_passes"].items()) + ".")
    if "full_disk" in extra:
        fd = extra["full_disk"]
        notes.append(f"{fd['shape'][0]} x {fd['shape'][1]} float32 image: the default "
                     f"(one student pass) {fd['student_s']} s, peak memory "
                     f"{fd['student_peak_mem_gib']} GiB. The ensemble: fine-tuning "
                     f"{fd['fine_tune_s']} s, a {fd['passes_measured']}-pass ensemble "
                     f"{fd['predict_s_measured']} s ({fd['seconds_per_pass']} s per pass), "
                     f"peak memory {fd['peak_mem_gib']} GiB; the "
                     f"{fd['n_predictions_default']}-pass ensemble therefore takes about "
                     f"{fd['default_estimate_s']} s (fine-tuning + passes x s per pass).")
    if "scale_out" in extra:
        so = extra["scale_out"]
        notes.append(f"Scale-out: denoise_files over {so['files']} files of {so['size']} x "
                     f"{so['size']} on a dask LocalCluster of single-thread workers: 1 "
                     f"worker {so['1']['files_per_min']} files/min, 2 workers "
                     f"{so['2']['files_per_min']} files/min (ratio {so['ratio']}).")
    notes.append(f"Machine: {extra['machine']}.")
    (out_dir / "benchmark.md").write_text("\n".join(md + [""] + notes) + "\n")
    (out_dir / "benchmark.rst").write_text("\n".join(rst + [""] + notes) + "\n")
    tmp = out_dir / "benchmark.json.tmp"
    tmp.write_text(json.dumps({"rows": rows, **extra}, indent=1))
    os.replace(tmp, out_dir / "benchmark.json")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--n-predictions", type=int, default=DEFAULT_N_PREDICTIONS)
    parser.add_argument("--frames", type=int, default=4, help="test frames per noise (1-4)")
    parser.add_argument("--noises", nargs="+", default=NOISES)
    parser.add_argument("--reference-passes", type=int, default=100)
    parser.add_argument("--full-disk-size", type=int, default=4096)
    parser.add_argument("--scale-out-size", type=int, default=1024)
    parser.add_argument("--scale-out-files", type=int, default=8)
    parser.add_argument("--no-bm3d", action="store_true")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["reference", "ensemble", "full_disk", "scale_out"])
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 5 steps, 1 frame, small full-disk image")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.frames, args.reference_passes = 5, 1, 3
        args.full_disk_size, args.n_predictions = 1024, 2
        args.scale_out_size, args.scale_out_files = 256, 2
    if not DATA.is_dir():
        print(f"no benchmark data at {DATA} (set TDRDENOISE_DATA)", file=sys.stderr)
        return 2
    extra = {"tdrdenoise_version": tdrdenoise.__version__, "torch": torch.__version__,
             "threads": torch.get_num_threads(),
             "machine": f"{platform.processor() or platform.machine()}, "
                        f"{psutil.cpu_count()} cores, torch {torch.__version__}, "
                        f"{torch.get_num_threads()} threads",
             "command": " ".join([Path(sys.argv[0]).name] + (argv or sys.argv[1:])),
             "steps": args.steps, "n_predictions": args.n_predictions}
    rows = []
    models = {}
    for noise in args.noises:
        models[noise] = run_noise(noise, args, rows, extra)
        write_tables(rows, extra, args.out)
    model, train_s, _ = models.get("gaussian_sigma0.1", next(iter(models.values())))
    if "ensemble" not in args.skip:
        ensemble_convergence(model, args, extra)
    if "full_disk" not in args.skip:
        full_disk(model, args, extra)
    if "scale_out" not in args.skip:
        scale_out(model, args, extra)
    if "reference" not in args.skip:
        reference_config(train_s, args, rows, extra)
    write_tables(rows, extra, args.out)
    print((args.out / "benchmark.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
