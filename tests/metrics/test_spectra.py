"""Tests of tdrdenoise.metrics.spectra: power spectra and the deviation frequency."""
import numpy as np
import pytest
from astropy import units as u
from scipy import ndimage

from tdrdenoise.metrics import deviation_frequency, power_spectrum


@pytest.mark.parametrize("window", [None, "hann"])
def test_white_noise_spectrum_is_flat(window):
    sigma = 2.0
    noise = np.random.default_rng(3).normal(0, sigma, (256, 256)) * u.G
    freq, power = power_spectrum(noise, window=window)
    assert freq.unit == u.pix ** -1 and power.unit == u.G ** 2
    assert freq[0].value == pytest.approx(1 / 256) and freq[-1].value == pytest.approx(0.5)
    assert np.all(np.diff(freq.value) > 0)
    # flat at sigma**2: the same mean power at low and at high frequencies
    f = freq.value
    low = np.mean(power.value[(f > 0.05) & (f <= 0.25)])
    high = np.mean(power.value[f > 0.25])
    assert low == pytest.approx(sigma ** 2, rel=0.05)
    assert high == pytest.approx(sigma ** 2, rel=0.05)


def test_smooth_image_spectrum_falls(field):
    noise = np.random.default_rng(4).normal(size=(128, 128))
    freq, power = power_spectrum(ndimage.gaussian_filter(noise, 2.0))
    assert power[-1] < 1e-3 * power[0]
    with pytest.raises(ValueError, match="window"):
        power_spectrum(noise, window="bartlett")


def test_power_spectrum_ignores_nan():
    noise = np.random.default_rng(5).normal(size=(128, 128))
    holed = noise.copy()
    holed[:5, :5] = np.nan
    _, p_full = power_spectrum(noise)
    _, p_holed = power_spectrum(holed)
    assert np.all(np.isfinite(p_holed))
    np.testing.assert_allclose(p_holed, p_full, rtol=0.05)


def lowpass(image, cutoff):
    """``image`` with every Fourier mode above ``cutoff`` pix^-1 removed."""
    ny, nx = image.shape
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(ny), np.fft.fftfreq(nx), indexing="ij"))
    return np.fft.ifft2(np.fft.fft2(image) * (k <= cutoff)).real


@pytest.mark.parametrize("cutoff", [0.1, 0.28])
def test_deviation_frequency_of_lowpass(cutoff):
    noise = np.random.default_rng(6).normal(size=(200, 200))
    f = deviation_frequency(noise, lowpass(noise, cutoff))
    assert f.unit == u.pix ** -1
    assert f.value == pytest.approx(cutoff, abs=0.011)


def test_deviation_frequency_never():
    noise = np.random.default_rng(7).normal(size=(100, 100))
    assert deviation_frequency(noise, noise).value == 0.5
    assert deviation_frequency(noise, 1.1 * noise).value == 0.5  # 0.04 dex < 0.1
    assert deviation_frequency(noise, 1.1 * noise, tolerance=0.03).value < 0.05
    holed = noise.copy()
    holed[10:20, 10:20] = np.nan
    assert deviation_frequency(holed, noise).value == 0.5  # filled the same way
    with pytest.raises(ValueError, match="tolerance"):
        deviation_frequency(noise, noise, tolerance=0)
