"""The whole method on generated data with known truth (``tdrdenoise demo``).

:func:`run_demo` trains a model on one synthetic granulation image, denoises another
one of the same kind (different seed, same noise), restores, and scores the result
against the known truth: a self-contained check that the installation works and an
illustration of what R does.
"""
import os
import time

import numpy as np
from astropy.table import Table

from .datasets import make_granulation
from ._defaults import DEFAULT_N_PREDICTIONS
from .prediction.student import resolve_method
from .model import DEFAULT_FINE_TUNE_STEPS

__all__ = ["run_demo", "DEMO_STEPS"]

#: Training steps of the demo: about 15 s on 2 CPU cores.
DEMO_STEPS = 300
#: Distillation steps of the demo's student (about 45 s on 2 CPU cores).
DEMO_DISTIL_STEPS = 200


def _psnr(image, truth):
    """PSNR in dB against the truth, whose range is 1."""
    from .metrics import psnr

    return psnr(image, truth, data_range=1.0)


def _figure(noisy, truth, restored, noise, path):
    """Write the demo figure; returns its path, or None without matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    from .visualization import plot_comparison

    # a bare Figure: no pyplot, so the user's backend and open figures are untouched
    fig = plot_comparison(noisy, restored, reference=truth, fig=Figure(figsize=(18, 3.6)),
                          labels=["noisy input", "TDR result", "truth"], noise=noise)
    fig.savefig(path, dpi=100)
    return path


def run_demo(steps=DEMO_STEPS, output_dir=".", progress=None, quiet=False, seed=0,
             device="auto", shape=(128, 128), noise=0.1, R=None,
             method="auto", fine_tune_steps=None, n_predictions=None):
    """Train, denoise and restore synthetic granulation images, and score the result.

    A model is trained on one image made by
    :func:`~tdrdenoise.datasets.make_granulation` (with a few bright points) and
    used on another (next seed). The denoised image is restored with threshold R
    and compared with the known truth; the scores are printed along with a sweep
    over R, and a figure is written when matplotlib is installed.

    Parameters
    ----------
    steps : int, optional
        Training steps.
    output_dir : str or path-like, optional
        Folder for the figure ``tdrdenoise_demo.png``; None writes no figure.
    progress : bool or None, optional
        Progress bars; None shows them only on a terminal.
    quiet : bool, optional
        Print nothing.
    seed : int, optional
        Seed of the images (``seed`` and ``seed + 1``), the training and the ensemble.
    device : str, optional
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    shape : tuple of int, optional
        Image shape.
    noise : float, optional
        Standard deviation of the Gaussian noise (the truth spans [0, 1]).
    R : float, optional
        Restore threshold; by default ``4 * noise``, which the noise alone almost never
        exceeds, so what is restored is signal the network smoothed away (the bright
        points). See the printed sweep for smaller values.
    method : {"auto", "student", "ensemble"}, optional
        Passed to :func:`~tdrdenoise.tdr_denoise`: by default the distilled student.
    fine_tune_steps, n_predictions : int, optional
        Passed to :func:`~tdrdenoise.tdr_denoise` (options of the ensemble).

    Returns
    -------
    dict
        ``shape``, ``steps``, ``noise``, ``R``, ``train_seconds``,
        ``denoise_seconds``, ``psnr_noisy``, ``psnr_denoised``, ``psnr_restored``
        (dB, data range 1), ``restored_fraction``, ``sweep`` (an
        `~astropy.table.Table` of PSNR and restored fraction against R), ``figure``
        (path or None) and ``model``.

    Raises
    ------
    ValueError
        For invalid ``steps``, ``shape`` or ``noise``.

    Examples
    --------
    >>> from tdrdenoise.demo import run_demo
    >>> result = run_demo(steps=2, output_dir=None, progress=False, quiet=True,
    ...                   device="cpu", shape=(48, 48), fine_tune_steps=1, n_predictions=2)
    >>> sorted(result)[:4]
    ['R', 'denoise_seconds', 'figure', 'model']
    """
    from .denoise import tdr_denoise
    from .model import TDRModel
    from .restore import restore

    def say(text=""):
        if not quiet:
            print(text, flush=True)

    steps = int(steps)
    if steps < 1:
        raise ValueError(f"steps must be at least 1; got {steps}")
    R = 4.0 * noise if R is None else float(R)
    n_points = max(1, int(shape[0]) * int(shape[1]) // 1000)
    train_noisy, _ = make_granulation(shape, seed=seed, noise=noise, bright_points=n_points)
    noisy, truth = make_granulation(shape, seed=seed + 1, noise=noise,
                                    bright_points=n_points)
    say(f"tdrdenoise demo: synthetic solar granulation, {shape[0]} x {shape[1]} pixels, "
        f"Gaussian noise sigma = {noise:g} (truth spans [0, 1]).")
    model = TDRModel(patch_size=32, batch_size=8, device=device)
    say(f"T  train on image #1 for {steps} steps on {model.device.type}, then distil "
        "the fast student ...")
    t0 = time.perf_counter()
    model.fit(train_noisy, steps=steps, seed=seed, progress=progress,
              distil_steps=min(DEMO_DISTIL_STEPS, steps))
    train_seconds = time.perf_counter() - t0
    say(f"   {train_seconds:.1f} s")
    how = resolve_method(model, method, n_predictions, fine_tune_steps)
    if how == "student":
        say("D  denoise image #2 (one pass of the distilled student) ...")
    else:
        say(f"D  denoise image #2 (fine-tune "
            f"{DEFAULT_FINE_TUNE_STEPS if fine_tune_steps is None else fine_tune_steps} "
            f"steps, {DEFAULT_N_PREDICTIONS if n_predictions is None else n_predictions} "
            "Monte-Carlo dropout passes) ...")
    t0 = time.perf_counter()
    denoised = tdr_denoise(noisy, model, R=np.inf, method=method,
                           fine_tune_steps=fine_tune_steps, n_predictions=n_predictions,
                           seed=seed, progress=progress)
    denoise_seconds = time.perf_counter() - t0
    say(f"   {denoise_seconds:.1f} s")
    restored, restored_mask = restore(noisy, denoised, R)
    fraction = float(restored_mask.mean())
    say(f"R  restore the pixels changed by more than R = {R:g}: "
        f"{100 * fraction:.2f} % of the pixels")

    psnr_noisy = _psnr(noisy, truth)
    psnr_denoised = _psnr(denoised, truth)
    psnr_restored = _psnr(restored, truth)
    rows = []
    for factor in (np.inf, 4, 3, 2, 1, 0.5):
        r = factor * noise
        image, mask = restore(noisy, denoised, r)
        rows.append((f"{factor:g} sigma" if np.isfinite(factor) else "inf", r,
                     _psnr(image, truth), 100 * float(mask.mean())))
    sweep = Table(rows=rows, names=("R", "R_value", "psnr", "restored_percent"))
    sweep["R_value"].format = ".3g"
    sweep["psnr"].format = ".2f"
    sweep["psnr"].unit = "dB"
    sweep["restored_percent"].format = ".2f"

    say()
    say("PSNR against the known truth (data range 1):")
    say(f"   {'noisy input':22s}{psnr_noisy:6.2f} dB")
    say(f"   {'denoised (R = inf)':22s}{psnr_denoised:6.2f} dB")
    say(f"   {f'TDR result (R = {R:g})':22s}{psnr_restored:6.2f} dB  "
        f"({psnr_restored - psnr_noisy:+.1f} dB)")
    say()
    say("Choosing R (pixels changed by more than R get their noisy value back):")
    if not quiet:
        sweep.pprint_all()

    figure = None
    if output_dir is not None:
        os.makedirs(os.fspath(output_dir), exist_ok=True)
        figure = _figure(noisy, truth, restored, noise,
                         os.path.join(os.fspath(output_dir), "tdrdenoise_demo.png"))
        say()
        say(f"Figure: {figure}" if figure else "No figure: matplotlib is not installed.")
    return {"shape": tuple(int(n) for n in shape), "steps": steps, "noise": noise, "R": R,
            "train_seconds": train_seconds, "denoise_seconds": denoise_seconds,
            "psnr_noisy": psnr_noisy, "psnr_denoised": psnr_denoised,
            "psnr_restored": psnr_restored, "restored_fraction": fraction,
            "sweep": sweep, "figure": figure, "model": model}
