"""Tests of tdrdenoise.io: finding, reading and atomically writing FITS images."""
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData, NDData, StdDevUncertainty
from astropy.wcs import WCS

from tdrdenoise import TDRUserWarning
from tdrdenoise.io import output_path, parse_unit, read_image, write_image

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
MDI = SHARED_DATA / "mdi" / "mdi.fd_m_96m_lev182.20101015_000000_TAI.data.fits"


def solar_header(shape, bunit="Gauss"):
    """A minimal helioprojective header, as HMI/MDI files have."""
    return fits.Header({
        "CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CUNIT1": "arcsec", "CUNIT2": "arcsec",
        "CDELT1": 0.504, "CDELT2": 0.504, "CRPIX1": shape[1] / 2, "CRPIX2": shape[0] / 2,
        "CRVAL1": 0.0, "CRVAL2": 0.0, "DATE-OBS": "2020-01-01T00:00:00",
        "TELESCOP": "SDO/HMI", "INSTRUME": "HMI_COMBINED", "BUNIT": bunit,
        "QUALITY": 0})


def image(shape=(24, 32), seed=0):
    data = np.random.default_rng(seed).normal(0, 10, shape).astype(np.float32)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    data[np.hypot(yy - shape[0] / 2, xx - shape[1] / 2) > 0.6 * min(shape)] = np.nan
    return data


@pytest.fixture
def compressed(tmp_path):
    """An HMI-like file: empty primary HDU, tile-compressed image in HDU 1."""
    data = image()
    path = tmp_path / "hmi.m_45s.fits"
    fits.HDUList([fits.PrimaryHDU(header=fits.Header({"ORIGIN": "SDO/JSOC"})),
                  fits.CompImageHDU(data, solar_header(data.shape))]).writeto(path)
    return path, data


def test_read_primary(tmp_path):
    data = image()
    header = fits.Header({"BUNIT": "count / s", "OBJECT": "NGC 1365", "EXPTIME": 10.0})
    header.add_history("flat-fielded")
    path = tmp_path / "hst.fits"
    fits.PrimaryHDU(data, header).writeto(path)
    ccd = read_image(path)
    assert isinstance(ccd, CCDData)
    assert ccd.unit == u.ct / u.s
    assert ccd.meta["OBJECT"] == "NGC 1365" and ccd.meta["EXPTIME"] == 10.0
    assert "flat-fielded" in str(ccd.meta["HISTORY"])
    assert "BITPIX" not in ccd.meta and "NAXIS1" not in ccd.meta
    np.testing.assert_array_equal(ccd.data, data)
    assert ccd.data.dtype.isnative
    assert ccd.mask is None and ccd.uncertainty is None


def test_read_compressed_hdu1(compressed):
    path, data = compressed
    ccd = read_image(path)
    assert ccd.shape == data.shape
    assert ccd.unit == u.G
    assert ccd.meta["TELESCOP"] == "SDO/HMI"
    assert ccd.meta["ORIGIN"] == "SDO/JSOC"  # primary cards are kept too
    assert ccd.meta.get("EXTNAME") != "COMPRESSED_IMAGE"
    assert "ZIMAGE" not in ccd.meta and "ZBITPIX" not in ccd.meta
    np.testing.assert_array_equal(np.isnan(ccd.data), np.isnan(data))
    ok = ~np.isnan(data)
    np.testing.assert_allclose(ccd.data[ok], data[ok], atol=0.5)  # lossy quantisation
    assert ccd.wcs is not None and ccd.wcs.wcs.ctype[0] == "HPLN-TAN"
    # explicit hdu, by index and by name
    assert read_image(path, hdu=1).shape == data.shape
    assert read_image(path, hdu="COMPRESSED_IMAGE").shape == data.shape


def test_read_errors(tmp_path, compressed):
    path, _ = compressed
    with pytest.raises(ValueError, match="not a 2-D image"):
        read_image(path, hdu=0)
    with pytest.raises(ValueError, match="no HDU 5"):
        read_image(path, hdu=5)
    cube = tmp_path / "cube.fits"
    fits.PrimaryHDU(np.zeros((3, 8, 8))).writeto(cube)
    with pytest.raises(ValueError, match="no 2-D image"):
        read_image(cube)
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "missing.fits")
    junk = tmp_path / "junk.fits"
    junk.write_text("this is not FITS")
    with pytest.raises(OSError, match="not a readable FITS"):
        read_image(junk)


def test_units(tmp_path):
    path = tmp_path / "odd.fits"
    fits.PrimaryHDU(np.ones((8, 8)), fits.Header({"BUNIT": "furlongs"})).writeto(path)
    with pytest.warns(TDRUserWarning, match="dimensionless"):
        ccd = read_image(path)
    assert ccd.unit == u.dimensionless_unscaled
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(path, unit="adu").unit == u.adu
    bare = tmp_path / "bare.fits"
    fits.PrimaryHDU(np.ones((8, 8))).writeto(bare)
    with pytest.warns(TDRUserWarning, match="no BUNIT"):
        assert read_image(bare).unit == u.dimensionless_unscaled
    with pytest.raises(ValueError, match="unit"):
        read_image(bare, unit="not-a-unit")


