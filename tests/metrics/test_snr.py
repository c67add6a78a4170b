"""Tests of tdrdenoise.metrics.snr: the SNR map, residual and global."""
import numpy as np
import pytest
from astropy import units as u
from astropy.nddata import CCDData, StdDevUncertainty

from tdrdenoise.metrics import snr_map


def test_snr_map_uses_noise_of_initial():
    rng = np.random.default_rng(8)
    truth = np.full((128, 128), 10.0)
    initial = truth + rng.normal(0, 2.0, truth.shape)
    initial[0, 0] = np.nan
    snr = snr_map(initial * u.G, truth * u.G, method="global")
    assert np.isnan(snr[0, 0])
    assert np.nanmedian(snr) == pytest.approx(5.0, rel=0.03)
    np.testing.assert_allclose(snr_map(initial, truth, noise=4.0, method="global")[1:], 2.5)
    np.testing.assert_allclose(snr_map(initial * u.G, -truth * u.G, noise=0.4 * u.mT,
                                       method="global")[1:], 2.5)
    with pytest.raises(ValueError, match="positive"):
        snr_map(initial, truth, noise=0.0, method="global")


def test_snr_map_uses_uncertainty():
    initial = np.random.default_rng(9).normal(0, 1.0, (32, 32))
    ccd = CCDData(initial, unit="adu", uncertainty=StdDevUncertainty(np.full((32, 32), 2.0)))
    np.testing.assert_allclose(snr_map(ccd, np.full((32, 32), 6.0), method="global"), 3.0)


def test_snr_map_residual_is_the_default():
    """The paper's definition: |denoised| / |initial - denoised|, equal pixels left out."""
    rng = np.random.default_rng(14)
    truth = np.full((64, 64), 10.0)
    noise = rng.normal(0, 2.0, truth.shape)
    initial = truth + noise
    denoised = truth.copy()
    denoised[:8] = initial[:8]  # restored: no residual, left out
    initial[8, 0] = np.nan
    snr = snr_map(initial * u.G, denoised * u.G)
    assert np.all(np.isnan(snr[:8])) and np.isnan(snr[8, 0])
    np.testing.assert_allclose(snr[9:], 10.0 / np.abs(noise[9:]))
    np.testing.assert_array_equal(snr, snr_map(initial, denoised, method="residual"))
    # restored in float32 from a float64 input: still equal, still left out
    assert np.all(np.isnan(snr_map(initial, denoised.astype(np.float32))[:8]))


def test_snr_map_method_errors():
    image = np.random.default_rng(15).normal(size=(16, 16))
    with pytest.raises(ValueError, match="method='global'"):
        snr_map(image, 0.5 * image, noise=1.0, method="residual")
    # noise given: the global definition, as before
    np.testing.assert_array_equal(snr_map(image, 0.5 * image, noise=2.0),
                                  snr_map(image, 0.5 * image, noise=2.0, method="global"))
    with pytest.raises(ValueError, match="method must be"):
        snr_map(image, 0.5 * image, method="local")
    with pytest.raises(TypeError):
        snr_map(image, 0.5 * image, 1.0)  # noise is keyword-only
    with pytest.raises(ValueError, match="too few adjacent"):
        checker = np.where(np.indices((16, 16)).sum(0) % 2 == 0, image, np.nan)
        snr_map(checker, checker, method="global")
