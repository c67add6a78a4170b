"""Small shared pieces: warnings, device selection, atomic writes and output claims.

Files are written through :func:`atomic_open`, whose temporary file
(``.<name>.tdrdenoise-<pid>@<host>.<random>.part``) is marked as ours and names the
process writing it, so that :func:`clean_stale_temporaries` can remove what a killed
run left behind (and nothing else). Runs that share an output folder split the work
with :func:`claim_output`: a lock file (``.<name>.tdrdenoise.lock``) created
exclusively, holding ``tdrdenoise <pid>@<host>``;
:func:`prepare_output_folder` checks an output folder before the work starts. Those
file functions are written in ``io/files.py`` and imported from here; the warning
class in ``_warnings.py``.
"""
import torch

from ._warnings import TDRUserWarning
from .io.files import (STALE_AFTER, OutputClaimedError, atomic_open,  # noqa: F401
                       clean_stale_temporaries, prepare_output_folder)
from .io.locks import claim_output

__all__ = ["TDRUserWarning", "OutputClaimedError", "resolve_device", "atomic_open",
           "clean_stale_temporaries", "claim_output", "prepare_output_folder"]


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
