import numpy as np
import pytest
from astropy import units as u

from tdrdenoise import restore
from tdrdenoise.restore import ambient_values


@pytest.fixture
def pair():
    rng = np.random.default_rng(1)
    initial = rng.normal(0, 10, (50, 40))
    denoised = initial + rng.normal(0, 5, initial.shape)
    return initial, denoised


@pytest.mark.parametrize("R", [0.0, 0.5, 3.0, 7.5, 20.0])
def test_invariants(pair, R):
    initial, denoised = pair
    out, mask = restore(initial, denoised, R)
    assert np.all(np.abs(out - initial) <= R)
    np.testing.assert_array_equal(out[mask], initial[mask])
    np.testing.assert_array_equal(out[~mask], denoised[~mask])
    np.testing.assert_array_equal(mask, np.abs(denoised - initial) > R)


def test_zero_returns_input(pair):
    initial, denoised = pair
    out, _ = restore(initial, denoised, 0)
    np.testing.assert_array_equal(out, initial)


def test_inf_restores_nothing(pair):
    initial, denoised = pair
    out, mask = restore(initial, denoised, np.inf)
    np.testing.assert_array_equal(out, denoised)
    assert not mask.any()


def test_inputs_not_modified(pair):
    initial, denoised = pair
    i0, d0 = initial.copy(), denoised.copy()
    restore(initial, denoised, 2.0)
    np.testing.assert_array_equal(initial, i0)
    np.testing.assert_array_equal(denoised, d0)


def test_quantity_threshold_converted():
    initial = np.array([0.0, 0.0]) * u.G
    denoised = np.array([0.5, 2.0]) * u.G
    out, mask = restore(initial, denoised, 0.1 * u.mT)  # 1 G
    assert out.unit == u.G
    np.testing.assert_array_equal(mask, [False, True])
    np.testing.assert_array_equal(out.value, [0.5, 0.0])


def test_denoised_in_other_unit():
    initial = np.array([0.0, 0.0]) * u.G
    denoised = np.array([0.05, 0.5]) * u.mT  # 0.5 G and 5 G
    out, mask = restore(initial, denoised, 1 * u.G)
    np.testing.assert_allclose(out.value, [0.5, 0.0])


def test_nan_pixels_take_initial():
    initial = np.array([np.nan, 1.0, 2.0])
    denoised = np.array([0.0, np.nan, 2.1])
    out, mask = restore(initial, denoised, 1.0)
    np.testing.assert_array_equal(mask, [True, True, False])
    assert np.isnan(out[0]) and out[1] == 1.0 and out[2] == 2.1


@pytest.mark.parametrize("R", [-1.0, np.nan, -0.0001 * u.G])
def test_bad_threshold(R):
    with pytest.raises(ValueError, match="non-negative"):
        restore(np.zeros(3) * u.G, np.ones(3) * u.G, R)


def test_threshold_unit_mismatch():
    with pytest.raises(u.UnitsError, match="cannot be converted"):
        restore(np.zeros(3) * u.G, np.ones(3) * u.G, 1 * u.s)
    with pytest.raises(u.UnitsError, match="has a unit but the image has none"):
        restore(np.zeros(3), np.ones(3), 1 * u.G)


def test_threshold_not_a_number():
    with pytest.raises(TypeError, match="R must be a number"):
        restore(np.zeros(3), np.ones(3), "five")


# ------------------------------------------------------------------ per-pixel R
@pytest.mark.parametrize("R", [np.array([1.0, 2.0]), [1.0, 2.0] * u.G, [[1.0, 2.0]]])
def test_threshold_of_wrong_shape(R):
    with pytest.raises(ValueError, match=r"R has shape \(.*\) but the image has shape "
                                         r"\(3,\); give R as a scalar or as an array of "
                                         r"shape \(3,\)"):
        restore(np.zeros(3) * u.G, np.ones(3) * u.G, R)


def test_per_pixel_threshold(pair):
    initial, denoised = pair
    R = np.random.default_rng(2).uniform(0, 10, initial.shape)
    out, mask = restore(initial, denoised, R)
    np.testing.assert_array_equal(mask, np.abs(denoised - initial) > R)
    np.testing.assert_array_equal(out, np.where(mask, initial, denoised))
    # the same as a scalar wherever R is that scalar
    out5, mask5 = restore(initial, denoised, np.full(initial.shape, 5.0))
    ref5, refmask5 = restore(initial, denoised, 5.0)
    np.testing.assert_array_equal(out5, ref5)
    np.testing.assert_array_equal(mask5, refmask5)


def test_per_pixel_quantity_threshold_converted():
    initial = np.zeros((2, 2)) * u.G
    denoised = np.full((2, 2), 3.0) * u.G
    R = np.array([[0.1, 0.5], [0.2, 0.25]]) * u.mT  # 1, 5, 2, 2.5 G
    out, mask = restore(initial, denoised, R)
    np.testing.assert_array_equal(mask, [[True, False], [True, True]])
    np.testing.assert_array_equal(out.value, [[0.0, 3.0], [0.0, 0.0]])
    with pytest.raises(u.UnitsError, match="cannot be converted to the image unit 'G'"):
        restore(initial, denoised, np.ones((2, 2)) * u.s)


