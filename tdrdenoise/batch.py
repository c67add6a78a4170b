"""Denoise many files: one model, one call, sequentially or over a dask cluster.

:func:`denoise_files` reads each FITS file, denoises it with :func:`~tdrdenoise.tdr_denoise`
and writes the result in the CCDData layout next to the others in ``output_dir``. A bad
file never stops the run: every file gets a status in the returned table. Re-running
the same call skips the files already done, so an interrupted job simply resumes, and
runs started side by side on the same files split them (each output is claimed with a
lock file before any work). :func:`denoise_collection` does the same for a ccdproc
`~ccdproc.ImageFileCollection`.
"""
import os
import time
import warnings

import numpy as np
from astropy.table import Table

from .io.containers import cast_data, cast_problems, overflow_message
from .prediction.student import resolve_method
from ._progress import progress_bar
from .io.provenance import FRACTION, check_add_keyword
from ._validate import NoiseMultiple, check_denoise_options
from .io.images import output_path, read_image, write_image
from .model import TDRModel
from .utils import (OutputClaimedError, TDRUserWarning, claim_output, clean_stale_temporaries,
                    prepare_output_folder)

__all__ = ["denoise_files", "denoise_collection"]

_COLUMNS = ("input", "output", "status", "restored_fraction", "seconds", "error")

#: Models rebuilt on a dask worker, by key, so each worker loads a model only once.
_WORKER_MODELS = {}


def _plan(files, output_dir, suffix):
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


def _record(path, out, status, fraction=np.nan, seconds=0.0, error=""):
    return {"input": path, "output": out, "status": status,
            "restored_fraction": fraction, "seconds": round(float(seconds), 3),
            "error": error}


def _denoise_one(path, out, model, opts):
    """Denoise one file; returns a record and never raises an Exception.

    ``opts`` holds R, hdu, unit, overwrite, skip_existing, inputs, denoise_kwargs,
    dtype, R_is_zero and started (the time.time() at which the run began).
    """
    from .denoise import tdr_denoise

    t0 = time.perf_counter()
    if os.path.isdir(out):
        return _record(path, out, "failed", error=f"{out} is a folder")
    if os.path.exists(out) and not opts["overwrite"]:
        if opts["skip_existing"]:
            return _record(path, out, "skipped", error=f"{out} exists")
        return _record(path, out, "failed", error=f"{out} exists (pass overwrite=True)")
    try:
        with claim_output(out):
            # another run may have finished this file between the check and the claim
            if os.path.exists(out) and (not opts["overwrite"]
                                        or os.path.getmtime(out) >= opts["started"]):
                return _record(path, out, "skipped",
                               error=f"{out} was written by another run meanwhile")
            ccd = read_image(path, hdu=opts["hdu"], unit=opts["unit"])
            if opts["dtype"] is not None and opts["R_is_zero"]:
                _check_exact(ccd.data, path, opts["dtype"])  # before the work
            result = tdr_denoise(ccd, model, R=opts["R"], **opts["denoise_kwargs"])
            if opts["dtype"] is not None:
                _cast_output(result, ccd.data, path, opts)
            write_image(result, out, overwrite=opts["overwrite"], inputs=opts["inputs"])
    except OutputClaimedError as exc:  # another run is on it: not a failure
        return _record(path, out, "skipped", error=str(exc))
    except FileExistsError:  # written meanwhile by a run that took no claim
        return _record(path, out, "skipped",
                       error=f"{out} was written by another run meanwhile")
    except Exception as exc:  # one bad file must not stop the others
        return _record(path, out, "failed", seconds=time.perf_counter() - t0,
                       error=f"{type(exc).__name__}: {exc}")
    fraction = float(result.meta.get(FRACTION.key, np.nan))
    return _record(path, out, "done", fraction, time.perf_counter() - t0)


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


def _model_payload(model):
    """What the dask workers get: {"key", "bytes", "name"} (the model file as bytes)."""
    return {"key": model.fingerprint, "bytes": model.to_bytes(), "name": model.path}


def _worker_model(payload, device):
    """Rebuild (once per worker process) the model of :func:`_model_payload`, on ``device``."""
    key = (payload["key"], str(device))
    model = _WORKER_MODELS.get(key)
    if model is None:
        model = TDRModel.from_bytes(payload["bytes"], device=device)
        model.path = payload["name"]
        _WORKER_MODELS[key] = model
    return model


def _denoise_remote(path, out, payload, device, opts):
    """Task run on a dask worker."""
    try:
        model = _worker_model(payload, device)
    except Exception as exc:
        return _record(path, out, "failed",
                       error=f"cannot rebuild the model on the worker: "
                             f"{type(exc).__name__}: {exc}")
    return _denoise_one(path, out, model, opts)


