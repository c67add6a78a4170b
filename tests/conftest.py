"""Shared fixtures: small images with known truth, a tiny trained model, data paths."""
import os
from pathlib import Path

import numpy as np
import pytest

#: ../shared/data beside the checkout (override with TDRDENOISE_DATA).
SHARED_DATA = Path(os.environ.get("TDRDENOISE_DATA",
                                  Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def pytest_addoption(parser):
    # pytest-skip-slow, where installed, registers the same option: keep its.
    try:
        parser.addoption("--slow", action="store_true", default=False,
                         help="also run the tests marked slow")
    except ValueError:
        pass


def pytest_collection_modifyitems(config, items):
    skip_data = pytest.mark.skip(reason=f"shared data not found at {SHARED_DATA}")
    skip_slow = pytest.mark.skip(reason="slow: run with --slow")
    run_slow = config.getoption("--slow")
    for item in items:
        if "data" in item.keywords and not SHARED_DATA.is_dir():
            item.add_marker(skip_data)
        if "slow" in item.keywords and not run_slow:
            item.add_marker(skip_slow)


def smooth_field(shape=(64, 64)):
    """A smooth image with structure on several scales, values of order 1."""
    yy, xx = np.mgrid[:shape[0], :shape[1]].astype(float)
    return (np.sin(xx / 5.0) * np.cos(yy / 7.0) + 0.5 * np.sin((xx + yy) / 11.0)
            + 0.002 * xx)


@pytest.fixture(scope="session")
def truth():
    return smooth_field()


@pytest.fixture(scope="session")
def noisy(truth):
    return truth + np.random.default_rng(42).normal(0, 0.3, truth.shape)


@pytest.fixture(scope="session")
def tiny_model(noisy):
    """A model trained for a few steps: fast, for API tests (not for quality)."""
    from tdrdenoise import TDRModel
    return TDRModel(patch_size=32, batch_size=2, device="cpu").fit(
        noisy, steps=3, seed=0, progress=False)


@pytest.fixture(scope="session")
def unit_model(noisy):
    """A tiny model trained on an image in gauss."""
    from astropy import units as u
    from tdrdenoise import TDRModel
    return TDRModel(patch_size=32, batch_size=2, device="cpu").fit(
        noisy * u.G, steps=3, seed=0, progress=False)
