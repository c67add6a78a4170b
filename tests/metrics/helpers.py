"""Helpers of the metrics tests: containers, scalars and the shared-data path."""
from pathlib import Path

from astropy import units as u
from astropy.nddata import CCDData, NDData

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
KINDS = ["ndarray", "quantity", "ccddata", "nddata"]
SIGMA = 8.09


def wrap(kind, data, unit=u.G, **kwargs):
    """``data`` in the container ``kind`` (with ``unit`` unless an ndarray)."""
    if kind == "ndarray":
        return data
    if kind == "quantity":
        return data * unit
    if kind == "ccddata":
        return CCDData(data, unit=unit, **kwargs)
    if kind == "nddata":
        return NDData(data, unit=unit, **kwargs)
    raise ValueError(kind)


def value(kind, x, unit=u.G):
    """A scalar argument matching the container: plain for ndarray, else a Quantity."""
    return x if kind == "ndarray" else x * unit


def strip(x):
    return x.value if isinstance(x, u.Quantity) else x
