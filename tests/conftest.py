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


# ----------------------------------------------------------------- container kinds
CONTAINER_KINDS = ["ndarray", "masked", "quantity", "nddata", "ccddata", "map"]


def make_container(kind, data, unit="G"):
    """``data`` wrapped as ``kind``, with a unit, WCS, header and mask where it has them."""
    from astropy import units as u
    from astropy.io import fits
    from astropy.nddata import CCDData, NDData, StdDevUncertainty
    from astropy.wcs import WCS

    data = np.array(data, copy=True)
    mask = np.zeros(data.shape, bool)
    mask[3, 4] = True
    if kind == "ndarray":
        return data
    if kind == "masked":
        return np.ma.MaskedArray(data, mask=mask)
    if kind == "quantity":
        return data * u.Unit(unit)
    if kind == "map":
        sunpy_map = pytest.importorskip("sunpy.map")
        from astropy.coordinates import SkyCoord
        from sunpy.coordinates import frames
        ref = SkyCoord(0 * u.arcsec, 0 * u.arcsec, obstime="2024-05-10T12:00:00",
                       observer="earth", frame=frames.Helioprojective)
        header = sunpy_map.make_fitswcs_header(data, ref, scale=[20, 20] * u.arcsec / u.pix,
                                               unit=u.Unit(unit), telescope="SDO/HMI",
                                               instrument="HMI", wavelength=6173 * u.AA)
        return sunpy_map.Map(data, header, mask=mask)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crpix = [data.shape[1] / 2, data.shape[0] / 2]
    wcs.wcs.crval = [53.4, -36.14]
    wcs.wcs.cdelt = [-1e-5, 1e-5]
    header = fits.Header({"OBJECT": "NGC 1365", "EXPTIME": 10.0})
    cls = CCDData if kind == "ccddata" else NDData
    return cls(data, unit=unit, mask=mask, meta=header, wcs=wcs,
               uncertainty=StdDevUncertainty(np.full(data.shape, 0.3)))


@pytest.fixture(params=CONTAINER_KINDS)
def container(request):
    """A factory ``container(data)`` for each container kind tdrdenoise accepts."""
    def factory(data, unit="G"):
        return make_container(request.param, data, unit)
    factory.kind = request.param
    return factory
