"""Tests of tdrdenoise.metrics.damage: large-scale damage with known truth."""
import numpy as np
import pytest
from astropy import units as u
from astropy.nddata import CCDData
from scipy import ndimage

from tdrdenoise.metrics import large_scale_damage

from .helpers import KINDS, strip, value, wrap

SHAPE = (256, 256)
NOISE = 2.0


@pytest.fixture(scope="module")
def scene():
    """A smooth truth with a bright compact source, and truth + white noise."""
    yy, xx = np.mgrid[:SHAPE[0], :SHAPE[1]].astype(float)
    truth = 20 * np.sin(xx / 17.0) * np.cos(yy / 23.0)
    truth += 500 * np.exp(-((xx - 100) ** 2 + (yy - 140) ** 2) / 8.0)
    noisy = truth + np.random.default_rng(20).normal(0, NOISE, SHAPE)
    return truth, noisy


@pytest.mark.parametrize("kind", KINDS)
def test_perfect_denoiser_scores_one(scene, kind):
    """denoised = truth: the residual is the white noise, the ratio about 1."""
    truth, noisy = scene
    result = large_scale_damage(wrap(kind, noisy), wrap(kind, truth))
    assert result.ratio == pytest.approx(1.0, abs=0.1)
    assert abs(result.net_change) < 0.02
    assert strip(result.sigma) == pytest.approx(NOISE, rel=0.05)
    assert result.smoothing == 8
    if kind != "ndarray":
        assert result.sigma.unit == u.G
    # a named tuple
    ratio, net, _, _ = result
    assert (ratio, net) == (result.ratio, result.net_change)


@pytest.mark.parametrize("smoothing", [1, 4, 16])
def test_ratio_is_one_at_every_smoothing(scene, smoothing):
    truth, noisy = scene
    result = large_scale_damage(noisy, truth, smoothing=smoothing)
    assert result.ratio == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("kind", KINDS)
def test_offset_is_damage(scene, kind):
    """denoised = initial - c: net change c / sigma and a large ratio (c * s / sigma)."""
    _, noisy = scene
    offset = 1.0
    result = large_scale_damage(wrap(kind, noisy), wrap(kind, noisy - offset),
                                noise=value(kind, NOISE))
    assert result.net_change == pytest.approx(offset / NOISE)
    # no noise in the residual: c * s / sigma, a little less in the partial edge windows
    assert result.ratio == pytest.approx(offset / NOISE * 8, rel=0.02)
    assert result.ratio > 3


def test_blur_of_pure_noise_scores_below_one():
    noise = np.random.default_rng(21).normal(0, NOISE, SHAPE)
    result = large_scale_damage(noise, ndimage.gaussian_filter(noise, 2.0))
    assert result.ratio < 0.5
    assert abs(result.net_change) < 0.01


def test_pulled_down_source_is_damage(scene):
    """A denoiser that halves the bright source changes large scales; clipping hides it."""
    truth, noisy = scene
    damaged = truth - 0.5 * (truth - ndimage.uniform_filter(truth, 31))
    result = large_scale_damage(noisy, damaged)
    assert result.ratio > 2
    clipped = large_scale_damage(noisy, damaged, sigma_clip=3.0)
    assert clipped.ratio < result.ratio


def test_masked_and_nan_pixels_are_left_out(scene):
    truth, noisy = scene
    initial = noisy.copy()
    initial[:, :20] = np.nan
    mask = np.zeros(SHAPE, bool)
    mask[100:160, 100:160] = True
    denoised = truth.copy()
    denoised[mask] = 1e6  # would be enormous damage if it counted
    result = large_scale_damage(initial, CCDData(denoised, unit="adu", mask=mask))
    assert result.ratio == pytest.approx(1.0, abs=0.1)
    # every usable window is rescaled to its valid pixels: a sparse mask changes nothing
    sparse = np.random.default_rng(22).random(SHAPE) < 0.2
    holed = np.where(sparse, np.nan, noisy)
    assert large_scale_damage(holed, truth, noise=NOISE).ratio == pytest.approx(
        large_scale_damage(noisy, truth, noise=NOISE).ratio, abs=0.1)