def test_per_pixel_threshold_negative_and_nan():
    with pytest.raises(ValueError, match="zero or positive at every pixel; 1 of its 3"):
        restore(np.zeros(3), np.ones(3), np.array([1.0, -1.0, 2.0]))
    out, mask = restore(np.zeros(3), np.ones(3), np.array([np.nan, 2.0, np.inf]))
    np.testing.assert_array_equal(mask, [True, False, False])  # NaN restores its pixel
    np.testing.assert_array_equal(out, [0.0, 1.0, 1.0])


def test_per_pixel_zero_is_exact(pair):
    initial, denoised = pair
    out, _ = restore(initial.astype(np.float32), denoised, np.zeros(initial.shape))
    np.testing.assert_array_equal(out, initial.astype(np.float32))


def test_noise_multiple_needs_an_image():
    from tdrdenoise.restore import NoiseMultiple
    with pytest.raises(TypeError, match="needs the image's noise"):
        restore(np.zeros(3), np.ones(3), NoiseMultiple(3))


# ------------------------------------------------------------------ fill="ambient"
def test_ambient_is_the_mean_of_unrestored_neighbours():
    initial = np.zeros((7, 7))
    denoised = np.arange(49.0).reshape(7, 7)
    initial[3, 3] = 1000.0  # a cosmic ray the denoiser removed
    denoised[3, 3] = 0.0
    initial[1, 1] = denoised[1, 1] + 150.0  # a second restored pixel inside the window
    out, mask = restore(initial, denoised, 100.0, fill="ambient")
    assert mask.sum() == 2 and mask[3, 3] and mask[1, 1]
    window = denoised[1:6, 1:6]
    usable = ~mask[1:6, 1:6]
    assert out[3, 3] == pytest.approx(window[usable].mean())
    np.testing.assert_array_equal(out[~mask], denoised[~mask])


def test_ambient_window_clipped_at_edges_and_fallback():
    initial = np.zeros((6, 6))
    denoised = np.ones((6, 6))
    out, mask = restore(initial, denoised, 0.5, fill="ambient")
    # every pixel restored: no unrestored neighbour, the initial value comes back
    assert mask.all()
    np.testing.assert_array_equal(out, initial)
    denoised[0, 0] = 0.2  # unrestored corner: the only usable pixel of its neighbours
    out, mask = restore(initial, denoised, 0.5, fill="ambient")
    assert out[2, 2] == pytest.approx(0.2) and out[3, 3] == 0.0


def test_ambient_keeps_nan_pixels_and_skips_them():
    initial = np.zeros((5, 5))
    denoised = np.full((5, 5), 0.1)
    denoised[0, :] = np.nan
    initial[2, 2] = 10.0
    initial[4, 4] = np.nan
    out, mask = restore(initial, denoised, 1.0, fill="ambient")
    assert np.all(out[0] == 0.0)  # NaN denoised: the initial value
    assert np.isnan(out[4, 4])  # NaN initial stays NaN
    assert out[2, 2] == pytest.approx(0.1)


def test_ambient_quantity_and_inputs_not_modified(pair):
    initial, denoised = pair
    i0, d0 = initial.copy(), denoised.copy()
    out, mask = restore(initial * u.G, denoised * u.G, 5 * u.G, fill="ambient")
    assert out.unit == u.G and mask.any()
    assert np.all(np.abs(out.value[mask] - initial[mask]) > 0)
    np.testing.assert_array_equal(initial, i0)
    np.testing.assert_array_equal(denoised, d0)


def test_ambient_zero_not_the_input_initial_zero_is(pair):
    initial, denoised = pair
    denoised = np.where(np.arange(initial.shape[1]) % 2 == 0, initial, denoised)
    out, mask = restore(initial, denoised, 0, fill="ambient")
    np.testing.assert_array_equal(mask, denoised != initial)
    assert not np.array_equal(out, initial)
    np.testing.assert_array_equal(out[mask], ambient_values(denoised, ~mask, initial)[mask])
    out, _ = restore(initial, denoised, 0, fill="initial")
    np.testing.assert_array_equal(out, initial)


@pytest.mark.parametrize("fill", ["mean", None, "Ambient"])
def test_bad_fill(fill):
    with pytest.raises(ValueError, match="fill must be 'initial' or 'ambient'"):
        restore(np.zeros(3), np.ones(3), 1.0, fill=fill)


def test_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        restore(np.zeros(3), np.zeros(4), 1.0)


def test_restore_file_records_ascii_names(tmp_path):
    """Non-ASCII file names are escaped in the TDRRESTO record (as the model's name in
    TDRDENOI is), instead of failing the write after the work."""
    from astropy.nddata import CCDData

    from tdrdenoise.restore_files import restore_file
    folder = tmp_path / "données"
    folder.mkdir()
    CCDData(np.array([[0.0, 1.0], [10.0, 2.0]]), unit="adu").write(folder / "entrée.fits")
    CCDData(np.array([[0.5, 1.0], [2.0, 2.0]]), unit="adu").write(folder / "débruité.fits")
    info = restore_file(folder / "débruité.fits", folder / "entrée.fits",
                        folder / "sortie.fits", 1 * u.adu)
    record = CCDData.read(info["output"]).meta["TDRRESTO"]
    assert "denoised=d\\xe9bruit\\xe9.fits" in record
    assert "input=entr\\xe9e.fits" in record and "donn" not in record
