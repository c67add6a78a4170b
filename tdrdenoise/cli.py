"""The ``tdrdenoise`` command: train, denoise, evaluate and demo from the shell.

Examples::

    tdrdenoise train obs1.fits -o model.tdr --steps 2000
    tdrdenoise denoise --model model.tdr obs2.fits obs3.fits --R "0.3 ct/s" --output-dir out/
    tdrdenoise evaluate obs2.fits out/obs2_tdr.fits --independent obs3.fits --plot fig.png
    tdrdenoise demo

Every command takes ``--quiet``, ``--device {auto,cpu,cuda}`` and ``--seed``. Exit
codes: 0 success, 1 error (or some files failed), 2 bad usage, 130 interrupted (Ctrl-C),
143 terminated (SIGTERM), 129 hung up (SIGHUP); an interrupted or terminated run
removes its temporary files.
"""
import argparse
import contextlib
import inspect
import os
import signal
import sys
import threading
import time

import numpy as np
from astropy import units as u

from . import __version__
from ._validate import check_seed
from .model import (DEFAULT_FINE_TUNE_STEPS, DEFAULT_N_PREDICTIONS, DEFAULT_STEPS,
                    DEFAULT_TILE_SIZE)

__all__ = ["main", "parse_R"]

_EPILOG = ("Exit codes: 0 success, 1 error or failed files, 2 bad usage, "
           "130 interrupted, 143 terminated (SIGTERM), 129 hung up (SIGHUP). "
           "Run 'tdrdenoise COMMAND --help' for the options of a command.")


class _CLIError(Exception):
    """An error to report in one line, without a traceback."""


