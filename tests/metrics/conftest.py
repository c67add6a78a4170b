"""Fixtures of the metrics tests: small generated images with known truth."""
import numpy as np
import pytest
from scipy import ndimage

from .helpers import SIGMA


@pytest.fixture(scope="module")
def magnetogram():
    """Noise of sigma 8.09 plus strong, sparse signal (sunspots and network)."""
    rng = np.random.default_rng(5)
    image = rng.normal(0, SIGMA, (400, 400))
    signal = np.zeros_like(image)
    idx = rng.choice(image.size, 800, replace=False)
    signal.flat[idx] = rng.choice([-1, 1], idx.size) * rng.uniform(300, 1500, idx.size)
    signal = ndimage.maximum_filter(np.abs(signal), 3) * np.sign(
        ndimage.uniform_filter(signal, 3) + 1e-9)
    return image + signal


@pytest.fixture(scope="module")
def field():
    """A smooth structured field of order 1."""
    yy, xx = np.mgrid[:128, :128].astype(float)
    return np.sin(xx / 5.0) * np.cos(yy / 7.0) + 0.5 * np.sin((xx + yy) / 11.0)