def _table(records, R):
    table = Table(rows=[[r[c] for c in _COLUMNS] for r in records] or None,
                  names=_COLUMNS,
                  dtype=[str, str, str, float, float, str])
    table["seconds"].unit = "s"
    status = list(table["status"])
    table.meta.update({"R": _describe_R(R), "n_done": status.count("done"),
                       "n_skipped": status.count("skipped"),
                       "n_failed": status.count("failed")})
    return table


def denoise_files(files, model, *, R=np.inf, output_dir=None, client=None, suffix="_tdr",
                  overwrite=False, skip_existing=True, hdu=None, unit=None, progress=None,
                  device="auto", dtype=None, **denoise_kwargs):
    """Denoise many FITS files with one model; sequentially or on a dask cluster.

    Each file is read with :func:`~tdrdenoise.io.read_image`, denoised and restored
    with :func:`~tdrdenoise.tdr_denoise` and written with
    :func:`~tdrdenoise.io.write_image` (CCDData layout: data, ``MASK`` and ``UNCERT``
    extensions, every original header card kept, plus the ``TDRDENOI`` and
    ``TDRRFRAC`` provenance cards) to ``output_dir/<name><suffix>.fits``.

    - An input file is never overwritten, and every output is written atomically.
    - Outputs that already exist are skipped (``skip_existing``), so running the
      same call again after an interruption finishes the job.
    - Runs started side by side on the same files and ``output_dir`` (two shells,
      two batch jobs) split the work: each output is claimed with a lock file
      ``.<name>.tdrdenoise.lock`` (see :func:`~tdrdenoise.utils.claim_output`) before
      it is worked on, and an output claimed or written by another run is reported as
      ``"skipped"``. The locks and temporary files of tdrdenoise runs that were
      killed are removed (:func:`~tdrdenoise.utils.clean_stale_temporaries`) before
      work starts; the hidden files of other programs are never touched.
    - A file that cannot be read, denoised or written is reported as ``"failed"``
      with its error message; the other files go on.
    - ``output_dir`` is created and checked to be writable before any work.

    With a `dask.distributed.Client`, the model is sent to every worker once
    (``client.scatter(..., broadcast=True)``) and the files are spread over the
    workers, one task per file; each worker reads and writes its files itself, so
    ``output_dir`` must be reachable from the workers (a shared file system for a
    multi-machine cluster).

    Parameters
    ----------
    files : str, path-like or iterable of them
        Input FITS files (a single name is one file).
    model : `~tdrdenoise.TDRModel`
        A trained model.
    R : float, array-like, `~astropy.units.Quantity` or `NoiseMultiple`, optional
        Restore threshold, zero or positive, in the unit of the images (a Quantity is
        converted); ``np.inf`` (default) restores nothing. An array is one threshold
        per pixel, for images of its shape; ``NoiseMultiple(k)`` is ``k`` times each
        file's ``UNCERT`` extension where it has one, else ``k`` times the model's
        noise estimate (the CLI's ``--R 3sigma``).
    output_dir : str or path-like, optional
        Output folder, created if needed. By default each output goes next to its
        input.
    client : `dask.distributed.Client`, optional
        Spread the files over this client's workers; None works sequentially.
    suffix : str, optional
        Appended to the input name stem to make the output name.
    overwrite : bool, optional
        Replace existing outputs (never inputs).
    skip_existing : bool, optional
        Report existing outputs as ``"skipped"`` instead of ``"failed"`` (when
        ``overwrite`` is False).
    hdu : int or str, optional
        HDU to read in every file; by default the first 2-D image.
    unit : str or `~astropy.units.UnitBase`, optional
        Unit of the images, overriding ``BUNIT``.
    progress : bool or None, optional
        A progress bar over the files; None shows it only on a terminal.
    device : str, optional
        Device of the model on dask workers (``"auto"``, ``"cpu"``, ``"cuda"``);
        sequential runs use the model's own device.
    dtype : numpy dtype or None, optional
        Type of the data and uncertainty written. None (the default) keeps the type
        of :func:`~tdrdenoise.tdr_denoise`'s result, which holds every input value
        exactly (float64 stays float64), so that ``R=0`` writes the input unchanged.
        Another type FITS can hold (``np.float32`` halves float64 files; integer
        types) is applied only on request, and checked by
        value, file by file: a file where it would turn a finite value into inf (or
        a value an integer type cannot hold: NaN, inf, out of range), or, with
        ``R=0``, change an input value, fails with a message saying so (at ``R=0``
        before it is denoised); where it rounds input values otherwise, a
        `~tdrdenoise.TDRUserWarning` says how many.
    **denoise_kwargs
        Passed to :func:`~tdrdenoise.tdr_denoise`: ``method``, ``fine_tune_steps``,
        ``n_predictions``, ``seed``, ``tile_size``, ``calibrate``, ``refine``,
        ``fill`` (``"initial"`` or ``"ambient"``), ``progress`` (of
        each file's fine-tuning and prediction; default False), ``add_keyword``
        (the provenance cards of each output, as in
        :func:`~tdrdenoise.tdr_denoise`: True by default; with False or None no card
        is written, and ``restored_fraction`` is NaN in the table, which reads it
        from the ``TDRRFRAC`` card; :func:`~tdrdenoise.restore_files.restore_file`
        can then no longer tell whether a file was restored already).

    Returns
    -------
    `~astropy.table.Table`
        One row per input file, in input order, with columns ``input``, ``output``,
        ``status`` (``"done"``, ``"skipped"`` or ``"failed"``),
        ``restored_fraction`` (fraction of valid pixels restored; NaN unless done),
        ``seconds`` and ``error`` (why the file failed or was skipped; empty when
        done). ``meta`` holds the counts ``n_done``, ``n_skipped`` and ``n_failed``.

    Raises
    ------
    TypeError
        If ``model`` is not a `~tdrdenoise.TDRModel`, ``denoise_kwargs`` holds an
        unknown argument, ``dtype`` is not None, a 32- or 64-bit float type or an
        integer type,
        or ``R``, ``n_predictions``, ``fine_tune_steps``, ``tile_size`` or ``seed``
        is not a number (bools and strings included).
    ValueError
        If ``method`` is unknown or does not fit the model or the options (see
        :func:`~tdrdenoise.tdr_denoise`), ``R`` is negative or NaN,
        ``n_predictions`` or ``tile_size`` is below 1,
        ``fine_tune_steps`` below 0, a count is not a whole number, or ``seed`` is
        outside ``0 <= seed < 2**63``.
    RuntimeError
        If ``model`` is not trained.
    NotADirectoryError, PermissionError
        If ``output_dir`` is a file or cannot be written (before any work).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from astropy.nddata import CCDData
    >>> from tdrdenoise import TDRModel
    >>> from tdrdenoise.batch import denoise_files
    >>> folder = tempfile.mkdtemp()
    >>> rng = np.random.default_rng(0)
    >>> files = []
    >>> for i in range(2):
    ...     files.append(os.path.join(folder, f"frame{i}.fits"))
    ...     CCDData(rng.normal(size=(32, 32)), unit="adu").write(files[-1])
    >>> model = TDRModel(patch_size=32, batch_size=2, device="cpu").fit(
    ...     CCDData.read(files[0]), steps=2, seed=0, progress=False)
    >>> table = denoise_files(files, model, R=1.0, output_dir=os.path.join(folder, "out"),
    ...                       fine_tune_steps=0, n_predictions=2, seed=0, progress=False)
    >>> table["status"].tolist()
    ['done', 'done']
    >>> table = denoise_files(files, model, output_dir=os.path.join(folder, "out"),
    ...                       progress=False)
    >>> table["status"].tolist()
    ['skipped', 'skipped']
    """
    if not isinstance(model, TDRModel):
        raise TypeError(f"model must be a TDRModel; got {type(model).__name__}")
    model.check_fitted("denoise_files")
    allowed = {"method", "fine_tune_steps", "n_predictions", "seed", "tile_size",
               "progress", "calibrate", "refine", "fill", "add_keyword"}
    unknown = set(denoise_kwargs) - allowed
    if unknown:
        raise TypeError(f"denoise_files got unexpected argument(s) {sorted(unknown)}; "
                        f"tdr_denoise options are {sorted(allowed)}")
    check_add_keyword(denoise_kwargs.get("add_keyword", True))  # before any work
    denoise_kwargs = check_denoise_options(R, denoise_kwargs)
    resolve_method(model, denoise_kwargs.get("method", "auto"),
                   denoise_kwargs.get("n_predictions"), denoise_kwargs.get("fine_tune_steps"))
    denoise_kwargs.setdefault("progress", False)
    dtype = _check_dtype(dtype)
    if isinstance(files, (str, bytes, os.PathLike)):
        files = [files]
    plan = _plan([os.fsdecode(f) for f in files], output_dir, suffix)
    inputs = tuple(p for p, _, _ in plan)
    records = [None] * len(plan)
    folders = _prepare_folders(plan, output_dir, records)
    for folder in folders:
        clean_stale_temporaries(folder)
    todo = []
    for i, (path, out, problem) in enumerate(plan):
        if records[i] is not None:
            continue
        if problem:
            records[i] = _record(path, out, "failed", error=problem)
        else:
            todo.append(i)
    opts = {"R": R, "hdu": hdu, "unit": unit, "overwrite": overwrite,
            "skip_existing": skip_existing, "inputs": inputs,
            "denoise_kwargs": denoise_kwargs, "dtype": dtype, "started": time.time(),
            "R_is_zero": _is_zero(R) and denoise_kwargs.get("fill", "initial") == "initial"}
    bar = progress_bar(len(todo), "tdrdenoise files", progress)
    bar.unit = "file"
    try:
        if client is None:
            for i in todo:
                path, out, _ = plan[i]
                records[i] = _denoise_one(path, out, model, opts)
                bar.update()
        else:
            _run_on_client(client, model, plan, todo, records, bar, device, opts)
    finally:
        bar.close()
    return _table(records, R)


