"""Tests of tdrdenoise.metrics.flux: residual flux and restored fraction."""
import numpy as np
import pytest
from astropy import units as u

from tdrdenoise.metrics import (absolute_error, mean_squared_error, residual_flux,
                                restored_fraction)

from .helpers import KINDS, strip, wrap


@pytest.mark.parametrize("kind", KINDS)
def test_errors_and_residual_flux_keep_units(kind):
    initial = np.array([[0.0, 1.0], [2.0, 3.0]])
    denoised = np.array([[1.0, 1.0], [0.0, 3.0]])
    ae = absolute_error(wrap(kind, initial), wrap(kind, denoised))
    mse = mean_squared_error(wrap(kind, initial), wrap(kind, denoised))
    mean, mean_abs = residual_flux(wrap(kind, initial), wrap(kind, denoised))
    assert strip(ae) == 0.75 and strip(mse) == 1.25
    assert strip(mean) == 0.25 and strip(mean_abs) == 0.75
    if kind != "ndarray":
        assert ae.unit == u.G and mean.unit == u.G and mean_abs.unit == u.G
        assert mse.unit == u.G ** 2


def test_restored_fraction():
    initial = np.arange(10.0).reshape(2, 5)
    denoised = initial + np.array([[0, 0.5, 1.5, 3, 0], [0, 0, 0, 2, 0.1]])
    assert restored_fraction(initial, denoised, R=1.0) == 0.3
    assert restored_fraction(initial, denoised, R=np.inf) == 0.0
    assert restored_fraction(initial * u.G, denoised * u.G, R=0.1 * u.mT) == 0.3
    assert restored_fraction(initial, denoised) == 0.5  # pixels equal to initial
    # a float32 output restored from float64 input still counts as equal
    assert restored_fraction(initial + 0.1, (denoised + 0.1).astype(np.float32)) == 0.5
    with pytest.raises(ValueError, match="non-negative"):
        restored_fraction(initial, denoised, R=-1)


def test_residual_flux_is_a_named_tuple():
    initial = np.array([[1.0, 2.0], [3.0, 5.0]])
    denoised = initial - np.array([[1.0, -1.0], [0.0, 2.0]])
    result = residual_flux(initial, denoised)
    assert (result.mean, result.mean_abs) == (0.5, 1.0)
    assert result.mean_abs == absolute_error(initial, denoised)
