"""tdrdenoise with sunpy Maps: same class back, metadata kept, off-limb NaN untouched."""
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits

sunpy_map = pytest.importorskip("sunpy.map")

from astropy.coordinates import SkyCoord  # noqa: E402
from sunpy.coordinates import frames  # noqa: E402

from tdrdenoise import TDRModel, tdr_denoise  # noqa: E402
from tdrdenoise.cli import main  # noqa: E402
from tdrdenoise.io import read_image, write_image  # noqa: E402

FAST = dict(fine_tune_steps=1, n_predictions=2, seed=0, progress=False)
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MDI = SHARED_DATA / "mdi" / "mdi.fd_m_96m_lev182.20101015_000000_TAI.data.fits"


def hmi_map(seed=0, shape=(48, 48)):
    """A small HMI-like magnetogram: noise of 10 G, a 'sunspot', NaN off the limb."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    data = rng.normal(0, 10, shape) - 800 * np.exp(-((xx - 20) ** 2 + (yy - 26) ** 2) / 8.0)
    data[np.hypot(yy - shape[0] / 2 + 0.5, xx - shape[1] / 2 + 0.5) > 0.55 * shape[0]] = np.nan
    ref = SkyCoord(0 * u.arcsec, 0 * u.arcsec, obstime="2024-05-10T12:00:00",
                   observer="earth", frame=frames.Helioprojective)
    header = sunpy_map.make_fitswcs_header(
        data, ref, scale=[20, 20] * u.arcsec / u.pix, unit=u.G, telescope="SDO/HMI",
        instrument="HMI", wavelength=6173 * u.AA)
    header["content"] = "MAGNETOGRAM"
    return sunpy_map.Map(data, header)


@pytest.fixture(scope="module")
def model():
    return TDRModel(patch_size=32, batch_size=2, device="cpu").fit(
        hmi_map(1), steps=3, seed=0, progress=False)


def test_fit_on_map_ignores_off_limb(model):
    m = hmi_map(1)
    assert np.isnan(m.data).any()
    assert model.unit == u.G
    assert np.isfinite(model.normalization["median"])
    assert np.isfinite(model.normalization["scale"])
    assert np.isfinite(model.history[-1]["final_loss"])


def test_denoise_map(model):
    m = hmi_map(2)
    off_limb = np.isnan(m.data)
    meta_before = dict(m.meta)
    out, restored = tdr_denoise(m, model, R=5 * u.G, return_restored_mask=True, **FAST)
    assert type(out) is type(m)
    assert type(out).__name__ == "HMIMap"
    assert out.unit == u.G
    assert out.date == m.date and out.wavelength == m.wavelength
    assert out.reference_coordinate == m.reference_coordinate
    for key, value in meta_before.items():
        if key != "history":
            assert out.meta[key] == value, key
    assert "tdr_denoise: R=5 G" in out.meta["history"]
    assert out.meta["tdrdenoi"].startswith("R=5 G")
    # off-limb NaN stay NaN and are masked; restored pixels are masked and unchanged
    assert np.isnan(out.data[off_limb]).all()
    assert np.isfinite(out.data[~off_limb]).all()
    assert not restored[off_limb].any()
    np.testing.assert_array_equal(out.mask, off_limb | restored)
    np.testing.assert_array_equal(out.data[restored], m.data[restored])
    assert out.meta["tdrrfrac"] == pytest.approx(restored.sum() / (~off_limb).sum(), abs=1e-6)
    # the sunspot is bright extended structure: held out of the network, the Wiener
    # refinement denoises it, and R applies to it as to every other pixel
    spot = (slice(22, 31), slice(16, 25))
    change = np.abs(out.data[spot] - m.data[spot])
    assert (change[~restored[spot]] <= 5).all() and change.max() > 0
    np.testing.assert_array_equal(out.mask[spot], restored[spot])
    # the input Map is unchanged
    assert m.mask is None and dict(m.meta) == meta_before


def test_map_roundtrip_through_files(model, tmp_path):
    out = tdr_denoise(hmi_map(3), model, R=5 * u.G, **FAST)
    path = write_image(out, tmp_path / "hmi_tdr.fits")
    back = read_image(path)
    assert back.unit == u.G
    np.testing.assert_array_equal(back.mask, out.mask)
    # sunpy reads the data HDU back as a Map of the same class
    again = sunpy_map.Map(path, hdus=0)
    assert type(again) is type(out)
    np.testing.assert_array_equal(np.isnan(again.data), np.isnan(out.data))
    assert "TDRDENOI" in again.meta or "tdrdenoi" in again.meta


def test_compressed_hmi_file_through_sunpy_and_cli(model, tmp_path):
    """HMI files keep their data in a tile-compressed HDU 1."""
    m = hmi_map(4)
    header = m.fits_header
    path = tmp_path / "hmi.m_45s.20240510_120000_TAI.2.magnetogram.fits"
    fits.HDUList([fits.PrimaryHDU(),
                  fits.CompImageHDU(m.data.astype(np.float32), header)]).writeto(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sunpy's notes on the compressed header
        read = sunpy_map.Map(path)
    assert type(read).__name__ == "HMIMap" and read.unit == u.G
    out = tdr_denoise(read, model, R=5 * u.G, **FAST)
    assert type(out) is type(read)

    model_path = tmp_path / "hmi.tdr"
    model.save(model_path)
    code = main(["denoise", "--model", str(model_path), str(path), "--R", "5G",
                 "--output-dir", str(tmp_path / "out"), "--fine-tune-steps", "1",
                 "--n-predictions", "2", "--device", "cpu", "--seed", "0", "--quiet"])
    assert code == 0
    result = read_image(tmp_path / "out" / (path.stem + "_tdr.fits"))
    assert result.unit == u.G and result.meta["TELESCOP"] == "SDO/HMI"
    assert np.isnan(result.data[np.isnan(m.data)]).all()


@pytest.mark.data
def test_mdi_cutout():
    """A 64 x 64 cut-out of the real MDI magnetogram at the limb."""
    if not MDI.is_file():
        pytest.skip(f"{MDI} not found")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = sunpy_map.Map(MDI)
    cut = full.submap([0, 480] * u.pix, top_right=[63, 543] * u.pix)
    off_limb = np.isnan(cut.data)
    assert 0.1 < off_limb.mean() < 0.9
    model = TDRModel(patch_size=32, batch_size=2, device="cpu").fit(
        cut, steps=2, seed=0, progress=False)
    out = tdr_denoise(cut, model, R=5 * u.G, **FAST)
    assert type(out) is type(full) and out.unit == u.G
    assert np.isnan(out.data[off_limb]).all() and out.mask[off_limb].all()
    assert out.meta["t_rec"] == cut.meta["t_rec"]
