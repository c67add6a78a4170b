"""The ``tdrdenoise`` command: train, denoise, restore, evaluate and demo from the shell.

Examples::

    tdrdenoise train obs1.fits -o model.tdr --steps 2000
    tdrdenoise denoise --model model.tdr obs2.fits obs3.fits --R "0.3 ct/s" --output-dir out/
    tdrdenoise restore out/obs2_tdr.fits obs2.fits --R 3sigma --fill ambient -o obs2_R3.fits
    tdrdenoise evaluate obs2.fits out/obs2_tdr.fits --independent obs3.fits --plot fig.png
    tdrdenoise demo

Every command takes ``--quiet``, ``--device {auto,cpu,cuda}`` and ``--seed``. Exit
codes: 0 success, 1 error (or some files failed), 2 bad usage, 130 interrupted (Ctrl-C),
143 terminated (SIGTERM), 129 hung up (SIGHUP); an interrupted or terminated run
removes its temporary files.
"""
import contextlib
import inspect
import os
import signal
import sys
import tempfile
import threading
import time

import numpy as np
from astropy import units as u

from ._cli_parser import build_parser, parse_R

__all__ = ["main", "parse_R"]


class _CLIError(Exception):
    """An error to report in one line, without a traceback."""


class _UsageError(_CLIError):
    """A wrong combination of options (exit code 2)."""


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C so that every cleanup runs."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


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
    from .io.images import read_image
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
    images = [read_image(path, hdu=args.hdu, unit=args.unit) for path in args.image]
    image = images[0]
    model = TDRModel(patch_size=args.patch_size, batch_size=args.batch_size,
                     device=args.device, impulse_noise=args.impulse_noise,
                     pixel_shuffle=args.pixel_shuffle)
    more = f" and {len(images) - 1} more image(s)" if len(images) > 1 else ""
    _say(args, f"Training on {args.image[0]} ({image.shape[0]} x {image.shape[1]} pixels, "
               f"unit {image.unit}){more} for {args.steps} steps on "
               f"{model.device.type} ...")
    t0 = time.perf_counter()
    # a list of one image trains as that image does
    model.fit(images, steps=args.steps, seed=args.seed, progress=_progress(args),
              distil_steps=args.distil_steps, **checkpoint)
    seconds = time.perf_counter() - t0
    _save_or_rescue(model, args.output, args.overwrite, args.checkpoint)
    record = model.history[-1]
    _say(args, f"Trained in {seconds:.1f} s (final loss {record['final_loss']:.4g}; "
               f"noise scale {model.normalization['scale']:.4g} {image.unit}).")
    _say(args, f"Detected: {model.noise_description}")
    _say(args, f"Saved {args.output} (fingerprint {model.fingerprint}).")
    return 0


def _rescue_paths(path, checkpoint):
    """Where to put a model that could not be saved at ``path``: beside it, beside the
    checkpoint, in the current folder, in the temporary folder."""
    stem = os.path.basename(path)
    if stem.lower().endswith(".tdr"):
        stem = stem[:-4]
    name = f"{stem}.unsaved-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.tdr"
    folders = [os.path.dirname(os.path.abspath(path))]
    if checkpoint is not None:
        folders.append(os.path.dirname(os.path.abspath(checkpoint)))
    folders += [os.getcwd(), tempfile.gettempdir()]
    seen = []
    for folder in folders:
        if folder not in seen:
            seen.append(folder)
            yield os.path.join(folder, name)


def _save_or_rescue(model, path, overwrite, checkpoint):
    """Save ``model`` to ``path``; if that fails (the file appeared meanwhile, disk
    full, read-only folder), save it elsewhere and say where, so that no training is
    lost; raise a _CLIError either way."""
    try:
        model.save(path, overwrite=overwrite)
        return
    except OSError as exc:
        problem = str(exc)
    kept = (f"; the checkpoint {checkpoint} is kept: the same command resumes from it"
            if checkpoint is not None and os.path.isfile(checkpoint) else "")
    for rescue in _rescue_paths(path, checkpoint):
        try:
            model.save(rescue, overwrite=False)
        except OSError:
            continue
        raise _CLIError(f"cannot save the model to {path} ({problem}); the trained model "
                        f"was saved to {rescue} instead: move it where you want it")
    raise _CLIError(f"cannot save the model to {path} ({problem}), nor beside it, in the "
                    f"current folder or in {tempfile.gettempdir()}{kept}")


def _check_R(R, model):
    if isinstance(R, u.Quantity) and model is not None and model.unit is not None \
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
            method=args.method, fine_tune_steps=args.fine_tune_steps,
            n_predictions=args.n_predictions,
            seed=args.seed, tile_size=args.tile_size, calibrate=args.calibrate,
            refine=args.refine, fill=args.fill,
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


def _cmd_restore(args):
    from .restore_files import restore_file

    noise = None
    if args.model is not None:
        from .io.containers import unit_factor
        from .io.images import read_image
        from .model import TDRModel
        from .prediction.normalization import noise_in_image_unit

        model = TDRModel.load(args.model, device="cpu")
        _check_R(args.R, model)
        image = read_image(args.initial, hdu=args.hdu, unit=args.unit)
        noise = noise_in_image_unit(model.normalization,
                                    unit_factor(image.unit, model.unit, "INPUT"))
    info = restore_file(args.denoised, args.initial, args.output, args.R, fill=args.fill,
                        overwrite=args.overwrite, hdu=args.hdu, unit=args.unit, noise=noise)
    _say(args, f"Restored {100 * info['restored_fraction']:.2f} % of the pixels (R = "
               f"{info['R']}, fill = {args.fill}; raw-pixel noise: {info['noise']}).")
    _say(args, f"Wrote {info['output']}")
    return 0


def _cmd_evaluate(args):
    from .io.images import read_image

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


_COMMANDS = {"train": _cmd_train, "denoise": _cmd_denoise, "restore": _cmd_restore,
             "evaluate": _cmd_evaluate, "demo": _cmd_demo}


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