@pytest.mark.parametrize("text, unit", [
    ("Gauss", u.G), ("gauss", u.G), ("G", u.G), ("count / s", u.ct / u.s),
    ("counts/s", u.ct / u.s), ("ADU", u.adu), ("electrons", u.electron),
    ("e-/s", u.electron / u.s), ("DN/s", u.DN / u.s), ("Mx/cm^2", u.Mx / u.cm ** 2)])
def test_parse_unit(text, unit):
    assert parse_unit(text) == unit


def test_write_roundtrip(tmp_path):
    data = image()
    mask = np.isnan(data)
    mask[2, 3] = True
    header = solar_header(data.shape)
    header["TDRDENOI"] = "R=5 G, " + "x" * 100  # a long card, as tdr_denoise writes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FITSFixedWarning: MJD-OBS set from DATE-OBS
        wcs = WCS(header)
    ccd = CCDData(data, unit="G", mask=mask, meta=header, wcs=wcs,
                  uncertainty=StdDevUncertainty(np.full(data.shape, 2.0, np.float32)))
    out = tmp_path / "out" / "frame_tdr.fits"
    assert write_image(ccd, out) == os.fspath(out)
    assert sorted(os.listdir(out.parent)) == ["frame_tdr.fits"]  # no temporary left
    umask = os.umask(0o022)
    os.umask(umask)
    assert os.stat(out).st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0o600
    with fits.open(out) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "MASK", "UNCERT"]
        for key in ("TELESCOP", "INSTRUME", "DATE-OBS", "QUALITY", "TDRDENOI"):
            assert hdul[0].header[key] == header[key]
    for back in (read_image(out), CCDData.read(out)):
        assert back.unit == u.G
        np.testing.assert_array_equal(back.mask, mask)
        np.testing.assert_array_equal(back.uncertainty.array, 2.0)
        np.testing.assert_array_equal(np.isnan(back.data), np.isnan(data))


def test_write_checksums(tmp_path):
    ccd = CCDData(image(), unit="G", mask=np.zeros((24, 32), bool),
                  uncertainty=StdDevUncertainty(np.ones((24, 32))))
    out = write_image(ccd, tmp_path / "out.fits")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a bad checksum is an AstropyUserWarning
        with fits.open(out, checksum=True) as hdul:
            for hdu in hdul:
                assert hdu.header["CHECKSUM"] and hdu.header["DATASUM"]
                assert hdu.verify_checksum() == 1 and hdu.verify_datasum() == 1
    # a damaged copy is detected
    raw = bytearray(open(out, "rb").read())
    raw[2880 + 100] ^= 0xFF  # one byte of the primary data
    damaged = tmp_path / "damaged.fits"
    damaged.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="Datasum verification failed"):
        with fits.open(damaged, checksum=True) as hdul:
            assert hdul[0].verify_datasum() == 0
    # the cards of an input are not copied: a rewrite gets fresh ones
    again = write_image(read_image(out), tmp_path / "again.fits")
    with fits.open(again) as hdul:
        assert hdul[0].verify_checksum() == 1


def test_write_never_clobbers(tmp_path):
    ccd = CCDData(np.ones((8, 8)), unit="adu")
    path = tmp_path / "a.fits"
    write_image(ccd, path)
    with pytest.raises(FileExistsError, match="overwrite"):
        write_image(ccd, path)
    write_image(CCDData(np.zeros((8, 8)), unit="adu"), path, overwrite=True)
    assert read_image(path).data.sum() == 0
    # the file an image was read from is protected even with overwrite=True
    with pytest.raises(ValueError, match="input file"):
        write_image(ccd, path, overwrite=True, inputs=[path])
    with pytest.raises(TypeError, match="CCDData"):
        write_image(np.ones((8, 8)), tmp_path / "b.fits")
    assert sorted(os.listdir(tmp_path)) == ["a.fits"]


def test_write_failure_leaves_nothing(tmp_path, monkeypatch):
    ccd = CCDData(np.ones((8, 8)), unit="adu")

    def broken(self, fileobj, **kwargs):
        fileobj.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(fits.HDUList, "writeto", broken)
    with pytest.raises(OSError, match="disk full"):
        write_image(ccd, tmp_path / "a.fits")
    assert os.listdir(tmp_path) == []


def test_write_nddata(tmp_path):
    nd = NDData(np.ones((8, 8)), unit="ct", meta={"OBJECT": "M31"})
    write_image(nd, tmp_path / "nd.fits")
    back = read_image(tmp_path / "nd.fits")
    assert back.unit == u.ct and back.meta["OBJECT"] == "M31"


@pytest.mark.parametrize("name, folder, expected", [
    ("/d/obs1.fits", None, "/d/obs1_tdr.fits"),
    ("/d/hmi.m_45s.2024.fits.gz", "out", "out/hmi.m_45s.2024_tdr.fits"),
    ("/d/frame.FITS", "o", "o/frame_tdr.fits"),
    ("/d/raw", "o", "o/raw_tdr.fits")])
def test_output_path(name, folder, expected):
    assert output_path(name, folder) == expected


@pytest.mark.data
def test_read_mdi():
    if not MDI.is_file():
        pytest.skip(f"{MDI} not found")
    ccd = read_image(MDI)
    assert ccd.shape == (1024, 1024)
    assert ccd.unit == u.G
    assert 0.27 < np.isnan(ccd.data).mean() < 0.30
    assert ccd.meta["TELESCOP"] == "SOHO"
    assert ccd.wcs.wcs.ctype[0] == "HPLN-TAN"