def _check_dtype(dtype):
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


def _is_zero(R):
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


def _prepare_folders(plan, output_dir, records):
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
            records[i] = _record(path, out, "failed", error=folders[folder])
    return [folder for folder, problem in folders.items() if problem is None]


def _run_on_client(client, model, plan, todo, records, bar, device, opts):
    from distributed import as_completed

    if not todo:
        return
    payload = client.scatter(_model_payload(model), broadcast=True)
    futures = {}
    for i in todo:
        path, out, _ = plan[i]
        future = client.submit(_denoise_remote, path, out, payload, device, opts,
                               pure=False, key=f"tdrdenoise-{i}-{os.path.basename(path)}"
                                               f"-{time.time_ns()}")
        futures[future] = i
    try:
        for future in as_completed(list(futures)):
            i = futures[future]
            path, out, _ = plan[i]
            try:
                records[i] = future.result()
            except Exception as exc:  # the task itself died (worker lost, ...)
                records[i] = _record(path, out, "failed",
                                     error=f"{type(exc).__name__}: {exc}")
            bar.update()
    except BaseException:
        client.cancel(list(futures))
        raise


def denoise_collection(collection, model, *, R=np.inf, output_dir=None, filters=None,
                       **kwargs):
    """Denoise the files of a ccdproc `~ccdproc.ImageFileCollection`.

    The files are those of ``collection`` that pass ``filters`` (keyword values, as
    in `ccdproc.ImageFileCollection.files_filtered`); they are handed to
    :func:`denoise_files`. Unless ``hdu`` is given, a collection built with
    ``ext=N`` (N > 0) reads HDU N of each file.

    Parameters
    ----------
    collection : `ccdproc.ImageFileCollection`
        The files.
    model : `~tdrdenoise.TDRModel`
        A trained model.
    R : float or `~astropy.units.Quantity`, optional
        Restore threshold (see :func:`denoise_files`).
    output_dir : str or path-like, optional
        Output folder; by default next to each input.
    filters : dict, optional
        Header keyword values selecting files, e.g. ``{"filter": "F555W"}``.
    **kwargs
        Passed to :func:`denoise_files` (``client``, ``suffix``, ``overwrite``,
        ``n_predictions``, ...).

    Returns
    -------
    `~astropy.table.Table`
        As :func:`denoise_files`.

    Raises
    ------
    TypeError
        If ``collection`` is not an ImageFileCollection.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from astropy.nddata import CCDData
    >>> from ccdproc import ImageFileCollection
    >>> from tdrdenoise import TDRModel
    >>> from tdrdenoise.batch import denoise_collection
    >>> folder = tempfile.mkdtemp()
    >>> rng = np.random.default_rng(0)
    >>> for i, band in enumerate(["V", "V", "R"]):
    ...     ccd = CCDData(rng.normal(size=(32, 32)), unit="adu", meta={"FILTER": band})
    ...     ccd.write(os.path.join(folder, f"frame{i}.fits"))
    >>> model = TDRModel(patch_size=32, batch_size=2, device="cpu").fit(
    ...     ccd, steps=2, seed=0, progress=False)
    >>> collection = ImageFileCollection(folder)
    >>> table = denoise_collection(collection, model, R=1.0, filters={"filter": "V"},
    ...                            output_dir=os.path.join(folder, "out"),
    ...                            fine_tune_steps=0, n_predictions=2, progress=False)
    >>> [os.path.basename(name) for name in table["output"]]
    ['frame0_tdr.fits', 'frame1_tdr.fits']
    """
    from ccdproc import ImageFileCollection

    if not isinstance(collection, ImageFileCollection):
        raise TypeError(f"collection must be a ccdproc ImageFileCollection; got "
                        f"{type(collection).__name__} (use denoise_files for a list of "
                        "file names)")
    files = collection.files_filtered(include_path=True, **(filters or {}))
    files = [] if files is None else list(files)
    if kwargs.get("hdu") is None and getattr(collection, "ext", 0) not in (0, None):
        kwargs["hdu"] = collection.ext
    return denoise_files(files, model, R=R, output_dir=output_dir, **kwargs)
