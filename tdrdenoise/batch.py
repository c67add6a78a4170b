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

import numpy as np

from .prediction.student import resolve_method
from ._progress import progress_bar
from .io.provenance import check_add_keyword
from ._validate import check_denoise_options
from .model import TDRModel
from .utils import (clean_stale_temporaries)

from ._batch_steps import (plan_outputs, file_record, denoise_one, run_table, check_dtype, is_zero,
                           prepare_folders)  # noqa: E402,F401

__all__ = ["denoise_files", "denoise_collection"]

#: Models rebuilt on a dask worker, by key, so each worker loads a model only once.
_WORKER_MODELS = {}


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
        return file_record(path, out, "failed",
                           error=f"cannot rebuild the model on the worker: "
                                 f"{type(exc).__name__}: {exc}")
    return denoise_one(path, out, model, opts)


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
    dtype = check_dtype(dtype)
    if isinstance(files, (str, bytes, os.PathLike)):
        files = [files]
    plan = plan_outputs([os.fsdecode(f) for f in files], output_dir, suffix)
    inputs = tuple(p for p, _, _ in plan)
    records = [None] * len(plan)
    folders = prepare_folders(plan, output_dir, records)
    for folder in folders:
        clean_stale_temporaries(folder)
    todo = []
    for i, (path, out, problem) in enumerate(plan):
        if records[i] is not None:
            continue
        if problem:
            records[i] = file_record(path, out, "failed", error=problem)
        else:
            todo.append(i)
    opts = {"R": R, "hdu": hdu, "unit": unit, "overwrite": overwrite,
            "skip_existing": skip_existing, "inputs": inputs,
            "denoise_kwargs": denoise_kwargs, "dtype": dtype, "started": time.time(),
            "R_is_zero": is_zero(R) and denoise_kwargs.get("fill", "initial") == "initial"}
    bar = progress_bar(len(todo), "tdrdenoise files", progress)
    bar.unit = "file"
    try:
        if client is None:
            for i in todo:
                path, out, _ = plan[i]
                records[i] = denoise_one(path, out, model, opts)
                bar.update()
        else:
            _run_on_client(client, model, plan, todo, records, bar, device, opts)
    finally:
        bar.close()
    return run_table(records, R)


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
                records[i] = file_record(path, out, "failed",
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