class _UsageError(_CLIError):
    """A wrong combination of options (exit code 2)."""


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C so that every cleanup runs."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def parse_R(text):
    """Read a restore threshold from the command line.

    Parameters
    ----------
    text : str
        A number in the image unit (``"5"``), a number with a unit (``"5G"``,
        ``"5 G"``, ``"0.3 ct/s"``), or ``"inf"`` (restore nothing).

    Returns
    -------
    float or `~astropy.units.Quantity`

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` is not a non-negative number with an optional unit.

    Examples
    --------
    >>> from tdrdenoise.cli import parse_R
    >>> parse_R("5G")
    <Quantity 5. G>
    >>> parse_R("0.3 ct/s")
    <Quantity 0.3 ct / s>
    >>> parse_R("5"), parse_R("inf")
    (5.0, inf)
    """
    text = str(text).strip()
    try:
        value = float(text)
    except ValueError:
        try:
            value = u.Quantity(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(
                f"cannot read {text!r} as a number with an optional unit; write e.g. 5, "
                "5G, '0.3 ct/s' or inf") from None
    number = value.value if isinstance(value, u.Quantity) else value
    if np.isnan(number) or number < 0:
        raise argparse.ArgumentTypeError(f"R must be zero or positive; got {text!r}")
    return value


def _hdu(text):
    """--hdu: an index or an extension name."""
    return int(text) if text.lstrip("-").isdigit() else text


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer; got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected zero or a positive integer; got {value}")
    return value


def _at_least_one(text):
    value = _positive_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer of at least 1; got {value}")
    return value


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the seed must be an integer; got {text!r}") from None
    try:
        return check_seed(value, "--seed")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_common(parser, suppress):
    """--quiet, --device, --seed, --debug; on subcommands they default to 'not given'."""
    def default(value):
        return argparse.SUPPRESS if suppress else value
    group = parser.add_argument_group("common options")
    group.add_argument("-q", "--quiet", action="store_true", default=default(False),
                       help="print nothing but errors and show no progress bars")
    group.add_argument("--device", choices=["auto", "cpu", "cuda"], default=default("auto"),
                       help="where the network runs: 'auto' (a CUDA GPU when there is one, "
                            "else the CPU), 'cpu' or 'cuda' (default: auto)")
    group.add_argument("--seed", type=_seed, default=default(None),
                       help="random seed, for results that repeat exactly")
    group.add_argument("--debug", action="store_true", default=default(False),
                       help="show the full traceback on errors")


def build_parser():
    """The argument parser of the ``tdrdenoise`` command."""
    parser = argparse.ArgumentParser(
        prog="tdrdenoise",
        description="Train-denoise-restore (TDR) denoising of astronomical images: train a "
                    "Self2Self network on one noisy image, denoise images of the same kind "
                    "with a Monte-Carlo dropout ensemble, and give back their initial value "
                    "to pixels changed by more than R.",
        epilog=_EPILOG)
    parser.add_argument("--version", action="version", version=f"tdrdenoise {__version__}")
    _add_common(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "train", help="train a model on one noisy image and save it",
        description="Train a TDR model on one noisy FITS image and save it to a .tdr file. "
                    "NaN and masked pixels are ignored. Training takes minutes on a GPU "
                    "and longer on a CPU: try --steps 300 first.")
    p.add_argument("image", metavar="IMAGE", help="noisy FITS image to learn from")
    p.add_argument("-o", "--output", required=True, metavar="MODEL",
                   help="model file to write (e.g. model.tdr)")
    p.add_argument("--steps", type=_positive_int, default=DEFAULT_STEPS,
                   help=f"training steps (default: {DEFAULT_STEPS})")
    p.add_argument("--hdu", type=_hdu, default=None,
                   help="HDU index or name (default: the first 2-D image, e.g. HDU 1 of "
                        "compressed HMI files)")
    p.add_argument("--unit", default=None,
                   help="unit of the pixel values, overriding BUNIT (e.g. G, 'ct/s')")
    p.add_argument("--patch-size", type=_at_least_one, default=64,
                   help="side of the training crops in pixels (default: 64)")
    p.add_argument("--batch-size", type=_at_least_one, default=8,
                   help="crops per training step (default: 8)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model file")
    p.add_argument("--checkpoint", default=None, metavar="FILE",
                   help="keep the training state in FILE while training, so that a "
                        "training interrupted (or killed) can go on from it when the same "
                        "command is run again")
    p.add_argument("--checkpoint-every", type=_at_least_one, default=None, metavar="N",
                   help="write the checkpoint every N steps (default: TDRModel.fit's own; "
                        "needs --checkpoint)")
    _add_common(p, suppress=True)

    p = sub.add_parser(
        "denoise", help="denoise FITS files with a trained model",
        description="Denoise FITS files with a trained model, then restore the pixels "
                    "changed by more than R. Each output is written, atomically, to "
                    "OUTPUT_DIR/<name>_tdr.fits in the CCDData layout: the data with every "
                    "original header card (plus TDRDENOI and TDRRFRAC provenance cards), a "
                    "MASK extension (invalid and restored pixels) and an UNCERT extension "
                    "(standard deviation). Inputs are never overwritten, outputs that "
                    "exist are skipped, and a bad file is reported at the end without "
                    "stopping the others. Runs started side by side on the same files "
                    "split them: a file claimed by another run is skipped.")
    p.add_argument("files", nargs="+", metavar="FILE", help="FITS files to denoise")
    p.add_argument("-m", "--model", required=True, help="model file written by 'train'")
    p.add_argument("-R", "--R", dest="R", type=parse_R, default=np.inf, metavar="R",
                   help="restore threshold: pixels changed by more than R get their "
                        "initial value back. A number in the image unit (5), or with a "
                        "unit (5G, '0.3 ct/s'); default: inf (restore nothing)")
    p.add_argument("-o", "--output-dir", default=None,
                   help="output folder (default: next to each input)")
    p.add_argument("--suffix", default="_tdr",
                   help="added to the input name to make the output name (default: _tdr)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing outputs (inputs are never replaced)")
    p.add_argument("--hdu", type=_hdu, default=None, help="HDU index or name to read")
    p.add_argument("--unit", default=None, help="unit of the pixel values, overriding BUNIT")
    p.add_argument("--fine-tune-steps", type=_positive_int, default=DEFAULT_FINE_TUNE_STEPS,
                   help=f"fine-tuning steps on each image (default: {DEFAULT_FINE_TUNE_STEPS})")
    p.add_argument("--n-predictions", type=_at_least_one, default=DEFAULT_N_PREDICTIONS,
                   help="Monte-Carlo dropout passes averaged (default: "
                        f"{DEFAULT_N_PREDICTIONS})")
    p.add_argument("--tile-size", type=_at_least_one, default=DEFAULT_TILE_SIZE,
                   help=f"tile side in pixels for large images (default: {DEFAULT_TILE_SIZE})")
    p.add_argument("--dtype", choices=["float32", "float64", "input"], default="float32",
                   help="type of the data written: float32 (default; half the size of "
                        "float64 files), float64, or that of the input")
    cluster = p.add_mutually_exclusive_group()
    cluster.add_argument("--workers", type=_positive_int, default=0,
                         help="spread the files over a local dask cluster of this many "
                              "worker processes (default: 0, no dask)")
    cluster.add_argument("--scheduler", default=None, metavar="ADDRESS",
                         help="spread the files over an existing dask cluster "
                              "(e.g. tcp://host:8786)")
    _add_common(p, suppress=True)

    p = sub.add_parser(
        "evaluate", help="score a denoised image (noise, PSNR, residuals)",
        description="Compare a denoised image with its initial image and print a table of "
                    "scores: the noise removed, and the PSNR/MSE to a clean reference "
                    "(--reference) or, without one, to an independent exposure of the same "
                    "scene (--independent, Noise2Noise-style).")
    p.add_argument("initial", metavar="INITIAL", help="the noisy input image")
    p.add_argument("denoised", metavar="DENOISED", help="its denoised version")
    p.add_argument("--reference", default=None, help="clean reference image (known truth)")
    p.add_argument("--independent", default=None,
                   help="an independent noisy exposure of the same scene")
    p.add_argument("--plot", default=None, metavar="FIG",
                   help="write a comparison figure (PNG, PDF, ...); needs matplotlib")
    p.add_argument("--hdu", type=_hdu, default=None, help="HDU index or name to read")
    _add_common(p, suppress=True)

    p = sub.add_parser(
        "demo", help="train, denoise and restore built-in synthetic data",
        description="Run the whole method on generated data with known truth (a synthetic "
                    "solar granulation image): train on one image, denoise another, "
                    "restore, print the scores and write a figure. About 20 seconds on "
                    "a laptop CPU.")
    p.add_argument("--steps", type=_positive_int, default=None,
                   help="training steps (default: the demo's own, a few hundred)")
    p.add_argument("-o", "--output-dir", default=".",
                   help="folder for the figure (default: the current folder)")
    _add_common(p, suppress=True)
    return parser


def _say(args, *parts):
    if not args.quiet:
        print(*parts, flush=True)


def _progress(args):
    return False if args.quiet else None


# --------------------------------------------------------------------------- commands
def _checkpoint_options(args, fit):
    """The checkpoint keywords for ``fit``, checked against what it takes."""
    if args.checkpoint is None:
        if args.checkpoint_every is not None:
            raise _UsageError("--checkpoint-every needs --checkpoint FILE")
        return {}
    if "checkpoint" not in inspect.signature(fit).parameters:
        raise _CLIError("--checkpoint needs a tdrdenoise whose TDRModel.fit takes "
                        "checkpoint=; this installation's does not")
    options = {"checkpoint": args.checkpoint}
    if args.checkpoint_every is not None:
        options["checkpoint_every"] = args.checkpoint_every
    return options


def _cmd_train(args):
    from .io import read_image
    from .model import TDRModel
    from .utils import clean_stale_temporaries, prepare_output_folder

    checkpoint = _checkpoint_options(args, TDRModel.fit)
    if os.path.exists(args.output) and not args.overwrite:
        raise _CLIError(f"{args.output} exists; pass --overwrite to replace it")
    for name, path in (("--output", args.output), ("--checkpoint", args.checkpoint)):
        if path is not None:  # fail now, not after the training
            folder = prepare_output_folder(os.path.dirname(os.path.abspath(path)),
                                           f"the folder of {name}")
            clean_stale_temporaries(folder)
    image = read_image(args.image, hdu=args.hdu, unit=args.unit)
    model = TDRModel(patch_size=args.patch_size, batch_size=args.batch_size,
                     device=args.device)
    _say(args, f"Training on {args.image} ({image.shape[0]} x {image.shape[1]} pixels, "
               f"unit {image.unit}) for {args.steps} steps on {model.device.type} ...")
    t0 = time.perf_counter()
    model.fit(image, steps=args.steps, seed=args.seed, progress=_progress(args),
              **checkpoint)
    seconds = time.perf_counter() - t0
    model.save(args.output, overwrite=args.overwrite)
    record = model.history[-1]
    _say(args, f"Trained in {seconds:.1f} s (final loss {record['final_loss']:.4g}; "
               f"noise scale {model.normalization['scale']:.4g} {image.unit}).")
    _say(args, f"Saved {args.output} (fingerprint {model.fingerprint}).")
    return 0


def _check_R(R, model):
    if isinstance(R, u.Quantity) and model.unit is not None \
            and R.unit != u.dimensionless_unscaled:
        try:
            R.to(model.unit)
        except u.UnitConversionError:
            raise _CLIError(f"--R {R} cannot be converted to the unit of the model's "
                            f"images ({model.unit})") from None


def _cmd_denoise(args):
    from .batch import denoise_files
    from .model import TDRModel

    model = TDRModel.load(args.model, device=args.device)
    _check_R(args.R, model)
    missing = [f for f in args.files if not os.path.isfile(f)]
    if len(missing) == len(args.files):
        raise _CLIError(f"no such file(s): {', '.join(missing)}")
    client = cluster = None
    try:
        if args.workers or args.scheduler:
            try:
                from distributed import Client, LocalCluster
            except ImportError:
                raise _CLIError("--workers and --scheduler need dask.distributed: "
                                "pip install 'dask[distributed]'") from None
            if args.scheduler:
                client = Client(args.scheduler)
            else:
                cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                       processes=True, dashboard_address=None)
                client = Client(cluster)
            _say(args, f"Using dask: {client}")
        _say(args, f"Denoising {len(args.files)} file(s) with {args.model} "
                   f"(R = {args.R}) ...")
        table = denoise_files(
            args.files, model, R=args.R, output_dir=args.output_dir, client=client,
            suffix=args.suffix, overwrite=args.overwrite, hdu=args.hdu, unit=args.unit,
            progress=_progress(args), device=args.device,
            fine_tune_steps=args.fine_tune_steps, n_predictions=args.n_predictions,
            seed=args.seed, tile_size=args.tile_size,
            dtype=None if args.dtype == "input" else np.dtype(args.dtype))
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    for row in table:
        if row["status"] == "done":
            _say(args, f"  done     {row['input']} -> {row['output']} "
                       f"({100 * row['restored_fraction']:.2f} % restored, "
                       f"{row['seconds']:.1f} s)")
        elif row["status"] == "skipped":
            _say(args, f"  skipped  {row['input']}: {row['error'] or 'output exists'}")
        else:
            _say(args, f"  FAILED   {row['input']}")
    meta = table.meta
    _say(args, f"{meta['n_done']} done, {meta['n_skipped']} skipped, "
               f"{meta['n_failed']} failed.")
    if meta["n_failed"]:
        print(f"tdrdenoise denoise: {meta['n_failed']} file(s) failed:", file=sys.stderr)
        for row in table[table["status"] == "failed"]:
            print(f"  {row['input']}: {row['error']}", file=sys.stderr)
        return 1
    return 0


