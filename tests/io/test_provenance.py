"""Tests of tdrdenoise.io.provenance: the header cards of tdr_denoise, restore_file and
denoise_files, written in one place."""
import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData

from tdrdenoise import tdr_denoise
from tdrdenoise.io.provenance import (DENOISE, FRACTION, RESTORE, cards, check_add_keyword,
                                      denoise_record, header_name, restore_record,
                                      restored_fraction, write_cards)
from tdrdenoise.batch import denoise_files
from tdrdenoise.denoise import FRACTION_CARD, RECORD_CARD
from tdrdenoise.restore_files import RESTORE_CARD


def test_keys_are_defined_once():
    assert RECORD_CARD == ("TDRDENOI", "tdr_denoise") == DENOISE
    assert FRACTION_CARD == ("TDRRFRAC", "tdr_restored_fraction") == FRACTION
    assert RESTORE_CARD == ("TDRRESTO", "tdr_restore") == RESTORE


_FRACTION = ("TDRRFRAC", 0.333333, "tdr_restored_fraction")


@pytest.mark.parametrize("add_keyword, expected", [
    (True, [("TDRDENOI", "rec", "tdr_denoise"), _FRACTION]),
    (False, []),
    (None, []),
    ("DENOISED", [("DENOISED", "rec", None), _FRACTION]),
    ({"A": 1, "B": "x"}, [("A", 1, None), ("B", "x", None), _FRACTION]),
    (fits.Card("PIPESTEP", "tdr", "c"), [("PIPESTEP", "tdr", None), _FRACTION]),
])
def test_cards_as_ccdproc_add_keyword(add_keyword, expected):
    check_add_keyword(add_keyword)
    assert cards(add_keyword, "rec", 1 / 3) == expected


def test_cards_of_a_ccdproc_keyword():
    ccdproc = pytest.importorskip("ccdproc")
    keyword = ccdproc.Keyword("calstat", value="d")
    assert cards(keyword, "rec", 0.0)[0] == ("calstat", "d", None)


@pytest.mark.parametrize("bad, error", [(3, TypeError), (["TDR"], TypeError),
                                        ("", ValueError), ("  ", ValueError)])
def test_bad_add_keyword_is_refused(bad, error):
    with pytest.raises(error, match="add_keyword"):
        check_add_keyword(bad)
    with pytest.raises(error, match="add_keyword"):
        cards(bad, "rec", 0.0)


def test_restore_cards_use_the_restore_key():
    assert cards(True, "rec", 0.5, step=RESTORE)[0] == ("TDRRESTO", "rec", "tdr_restore")


def test_records_keep_their_format():
    """The records are byte for byte those written before they moved here."""
    common = dict(R="0.2 G", model_name="m.tdr", fingerprint="0123456789ab",
                  noise="noise=white, shuffle=1, bright=20sigma")
    student = denoise_record(method="student", n_predictions=None, fine_tune_steps=None,
                             seed=None, calibrate=True, refine=True, fill="initial",
                             **common)
    assert student == ("R=0.2 G, model=m.tdr, fingerprint=0123456789ab, method=student, "
                       "noise=white, shuffle=1, bright=20sigma")
    ensemble = denoise_record(method="ensemble", n_predictions=16, fine_tune_steps=10,
                              seed=3, calibrate=False, refine=False, fill="ambient",
                              **common)
    assert ensemble == ("R=0.2 G, model=m.tdr, fingerprint=0123456789ab, n_predictions=16, "
                        "fine_tune_steps=10, seed=3, calibrate=False, refine=False, "
                        "fill=ambient, noise=white, shuffle=1, bright=20sigma")
    assert restore_record(R="3sigma of the input uncertainty", fill="ambient",
                          denoised="/a/dé.fits", initial="b.fits") == (
        "R=3sigma of the input uncertainty, fill=ambient, denoised=d\\xe9.fits, "
        "input=b.fits")


def test_write_cards_in_a_fits_header_and_a_dict():
    header = fits.Header({"OBJECT": "x"})
    write_cards(header, cards(True, "R=inf", 0.0) + [("LONGKEYNAME", 1, None)])
    assert [str(c).rstrip() for c in header.cards] == [
        "OBJECT  = 'x       '",
        "HIERARCH TDR_DENOISE = 'TDRDENOI' / Shortened name for tdrdenoise step",
        "TDRDENOI= 'R=inf   '",
        "HIERARCH TDR_RESTORED_FRACTION = 'TDRRFRAC' / Shortened name for tdrdenoise step",
        "TDRRFRAC=                  0.0",
        "HIERARCH LONGKEYNAME = 1"]
    meta = {"history": "old"}
    write_cards(meta, cards("DENOISED", "R=inf", 0.5), history=True)
    assert meta == {"history": "old\nDENOISED: R=inf\ntdr_restored_fraction: 0.5",
                    "DENOISED": "R=inf", "TDRRFRAC": 0.5}


def test_restored_fraction():
    assert restored_fraction(np.array([True, False, False]), np.array([True, True, False])) \
        == 0.5
    assert restored_fraction(np.zeros(2, bool), np.zeros(2, bool)) == 0.0


def test_tdr_denoise_header(noisy, unit_model):
    """The cards tdr_denoise writes in a FITS header, in order."""
    ccd = CCDData(noisy, unit="G", meta=fits.Header({"OBJECT": "x"}))
    out = tdr_denoise(ccd, unit_model, R=0.2 * u.G, fill="ambient", calibrate=False,
                      progress=False)
    keys = list(out.meta)
    assert keys == ["OBJECT", "TDR_DENOISE", "TDRDENOI", "TDR_RESTORED_FRACTION", "TDRRFRAC"]
    assert out.meta["TDRDENOI"] == (
        f"R=0.2 G, model={header_name(unit_model.path)}, "
        f"fingerprint={unit_model.fingerprint}, method=student, "
        "calibrate=False, fill=ambient, noise=white, shuffle=1, bright=20sigma")


@pytest.mark.parametrize("add_keyword", [False, "DENOISED"])
def test_denoise_files_add_keyword(tmp_path, noisy, unit_model, add_keyword):
    path = tmp_path / "in.fits"
    CCDData(noisy, unit="G").write(path)
    table = denoise_files([path], unit_model, output_dir=tmp_path / "out", R=0.2 * u.G,
                          add_keyword=add_keyword, progress=False)
    assert table["status"].tolist() == ["done"]
    header = fits.getheader(tmp_path / "out" / "in_tdr.fits")
    assert "TDRDENOI" not in header
    if add_keyword:
        assert header["DENOISED"].startswith("R=0.2 G")
        assert table["restored_fraction"][0] == header["TDRRFRAC"]
    else:
        assert "TDRRFRAC" not in header and np.isnan(table["restored_fraction"][0])


def test_denoise_files_refuses_a_bad_add_keyword_before_any_work(tmp_path, unit_model):
    with pytest.raises(TypeError, match="add_keyword"):
        denoise_files([tmp_path / "missing.fits"], unit_model, add_keyword=3)
