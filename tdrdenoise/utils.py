"""Small shared pieces: warnings, device selection and atomic file writes."""
import contextlib
import os
import tempfile

import torch
from astropy.utils.exceptions import AstropyUserWarning

__all__ = ["TDRUserWarning", "resolve_device", "atomic_open"]


class TDRUserWarning(AstropyUserWarning):
    """Warnings issued by tdrdenoise."""


def resolve_device(device="auto"):
    """Turn ``"auto"``, a device name or a `torch.device` into a `torch.device`.

    Parameters
    ----------
    device : str or `torch.device`
        ``"auto"`` picks CUDA when available, else the CPU.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        For an unknown device name, or CUDA asked for where there is none.

    Examples
    --------
    >>> from tdrdenoise.utils import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or a torch.device; "
                         f"got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} asked for CUDA, but no CUDA GPU is available; "
                         "use device='auto' or 'cpu'")
    return dev


def _umask():
    """The process umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path):
    """Open ``path`` for binary writing so that it appears whole or not at all.

    The data go to a temporary file in the same folder, which is synced and renamed
    to ``path`` when the block ends without an error, and removed otherwise: an
    interrupted write never leaves a half-written file, nor touches an existing one.

    Parameters
    ----------
    path : str or path-like
        The file to write; its folder is created if needed.

    Yields
    ------
    file object
        Open for binary writing.

    Examples
    --------
    >>> import os, tempfile
    >>> from tdrdenoise.utils import atomic_open
    >>> path = os.path.join(tempfile.mkdtemp(), "out.bin")
    >>> with atomic_open(path) as fh:
    ...     _ = fh.write(b"data")
    >>> open(path, "rb").read()
    b'data'
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".",
                               suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates the file readable by its owner only: give it the usual mode
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
