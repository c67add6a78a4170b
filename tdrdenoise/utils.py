"""Small shared pieces: warnings and device selection."""
import torch
from astropy.utils.exceptions import AstropyUserWarning

__all__ = ["TDRUserWarning", "resolve_device"]


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
