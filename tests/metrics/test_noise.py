"""Tests of tdrdenoise.metrics.noise: the paper's histogram-fit noise level."""
import numpy as np
import pytest
from astropy import units as u
from astropy.modeling.models import Gaussian1D
from astropy.nddata import CCDData

from tdrdenoise.metrics import noise_level

from .helpers import DATA, KINDS, SIGMA, strip, value, wrap


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("window", [20.0, None])
def test_noise_level_recovers_sigma(magnetogram, kind, window):
    assert np.mean(np.abs(magnetogram) > 100) > 0.02  # the signal is there and strong
    rng = None if window is None else value(kind, window)
    sigma, model = noise_level(wrap(kind, magnetogram), range=rng)
    if kind == "ndarray":
        assert isinstance(sigma, float)
    else:
        assert sigma.unit == u.G
    assert strip(sigma) == pytest.approx(SIGMA, rel=0.02)
    assert isinstance(model, Gaussian1D)
    assert model.stddev.value == pytest.approx(strip(sigma))
    assert abs(model.mean.value) < 0.5


def test_noise_level_plain_std_is_fooled(magnetogram):
    """The signal makes the plain standard deviation useless: the fit is needed."""
    assert np.std(magnetogram) > 5 * SIGMA


def test_noise_level_excludes_nan_and_masked(magnetogram):
    image = magnetogram.copy()
    image[:40] = np.nan
    image[100:200, 100:200] = 5.0  # a flat patch inside the window, masked below
    mask = np.zeros(image.shape, bool)
    mask[100:200, 100:200] = True
    sigma, _ = noise_level(CCDData(image, unit="G", mask=mask), range=20 * u.G)
    assert sigma.value == pytest.approx(SIGMA, rel=0.02)
    unmasked, _ = noise_level(np.where(mask, 5.0, image), range=20.0)
    assert abs(unmasked / SIGMA - 1) > 0.05  # the patch would have spoiled it


def test_noise_level_center(magnetogram):
    offset = magnetogram + 1000.0
    sigma, model = noise_level(offset, range=20.0, center=None)
    assert sigma == pytest.approx(SIGMA, rel=0.02)
    assert model.mean.value == pytest.approx(1000.0, abs=0.5)
    sigma, _ = noise_level(offset * u.G, range=2 * u.mT, center=100 * u.mT)
    assert sigma.value == pytest.approx(SIGMA, rel=0.02)
    with pytest.raises(ValueError, match="center=None"):
        noise_level(offset, range=20.0)


def test_noise_level_errors(magnetogram):
    with pytest.raises(ValueError, match="positive"):
        noise_level(magnetogram, range=-1.0)
    with pytest.raises(u.UnitsError, match="range"):
        noise_level(magnetogram * u.G, range=20 * u.m)
    with pytest.raises(u.UnitsError, match="has a unit but the image has none"):
        noise_level(magnetogram, range=20 * u.G)
    with pytest.raises(ValueError, match="no valid pixels"):
        noise_level(np.full((8, 8), np.nan))
    with pytest.raises(TypeError):
        noise_level("image")


@pytest.mark.data
def test_mdi_noise_level():
    sunpy_map = pytest.importorskip("sunpy.map")
    m = sunpy_map.Map(DATA / "mdi" / "mdi.fd_m_96m_lev182.20101015_000000_TAI.data.fits")
    sigma, _ = noise_level(m, range=20 * u.G)
    assert sigma.value == pytest.approx(11.9, rel=0.02)  # the paper's method: ~11.9 G