def _cmd_evaluate(args):
    from .io import read_image

    try:
        from .metrics import evaluate
    except ImportError:
        raise _CLIError("this installation has no tdrdenoise.metrics module") from None
    initial = read_image(args.initial, hdu=args.hdu)
    # the MASK of a tdrdenoise output marks its restored pixels too: evaluate counts
    # them as valid, restored pixels by itself (read_image keeps the TDRDENOI card)
    denoised = read_image(args.denoised, hdu=args.hdu)
    reference = read_image(args.reference, hdu=args.hdu) if args.reference else None
    independent = read_image(args.independent, hdu=args.hdu) if args.independent else None
    table = evaluate(initial, denoised, reference=reference, independent=independent)
    if not args.quiet:
        _print_scores(table)
    if args.plot:
        try:
            from .visualization import plot_comparison
        except ImportError as exc:
            raise _CLIError(f"--plot needs matplotlib and tdrdenoise.visualization "
                            f"({exc})") from None
        fig = plot_comparison(initial, denoised, reference=reference)
        fig.savefig(args.plot, dpi=120, bbox_inches="tight")
        _say(args, f"Wrote {args.plot}")
    return 0


def _cmd_demo(args):
    from .demo import DEMO_STEPS, run_demo

    steps = DEMO_STEPS if args.steps is None else args.steps
    run_demo(steps=steps, output_dir=args.output_dir, progress=_progress(args),
             quiet=args.quiet, seed=0 if args.seed is None else args.seed,
             device=args.device)
    return 0