def test_errors(scene):
    truth, noisy = scene
    with pytest.raises(ValueError, match="smoothing"):
        large_scale_damage(noisy, truth, smoothing=0)
    with pytest.raises(ValueError, match="smoothing"):
        large_scale_damage(noisy, truth, smoothing=2.5)
    with pytest.raises(ValueError, match="noise"):
        large_scale_damage(noisy, truth, noise=0.0)
    with pytest.raises(u.UnitsError):
        large_scale_damage(noisy * u.G, truth * u.G, noise=1 * u.s)
    with pytest.raises(ValueError, match="pass noise="):
        large_scale_damage(np.ones((16, 16)), np.ones((16, 16)))
    checker = np.where(np.indices((32, 32)).sum(0) % 2 == 0, noisy[:32, :32], np.nan)
    with pytest.raises(ValueError, match="too few adjacent"):
        large_scale_damage(checker, checker)
    sparse = np.where((np.indices((32, 32)) % 3 == 0).all(0), noisy[:32, :32], np.nan)
    with pytest.raises(ValueError, match="half valid"):
        large_scale_damage(sparse, sparse, noise=1.0, smoothing=8)


def _correlated(seed, shape=SHAPE, width=1.0):
    """White noise through a Gaussian kernel of ``width`` px (sigma ~ NOISE / 3.5)."""
    white = np.random.default_rng(seed).normal(0, NOISE, shape)
    return ndimage.gaussian_filter(white, width)


@pytest.fixture(scope="module")
def gentle(scene):
    """The scene's truth at a tenth of its contrast: correlated noise has small
    neighbour differences, which a steep truth would swamp in the σ estimate."""
    return scene[0] / 10


@pytest.mark.parametrize("kind", KINDS)
def test_noise_sample_makes_correlated_noise_score_one(gentle, kind):
    """Removing exactly correlated noise is far above 1 in white-noise units, about
    1 against a sample of that noise, of any amplitude, size or container."""
    truth = gentle
    noisy = truth + _correlated(1)
    white_units = large_scale_damage(noisy, truth)
    assert white_units.ratio > 3
    sample = 7.0 * _correlated(2, (200, 300))  # another realisation, size, amplitude
    result = large_scale_damage(wrap(kind, noisy), wrap(kind, truth),
                                noise_sample=wrap(kind, sample))
    assert result.ratio == pytest.approx(1.0, abs=0.1)
    # sigma is now the per-pixel sigma of the noise, which the neighbour-difference
    # estimate of correlated noise underestimates; the net change is in its units
    true_sigma = float(np.std(noisy - truth))
    assert strip(result.sigma) == pytest.approx(true_sigma, rel=0.1)
    assert strip(white_units.sigma) < 0.7 * true_sigma
    assert result.net_change == pytest.approx(
        white_units.net_change * strip(white_units.sigma) / strip(result.sigma))
    # with noise= given, the sample is scaled by its standard deviation instead
    given = large_scale_damage(noisy, truth, noise=true_sigma, noise_sample=sample)
    assert given.ratio == pytest.approx(1.0, abs=0.1)
    assert strip(given.sigma) == true_sigma


def test_noise_sample_still_sees_damage(gentle):
    """A background offset stays damage in the units of correlated noise."""
    truth = gentle
    noisy = truth + _correlated(1)
    sample = _correlated(2)
    offset = float(np.std(noisy - truth))  # one per-pixel sigma
    exact = large_scale_damage(noisy, truth, noise_sample=sample)
    result = large_scale_damage(noisy, truth - offset, noise_sample=sample)
    assert exact.ratio < 1.1
    assert result.ratio > 2.5  # issue 12's goal: at most 2
    assert result.net_change == pytest.approx(exact.net_change + 1.0, abs=0.1)


def test_white_noise_sample_changes_nothing(scene):
    """For white noise a white sample gives the white-noise ratio back (within its
    sampling error)."""
    truth, noisy = scene
    plain = large_scale_damage(noisy, truth)
    sample = np.random.default_rng(3).normal(0, 1.0, SHAPE)
    assert large_scale_damage(noisy, truth, noise_sample=sample).ratio == pytest.approx(
        plain.ratio, rel=0.05)


def test_noise_sample_masked_pixels_and_errors(gentle):
    truth = gentle
    noisy = truth + _correlated(1)
    sample = _correlated(2)
    holed = sample.copy()
    holed[50:90, 60:200] = np.nan
    assert large_scale_damage(noisy, truth, noise_sample=holed).ratio == pytest.approx(
        1.0, abs=0.1)
    with pytest.raises(ValueError, match="noise_sample is constant"):
        large_scale_damage(noisy, truth, noise_sample=np.ones((64, 64)))
    with pytest.raises(ValueError, match="no valid pixels"):
        large_scale_damage(noisy, truth, noise_sample=np.full((64, 64), np.nan))
    sparse = np.where((np.indices((64, 64)) % 3 == 0).all(0), sample[:64, :64], np.nan)
    with pytest.raises(ValueError, match="window of noise_sample"):
        large_scale_damage(noisy, truth, noise=1.0, noise_sample=sparse)
