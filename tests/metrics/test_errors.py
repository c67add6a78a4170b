"""Tests of tdrdenoise.metrics.errors: errors and correlation of two images."""
import numpy as np
import pytest
from astropy import units as u
from astropy.nddata import CCDData

from tdrdenoise.metrics import absolute_error, linear_coefficient, mean_squared_error, pearson_cc

from .helpers import KINDS, wrap


@pytest.mark.parametrize("kind", KINDS)
def test_linear_coefficient_identity_is_one(field, kind):
    noisy = field + np.random.default_rng(0).normal(0, 0.3, field.shape)
    assert linear_coefficient(wrap(kind, noisy), wrap(kind, noisy)) == 1.0
    assert linear_coefficient(wrap(kind, noisy), wrap(kind, 2 * noisy + 3)) == \
        pytest.approx(2.0)


def test_linear_coefficient_of_shrinkage(field):
    rng = np.random.default_rng(1)
    noisy = field + rng.normal(0, 0.3, field.shape)
    # a denoiser that halves the strong features has a coefficient near 0.5
    assert linear_coefficient(noisy, 0.5 * field) == pytest.approx(
        0.5 * np.var(field) / np.var(noisy), rel=0.05)
    with pytest.raises(ValueError, match="constant"):
        linear_coefficient(np.ones((8, 8)), noisy[:8, :8])


def test_units_are_converted_and_checked(field):
    image = field * u.G
    assert absolute_error(image, image.to(u.mT)).value == pytest.approx(0, abs=1e-12)
    assert mean_squared_error(image, image.to(u.mT) * 1.1).unit == u.G ** 2
    with pytest.raises(u.UnitsError, match="denoised"):
        absolute_error(image, field * u.m)
    with pytest.raises(ValueError, match="same shape"):
        absolute_error(field, field[:10])


def test_invalid_pixels_are_excluded_from_pairs(field):
    initial = field.copy()
    denoised = field.copy()
    initial[0, :5] = np.nan
    denoised[1, :5] = 1e6  # masked below
    mask = np.zeros(field.shape, bool)
    mask[1, :5] = True
    ccd = CCDData(denoised, unit="G", mask=mask)
    assert absolute_error(initial * u.G, ccd).value == 0.0
    assert pearson_cc(initial, np.ma.MaskedArray(denoised, mask)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no pixel valid"):
        absolute_error(np.full((4, 4), np.nan), np.zeros((4, 4)))


def test_pearson_cc(field):
    assert pearson_cc(field, field) == pytest.approx(1.0)
    assert pearson_cc(field, -3 * field + 1) == pytest.approx(-1.0)
    noise = np.random.default_rng(2).normal(size=field.shape)
    assert abs(pearson_cc(field, noise)) < 0.05
    assert np.isnan(pearson_cc(field, np.ones_like(field)))
