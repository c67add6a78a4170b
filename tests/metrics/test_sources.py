"""Tests of tdrdenoise.metrics.sources: sources before and after denoising."""
import sys

import numpy as np
import pytest
from astropy import units as u
from astropy.nddata import CCDData

from tdrdenoise.metrics import detect_sources


@pytest.fixture(scope="module")
def faint_sources():
    """Noise of sigma 1 and 25 faint extended sources: 8 x 8 plateaus of 3.3 sigma.

    Per pixel, noise pushes a third of each plateau below a 3-sigma threshold and
    breaks it into small pieces; a denoised image keeps it whole.
    """
    truth = np.zeros((200, 200))
    for i in range(5):
        for j in range(5):
            truth[20 + 35 * i:28 + 35 * i, 20 + 35 * j:28 + 35 * j] = 3.3
    return truth, truth + np.random.default_rng(13).normal(0, 1.0, truth.shape)


def test_detect_sources_finds_fainter_sources(faint_sources):
    pytest.importorskip("photutils")
    truth, noisy = faint_sources
    denoised = truth + 0.1 * (noisy - truth)  # a good denoiser
    kwargs = dict(npixels=20, connectivity=4)
    result = detect_sources(CCDData(noisy, unit="adu"), CCDData(denoised, unit="adu"),
                            **kwargs)
    assert result["threshold"].unit == u.adu
    assert result["threshold"].value == pytest.approx(3.0, rel=0.1)  # 3 sigma
    assert result["n_denoised"] == 25  # every source, no false one
    assert result["n_initial"] < 20
    assert result["n_new"] >= 25 - result["n_initial"]
    assert result["segm_denoised"].shape == noisy.shape
    # the same threshold on both: giving it explicitly changes nothing
    same = detect_sources(noisy, denoised, threshold=result["threshold"].value, **kwargs)
    assert (same["n_initial"], same["n_denoised"]) == (result["n_initial"], 25)


def test_detect_sources_nothing_found():
    pytest.importorskip("photutils")
    flat = np.zeros((32, 32))
    result = detect_sources(flat, flat, threshold=1.0)
    assert result["n_initial"] == result["n_denoised"] == result["n_new"] == 0
    assert result["segm_initial"] is None


def test_detect_sources_needs_photutils(monkeypatch):
    monkeypatch.setitem(sys.modules, "photutils.segmentation", None)
    with pytest.raises(ImportError, match="pip install photutils"):
        detect_sources(np.zeros((8, 8)), np.zeros((8, 8)))
