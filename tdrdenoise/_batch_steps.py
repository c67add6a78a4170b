"""The steps of :func:`~tdrdenoise.batch.denoise_files` for one file and for the run:
the plan of outputs, the checks of the output dtype, one file denoised and written,
the record of each file and the table of the run.
"""
import os
import time
import warnings

import numpy as np
from astropy.table import Table

from .io.containers import cast_data, cast_problems, overflow_message
from .io.provenance import FRACTION
from ._validate import NoiseMultiple
from .io.images import output_path, read_image, write_image
from .utils import (OutputClaimedError, TDRUserWarning, claim_output, prepare_output_folder)

__all__ = []


COLUMNS = ("input", "output", "status", "restored_fraction", "seconds", "error")


def plan_outputs(files, output_dir, suffix):
    """(input, output, reason-to-fail-or-None) for each file, in order."""
    files = [os.fspath(f) for f in files]
    inputs = {os.path.abspath(f) for f in files}
    seen = {}
    plan = []
    for f in files:
        out = output_path(f, output_dir, suffix)
        key = os.path.abspath(out)
        problem = None
        if key in inputs:
            problem = (f"the output name {out} is an input file; use another output_dir "
                       "or a non-empty suffix")
        elif key in seen:
            problem = f"the output name {out} is also the output of {seen[key]}"
        else:
            seen[key] = f
        plan.append((f, out, problem))
    return plan


def file_record(path, out, status, fraction=np.nan, seconds=0.0, error=""):
    return {"input": path, "output": out, "status": status,
            "restored_fraction": fraction, "seconds": round(float(seconds), 3),
            "error": error}


def denoise_one(path, out, model, opts):
    """Denoise one file; returns a record and never raises an Exception.

    ``opts`` holds R, hdu, unit, overwrite, skip_existing, inputs, denoise_kwargs,
    dtype, R_is_zero and started (the time.time() at which the run began).
    """
    from .denoise import tdr_denoise

    t0 = time.perf_counter()
    if os.path.isdir(out):
        return file_record(path, out, "failed", error=f"{out} is a folder")
    if os.path.exists(out) and not opts["overwrite"]:
        if opts["skip_existing"]:
            return file_record(path, out, "skipped", error=f"{out} exists")
        return file_record(path, out, "failed", error=f"{out} exists (pass overwrite=True)")
    try:
        with claim_output(out):
            # another run may have finished this file between the check and the claim
            if os.path.exists(out) and (not opts["overwrite"]
                                        or os.path.getmtime(out) >= opts["started"]):
                return file_record(path, out, "skipped",
                                   error=f"{out} was written by another run meanwhile")
            ccd = read_image(path, hdu=opts["hdu"], unit=opts["unit"])
            if opts["dtype"] is not None and opts["R_is_zero"]:
                _check_exact(ccd.data, path, opts["dtype"])  # before the work
            result = tdr_denoise(ccd, model, R=opts["R"], **opts["denoise_kwargs"])
            if opts["dtype"] is not None:
                _cast_output(result, ccd.data, path, opts)
            write_image(result, out, overwrite=opts["overwrite"], inputs=opts["inputs"])
    except OutputClaimedError as exc:  # another run is on it: not a failure
        return file_record(path, out, "skipped", error=str(exc))
    except FileExistsError:  # written meanwhile by a run that took no claim
        return file_record(path, out, "skipped",
                           error=f"{out} was written by another run meanwhile")
    except Exception as exc:  # one bad file must not stop the others
        return file_record(path, out, "failed", seconds=time.perf_counter() - t0,
                           error=f"{type(exc).__name__}: {exc}")
    fraction = float(result.meta.get(FRACTION.key, np.nan))
    return file_record(path, out, "done", fraction, time.perf_counter() - t0)


