"""Tests of tdrdenoise.metrics.reference: PSNR and SSIM."""
import numpy as np
import pytest
from astropy import units as u
from scipy import ndimage

from tdrdenoise.metrics import psnr, ssim


def test_psnr():
    reference = np.zeros((16, 16))
    reference[0, 0] = 2.0
    image = reference + 0.1
    assert psnr(image, reference, data_range=1.0) == pytest.approx(20.0)
    assert psnr(image, reference) == pytest.approx(20 + 20 * np.log10(2))  # range 2
    assert psnr(image * u.G, reference * u.G, data_range=0.1 * u.mT) == pytest.approx(20.0)
    assert psnr(reference, reference) == np.inf
    with pytest.raises(ValueError, match="data_range"):
        psnr(image, reference, data_range=0)


def test_ssim(field):
    rng = np.random.default_rng(10)
    noisy = field + rng.normal(0, 0.3, field.shape)
    assert ssim(field, field) == 1.0
    value = ssim(noisy, field, data_range=3.0)
    assert 0 < value < 1
    assert ssim(ndimage.gaussian_filter(noisy, 1.0), field, data_range=3.0) > value
    holed = noisy.copy()
    holed[40:44, 50:60] = np.nan
    assert ssim(holed, field, data_range=3.0) == pytest.approx(value, abs=0.01)
    with pytest.raises(ValueError, match="too small"):
        ssim(field[:8, :8], field[:8, :8])


def test_ssim_matches_scikit_image(field):
    structural_similarity = pytest.importorskip("skimage.metrics").structural_similarity
    noisy = field + np.random.default_rng(11).normal(0, 0.3, field.shape)
    expected = structural_similarity(noisy, field, data_range=3.0, gaussian_weights=True,
                                     sigma=1.5, use_sample_covariance=False)
    assert ssim(noisy, field, data_range=3.0) == pytest.approx(expected, rel=1e-9)
