"""Tests of the synthetic data (tdrdenoise.datasets) and the demo (tdrdenoise.demo)."""
import numpy as np
import pytest

from tdrdenoise.datasets import make_granulation
from tdrdenoise.demo import run_demo

TINY = dict(steps=2, shape=(48, 48), device="cpu", progress=False, fine_tune_steps=1,
            n_predictions=2)


def test_granulation_known_truth():
    noisy, truth = make_granulation((64, 48), seed=3, noise=0.2)
    assert noisy.shape == truth.shape == (64, 48)
    assert truth.min() == 0.0 and truth.max() == 1.0
    assert abs((noisy - truth).std() - 0.2) < 0.02
    assert abs((noisy - truth).mean()) < 0.02
    # deterministic; another seed gives another scene
    again, truth2 = make_granulation((64, 48), seed=3, noise=0.2)
    np.testing.assert_array_equal(noisy, again)
    np.testing.assert_array_equal(truth, truth2)
    other = make_granulation((64, 48), seed=4, noise=0.2)[1]
    assert np.abs(other - truth).mean() > 0.05
    # noise=0 gives the truth itself
    clean, truth3 = make_granulation((32, 32), seed=0, noise=0)
    np.testing.assert_array_equal(clean, truth3)


def test_granulation_is_cellular():
    """Bright granules and dark lanes: structure at the granule scale, not pixel noise."""
    _, truth = make_granulation((128, 128), seed=0, noise=0, granule_size=10)
    centred = truth - truth.mean()
    spectrum = np.abs(np.fft.fft2(centred)) ** 2
    freq = np.hypot(*np.meshgrid(np.fft.fftfreq(128), np.fft.fftfreq(128), indexing="ij"))
    low = spectrum[(freq > 0) & (freq < 0.25)].sum()
    assert low / spectrum.sum() > 0.9
    assert truth.std() > 0.15  # contrast between granules and lanes


def test_bright_points():
    _, plain = make_granulation((64, 64), seed=1, noise=0)
    _, points = make_granulation((64, 64), seed=1, noise=0, bright_points=5)
    changed = np.abs(points - plain) > 0.2
    assert 5 <= changed.sum() < 100


@pytest.mark.parametrize("kwargs", [dict(shape=(1, 10)), dict(shape=(10,)),
                                    dict(noise=-1), dict(granule_size=0)])
def test_granulation_errors(kwargs):
    with pytest.raises(ValueError):
        make_granulation(**kwargs)


def test_run_demo(tmp_path, capsys):
    result = run_demo(output_dir=tmp_path, **TINY)
    out = capsys.readouterr().out
    for text in ("train on image #1", "denoise image #2", "restore", "PSNR",
                 "noisy input", "Choosing R"):
        assert text in out
    assert result["shape"] == (48, 48) and result["steps"] == 2
    assert result["R"] == pytest.approx(0.4)
    for key in ("psnr_noisy", "psnr_denoised", "psnr_restored"):
        assert np.isfinite(result[key])
    assert 0 <= result["restored_fraction"] <= 1
    assert len(result["sweep"]) == 6 and result["sweep"]["restored_percent"][0] == 0
    if result["figure"] is not None:
        assert (tmp_path / "tdrdenoise_demo.png").stat().st_size > 0
    assert result["model"].is_fitted


def test_run_demo_quiet(capsys):
    result = run_demo(output_dir=None, quiet=True, R=0.05, **TINY)
    assert capsys.readouterr().out == ""
    assert result["figure"] is None and result["R"] == 0.05
    with pytest.raises(ValueError, match="steps"):
        run_demo(steps=0, output_dir=None, quiet=True)


@pytest.mark.slow
def test_demo_default_improves_psnr(tmp_path):
    """The default demo (about a minute on 2 cores) gains well over 5 dB."""
    result = run_demo(output_dir=tmp_path, progress=False, quiet=True, device="cpu")
    assert result["psnr_denoised"] > result["psnr_noisy"] + 5
    assert result["psnr_restored"] > result["psnr_noisy"] + 5