def _print_scores(table):
    """A one-row table of scores as one line per column."""
    if table.meta.get("mode"):
        print(f"Scores ({table.meta['mode']}; {table.meta.get('n_valid', '?')} pixels):")
    width = max(len(name) for name in table.colnames)
    for name in table.colnames:
        value = table[name][0]
        if isinstance(value, u.Quantity):
            text = f"{value.value:.6g} {value.unit}".rstrip()
        elif isinstance(value, (float, np.floating)):
            text = f"{value:.6g}"
        else:
            text = str(value)
        print(f"  {name:<{width}}  {text}")


_COMMANDS = {"train": _cmd_train, "denoise": _cmd_denoise, "evaluate": _cmd_evaluate,
             "demo": _cmd_demo}


def main(argv=None):
    """Run the ``tdrdenoise`` command line.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit code: 0 success, 1 error or failed files, 2 bad usage, 130
        interrupted (Ctrl-C), 143 terminated (SIGTERM), 129 hung up (SIGHUP).

    Examples
    --------
    >>> from tdrdenoise.cli import main
    >>> main(["--version"])  # doctest: +IGNORE_OUTPUT
    tdrdenoise 0.1.0
    0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        with _termination_as_interrupt():
            return _COMMANDS[args.command](args)
    except _Terminated as exc:
        name = signal.Signals(exc.signum).name
        print(f"\ntdrdenoise {args.command}: terminated ({name})", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print(f"\ntdrdenoise {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        message = str(exc) if isinstance(exc, (_CLIError, OSError, ValueError)) \
            else f"{type(exc).__name__}: {exc}"
        print(f"tdrdenoise {args.command}: error: {message}", file=sys.stderr)
        return 2 if isinstance(exc, _UsageError) else 1


@contextlib.contextmanager
def _termination_as_interrupt():
    """Turn SIGTERM and SIGHUP into :class:`_Terminated` (a KeyboardInterrupt) for a block.

    The temporary files, lock files and dask clusters of a run are then cleaned up
    exactly as after Ctrl-C. Later signals are ignored while that cleanup runs. The
    previous handlers come back at the end (main() may run inside another program).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = []

    def handler(signum, frame):
        if not raised:
            raised.append(signum)
            raise _Terminated(signum)

    previous = {}
    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is not None:
            previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


if __name__ == "__main__":
    sys.exit(main())