def _cast_output(result, source, path, opts):
    """Cast ``result`` to the requested dtype: refused where a value would become inf,
    or where an input value would change at R=0 (which must return the input); a
    warning where input values are rounded otherwise."""
    dtype = np.dtype(opts["dtype"])
    rounded = cast_data(result, dtype, source=source)
    if not rounded:
        return
    what = (f"dtype={dtype.name} would change {rounded} of the {source.size} input values "
            f"of {path} ({np.asarray(source).dtype.name})")
    if opts["R_is_zero"]:
        raise ValueError(f"{what}, which R=0 must return exactly; keep the input's type "
                         "(dtype=None, --dtype input)")
    warnings.warn(f"{what}: the restored pixels are rounded; pass dtype=None (--dtype "
                  "input) to keep them exact", TDRUserWarning)


def _check_exact(source, path, dtype):
    """At R=0 the result is the input: refuse, before any work, a ``dtype`` that
    cannot hold every input value exactly."""
    overflow, rounded, largest = cast_problems(source, dtype)
    if overflow:
        raise ValueError(overflow_message(dtype, overflow, largest, what=path))
    if rounded:
        raise ValueError(f"dtype={np.dtype(dtype).name} would change {rounded} "
                         f"of the {np.size(source)} input values of {path} "
                         f"({np.asarray(source).dtype.name}), which R=0 must return "
                         "exactly; keep the input's type (dtype=None, --dtype input)")


def run_table(records, R):
    table = Table(rows=[[r[c] for c in COLUMNS] for r in records] or None,
                  names=COLUMNS,
                  dtype=[str, str, str, float, float, str])
    table["seconds"].unit = "s"
    status = list(table["status"])
    table.meta.update({"R": _describe_R(R), "n_done": status.count("done"),
                       "n_skipped": status.count("skipped"),
                       "n_failed": status.count("failed")})
    return table


def check_dtype(dtype):
    """``dtype`` as a numpy dtype FITS can hold (float32, float64, any integer type),
    or None. Whether it holds a file's values is checked by value, file by file (see
    :func:`_cast_output`)."""
    if dtype is None:
        return None
    try:
        checked = np.dtype(dtype)
    except (TypeError, ValueError):
        checked = None
    if checked is None or checked.kind not in "fiu":
        raise TypeError(f"dtype must be None (keep the input's type) or a real numeric "
                        f"type (np.float32, np.float64, np.int16, np.int32, ...); got "
                        f"{dtype!r}")
    if checked.kind == "f" and checked.itemsize not in (4, 8):
        raise TypeError(f"dtype={checked.name} cannot be written: FITS files hold 32- and "
                        "64-bit floats (np.float32, np.float64) and integers, not "
                        f"{8 * checked.itemsize}-bit floats")
    return checked


def is_zero(R):
    """Whether the threshold R (a number, an array, a Quantity or a NoiseMultiple) is
    zero everywhere."""
    if isinstance(R, NoiseMultiple):
        return R.factor == 0
    return bool(np.all(np.asarray(getattr(R, "value", R)) == 0))


def _describe_R(R):
    """R for the table's meta: as given, or ``array of shape (n, m)`` for arrays."""
    if np.ndim(getattr(R, "value", R)) == 0:
        return str(R)
    unit = getattr(R, "unit", None)
    return f"per-pixel array of shape {np.shape(R)}" + (f" in {unit}" if unit else "")


def prepare_folders(plan, output_dir, records):
    """Create and check the output folders before any work.

    An unusable ``output_dir`` raises; without one, the files whose own folder cannot
    be written get a "failed" record. Returns the usable folders.
    """
    if output_dir is not None:
        return [prepare_output_folder(output_dir, "output_dir")]
    folders = {}
    for i, (path, out, _) in enumerate(plan):
        folder = os.path.dirname(out) or "."
        if folder not in folders:
            try:
                prepare_output_folder(folder, "output folder")
                folders[folder] = None
            except OSError as exc:
                folders[folder] = str(exc)
        if folders[folder] is not None:
            records[i] = file_record(path, out, "failed", error=folders[folder])
    return [folder for folder, problem in folders.items() if problem is None]
