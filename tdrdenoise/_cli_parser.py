"""The argument parser of the ``tdrdenoise`` command (:func:`build_parser`).

The commands themselves live in :mod:`tdrdenoise.cli`; this module turns the command
line into an `argparse.Namespace`, with types that check each option as it is read.
"""
import argparse

import numpy as np
from astropy import units as u

from ._defaults import (DEFAULT_DISTIL_STEPS, DEFAULT_FINE_TUNE_STEPS,
                        DEFAULT_N_PREDICTIONS, DEFAULT_STEPS, DEFAULT_TILE_SIZE, METHODS)
from ._validate import FILLS, NoiseMultiple, check_seed
from .version import __version__

__all__ = ["build_parser", "parse_R"]

EPILOG = ("Exit codes: 0 success, 1 error or failed files, 2 bad usage, "
          "130 interrupted, 143 terminated (SIGTERM), 129 hung up (SIGHUP). "
          "Run 'tdrdenoise COMMAND --help' for the options of a command.")


def parse_R(text):
    """Read a restore threshold from the command line.

    Parameters
    ----------
    text : str
        A number in the image unit (``"5"``), a number with a unit (``"5G"``,
        ``"5 G"``, ``"0.3 ct/s"``), a multiple of the per-pixel noise (``"3sigma"``,
        ``"3 sigma"``: three times the input's ``UNCERT`` extension where it has one,
        else three times the model's noise estimate), or ``"inf"`` (restore nothing).

    Returns
    -------
    float, `~astropy.units.Quantity` or `~tdrdenoise.restore.NoiseMultiple`

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
    >>> parse_R("3sigma")
    NoiseMultiple(3.0)
    """
    text = str(text).strip()
    if text.lower().endswith("sigma"):
        number = text[:-5].strip()
        try:
            return NoiseMultiple(float(number) if number else 1.0)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(
                f"cannot read {text!r} as a multiple of the noise; write e.g. 3sigma "
                "(zero or positive)") from None
    try:
        value = float(text)
    except ValueError:
        try:
            value = u.Quantity(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(
                f"cannot read {text!r} as a number with an optional unit; write e.g. 5, "
                "5G, '0.3 ct/s', 3sigma or inf") from None
    number = value.value if isinstance(value, u.Quantity) else value
    if np.isnan(number) or number < 0:
        raise argparse.ArgumentTypeError(f"R must be zero or positive; got {text!r}")
    return value


def hdu_option(text):
    """--hdu: an index or an extension name."""
    return int(text) if text.lstrip("-").isdigit() else text


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer; got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected zero or a positive integer; got {value}")
    return value


def at_least_one(text):
    value = positive_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer of at least 1; got {value}")
    return value


def seed_option(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the seed must be an integer; got {text!r}") from None
    try:
        return check_seed(value, "--seed")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_common(parser, suppress):
    """--quiet, --device, --seed, --debug; on subcommands they default to 'not given'."""
    def default(value):
        return argparse.SUPPRESS if suppress else value
    group = parser.add_argument_group("common options")
    group.add_argument("-q", "--quiet", action="store_true", default=default(False),
                       help="print nothing but errors and show no progress bars")
    group.add_argument("--device", choices=["auto", "cpu", "cuda"], default=default("auto"),
                       help="where the network runs: 'auto' (a CUDA GPU when there is one, "
                            "else the CPU), 'cpu' or 'cuda' (default: auto)")
    group.add_argument("--seed", type=seed_option, default=default(None),
                       help="random seed, for results that repeat exactly")
    group.add_argument("--debug", action="store_true", default=default(False),
                       help="show the full traceback on errors")


def _impulse_option(text):
    """``--impulse-noise``: auto, yes or no."""
    choices = {"auto": "auto", "yes": True, "no": False}
    if text.lower() not in choices:
        raise argparse.ArgumentTypeError(f"must be auto, yes or no; got {text!r}")
    return choices[text.lower()]


def _shuffle_option(text):
    """``--pixel-shuffle``: auto, or a stride from 1 to 4."""
    if text.lower() == "auto":
        return "auto"
    if text not in ("1", "2", "3", "4"):
        raise argparse.ArgumentTypeError(f"must be auto, 1, 2, 3 or 4; got {text!r}")
    return int(text)


def _add_fill(parser):
    parser.add_argument("--fill", choices=list(FILLS), default="initial",
                        help="value of a restored pixel: initial (default: its initial "
                             "value; --R 0 gives the input back exactly) or ambient (the "
                             "mean of the denoised values of the unrestored pixels in "
                             "the 5 x 5 window around it, its initial value when there "
                             "are none; better for isolated outliers than for signal)")


def build_parser():
    """The argument parser of the ``tdrdenoise`` command."""
    parser = argparse.ArgumentParser(
        prog="tdrdenoise",
        description="Train-denoise-restore (TDR) denoising of astronomical images: train a "
                    "Self2Self network on one noisy image, denoise images of the same kind "
                    "with a Monte-Carlo dropout ensemble, and give back their initial value "
                    "to pixels changed by more than R.",
        epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"tdrdenoise {__version__}")
    add_common(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "train", help="train a model on a noisy image (or a few) and save it",
        description="Train a TDR model on one noisy FITS image, or on several of the same "
                    "kind (the first sets the normalisation and the unit), and save it to "
                    "a .tdr file. NaN and masked pixels are ignored. Training takes "
                    "minutes on a GPU and longer on a CPU: try --steps 300 first.")
    p.add_argument("image", metavar="IMAGE", nargs="+",
                   help="noisy FITS image(s) to learn from")
    p.add_argument("-o", "--output", required=True, metavar="MODEL",
                   help="model file to write (e.g. model.tdr)")
    p.add_argument("--steps", type=positive_int, default=DEFAULT_STEPS,
                   help=f"training steps (default: {DEFAULT_STEPS})")
    p.add_argument("--hdu", type=hdu_option, default=None,
                   help="HDU index or name (default: the first 2-D image, e.g. HDU 1 of "
                        "compressed HMI files)")
    p.add_argument("--unit", default=None,
                   help="unit of the pixel values, overriding BUNIT (e.g. G, 'ct/s')")
    p.add_argument("--distil-steps", type=positive_int, default=None,
                   help="steps of the distillation of the fast student after training "
                        f"(default: {DEFAULT_DISTIL_STEPS}, or --steps if fewer; 0: none, "
                        "the model then denoises with the Monte-Carlo ensemble only)")
    p.add_argument("--patch-size", type=at_least_one, default=64,
                   help="side of the training crops in pixels (default: 64)")
    p.add_argument("--batch-size", type=at_least_one, default=8,
                   help="crops per training step (default: 8)")
    p.add_argument("--impulse-noise", type=_impulse_option, default="auto",
                   metavar="{auto,yes,no}",
                   help="whether the image carries impulse (salt-and-pepper) noise "
                        "(default: auto, detected from the image and printed)")
    p.add_argument("--pixel-shuffle", type=_shuffle_option, default="auto",
                   metavar="{auto,1,2,3,4}",
                   help="stride of the pixel-shuffled sub-images for noise correlated "
                        "between neighbours (default: auto, from the measured correlation)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model file")
    p.add_argument("--checkpoint", default=None, metavar="FILE",
                   help="keep the training state in FILE while training, so that a "
                        "training interrupted (or killed) can go on from it when the same "
                        "command is run again")
    p.add_argument("--checkpoint-every", type=at_least_one, default=None, metavar="N",
                   help="write the checkpoint every N steps (default: TDRModel.fit's own; "
                        "needs --checkpoint)")
    add_common(p, suppress=True)

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
                        "unit (5G, '0.3 ct/s'), or a multiple of the per-pixel noise "
                        "(3sigma: the input's UNCERT extension where it has one, else "
                        "the model's noise estimate); default: inf (restore nothing; "
                        "'tdrdenoise restore' can then try values of R in seconds)")
    _add_fill(p)
    p.add_argument("-o", "--output-dir", default=None,
                   help="output folder (default: next to each input)")
    p.add_argument("--suffix", default="_tdr",
                   help="added to the input name to make the output name (default: _tdr)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing outputs (inputs are never replaced)")
    p.add_argument("--hdu", type=hdu_option, default=None, help="HDU index or name to read")
    p.add_argument("--unit", default=None, help="unit of the pixel values, overriding BUNIT")
    p.add_argument("--method", choices=list(METHODS), default="auto",
                   help="student: one pass of the model's distilled student (fast); "
                        "ensemble: fine-tuning and the Monte-Carlo dropout ensemble of the "
                        "paper (about 16 times slower); auto (default): the student when "
                        "the model has one and neither --fine-tune-steps nor "
                        "--n-predictions is given")
    p.add_argument("--fine-tune-steps", type=positive_int, default=None,
                   help="fine-tuning steps on each image, for the ensemble (default: "
                        f"{DEFAULT_FINE_TUNE_STEPS})")
    p.add_argument("--n-predictions", type=at_least_one, default=None,
                   help="Monte-Carlo dropout passes averaged by the ensemble (default: "
                        f"{DEFAULT_N_PREDICTIONS})")
    p.add_argument("--tile-size", type=at_least_one, default=DEFAULT_TILE_SIZE,
                   help=f"tile side in pixels for large images (default: {DEFAULT_TILE_SIZE})")
    p.add_argument("--no-calibrate", dest="calibrate", action="store_false",
                   help="return the network's values as they are, without the level "
                        "calibration that gives back part of the observation where the "
                        "network is measurably worse than the noise (star peaks, strong "
                        "fields)")
    p.add_argument("--no-refine", dest="refine", action="store_false",
                   help="skip the Wiener refinement that gives back, frequency by "
                        "frequency, the observation where the denoised image shows "
                        "structure above the noise")
    p.add_argument("--dtype", choices=["float32", "float64", "input"], default="input",
                   help="type of the data written: that of the input (default: every "
                        "value kept exactly, --R 0 writes the input unchanged), float64, "
                        "or float32 (half the size of float64 files; a file whose values "
                        "it would turn into inf, or change with --R 0, fails)")
    cluster = p.add_mutually_exclusive_group()
    cluster.add_argument("--workers", type=positive_int, default=0,
                         help="spread the files over a local dask cluster of this many "
                              "worker processes (default: 0, no dask)")
    cluster.add_argument("--scheduler", default=None, metavar="ADDRESS",
                         help="spread the files over an existing dask cluster "
                              "(e.g. tcp://host:8786)")
    add_common(p, suppress=True)

    p = sub.add_parser(
        "restore", help="apply another R (and fill) to a denoised file, in seconds",
        description="Restore again, without the network: read a file written by "
                    "'tdrdenoise denoise' with the default --R inf (or any FITS image of "
                    "denoised values) and the input it was denoised from, give back "
                    "their initial value to the pixels changed by more than R, and write "
                    "the result atomically to OUTPUT in the same layout, with a TDRRESTO "
                    "card recording R, the fill and the two files (and TDRRFRAC "
                    "updated). Choosing R becomes a sweep of seconds. An existing "
                    "OUTPUT is replaced only with --overwrite; the inputs never are.")
    p.add_argument("denoised", metavar="DENOISED",
                   help="the denoised FITS file (denoised with --R inf)")
    p.add_argument("initial", metavar="INPUT", help="the FITS file it was denoised from")
    p.add_argument("-R", "--R", dest="R", type=parse_R, required=True, metavar="R",
                   help="restore threshold: a number in the image unit (5), with a unit "
                        "(5G, '0.3 ct/s'), or a multiple of the per-pixel noise (3sigma: "
                        "the input's UNCERT extension where it has one, else the noise of "
                        "--model, else the noise measured on the input)")
    _add_fill(p)
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="the FITS file to write")
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUTPUT if it exists (never DENOISED or INPUT)")
    p.add_argument("-m", "--model", default=None,
                   help="model file whose noise estimate gives sigma for --R 3sigma and "
                        "the uncertainty of restored pixels when INPUT has no UNCERT "
                        "extension (default: the noise measured on INPUT)")
    p.add_argument("--hdu", type=hdu_option, default=None,
                   help="HDU index or name of INPUT to read")
    p.add_argument("--unit", default=None, help="unit of INPUT, overriding BUNIT")
    add_common(p, suppress=True)

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
    p.add_argument("--hdu", type=hdu_option, default=None, help="HDU index or name to read")
    add_common(p, suppress=True)

    p = sub.add_parser(
        "demo", help="train, denoise and restore built-in synthetic data",
        description="Run the whole method on generated data with known truth (a synthetic "
                    "solar granulation image): train on one image, denoise another, "
                    "restore, print the scores and write a figure. About 70 seconds on "
                    "a laptop CPU.")
    p.add_argument("--steps", type=positive_int, default=None,
                   help="training steps (default: the demo's own, a few hundred)")
    p.add_argument("-o", "--output-dir", default=".",
                   help="folder for the figure (default: the current folder)")
    add_common(p, suppress=True)
    return parser
