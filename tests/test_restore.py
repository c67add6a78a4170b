import numpy as np
import pytest
from astropy import units as u

from tdrdenoise import restore


@pytest.fixture
def pair():
    rng = np.random.default_rng(1)
    initial = rng.normal(0, 10, (50, 40))
    denoised = initial + rng.normal(0, 5, initial.shape)
    return initial, denoised


@pytest.mark.parametrize("R", [0.0, 0.5, 3.0, 7.5, 20.0])
def test_invariants(pair, R):
    initial, denoised = pair
    out, mask = restore(initial, denoised, R)
    assert np.all(np.abs(out - initial) <= R)
    np.testing.assert_array_equal(out[mask], initial[mask])
    np.testing.assert_array_equal(out[~mask], denoised[~mask])
    np.testing.assert_array_equal(mask, np.abs(denoised - initial) > R)


def test_zero_returns_input(pair):
    initial, denoised = pair
    out, _ = restore(initial, denoised, 0)
    np.testing.assert_array_equal(out, initial)


def test_inf_restores_nothing(pair):
    initial, denoised = pair
    out, mask = restore(initial, denoised, np.inf)
    np.testing.assert_array_equal(out, denoised)
    assert not mask.any()


def test_inputs_not_modified(pair):
    initial, denoised = pair
    i0, d0 = initial.copy(), denoised.copy()
    restore(initial, denoised, 2.0)
    np.testing.assert_array_equal(initial, i0)
    np.testing.assert_array_equal(denoised, d0)


def test_quantity_threshold_converted():
    initial = np.array([0.0, 0.0]) * u.G
    denoised = np.array([0.5, 2.0]) * u.G
    out, mask = restore(initial, denoised, 0.1 * u.mT)  # 1 G
    assert out.unit == u.G
    np.testing.assert_array_equal(mask, [False, True])
    np.testing.assert_array_equal(out.value, [0.5, 0.0])


def test_denoised_in_other_unit():
    initial = np.array([0.0, 0.0]) * u.G
    denoised = np.array([0.05, 0.5]) * u.mT  # 0.5 G and 5 G
    out, mask = restore(initial, denoised, 1 * u.G)
    np.testing.assert_allclose(out.value, [0.5, 0.0])


def test_nan_pixels_take_initial():
    initial = np.array([np.nan, 1.0, 2.0])
    denoised = np.array([0.0, np.nan, 2.1])
    out, mask = restore(initial, denoised, 1.0)
    np.testing.assert_array_equal(mask, [True, True, False])
    assert np.isnan(out[0]) and out[1] == 1.0 and out[2] == 2.1


@pytest.mark.parametrize("R", [-1.0, np.nan, -0.0001 * u.G])
def test_bad_threshold(R):
    with pytest.raises(ValueError, match="non-negative"):
        restore(np.zeros(3) * u.G, np.ones(3) * u.G, R)


def test_threshold_unit_mismatch():
    with pytest.raises(u.UnitsError, match="cannot be converted"):
        restore(np.zeros(3) * u.G, np.ones(3) * u.G, 1 * u.s)
    with pytest.raises(u.UnitsError, match="has a unit but the image has none"):
        restore(np.zeros(3), np.ones(3), 1 * u.G)


def test_threshold_not_a_number():
    with pytest.raises(TypeError, match="R must be a number"):
        restore(np.zeros(3), np.ones(3), "five")


@pytest.mark.parametrize("R", [np.array([1.0, 2.0]), [1.0, 2.0] * u.G])
def test_threshold_not_a_scalar(R):
    with pytest.raises(TypeError, match="R must be a scalar; got an array of shape"):
        restore(np.zeros(2) * u.G, np.ones(2) * u.G, R)


def test_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        restore(np.zeros(3), np.zeros(4), 1.0)
