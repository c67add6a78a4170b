import numpy as np
import pytest
import torch

from tdrdenoise import TDRModel
from tdrdenoise.prediction.ensemble import dihedral, dihedral_inverse, pad_to_grid, tiled_apply
from tdrdenoise.network import SelfToSelfUNet

from ..conftest import smooth_field


@pytest.mark.parametrize("k", range(8))
def test_dihedral_roundtrip(k):
    x = torch.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(dihedral_inverse(dihedral(x, k), k), x)


def test_eight_distinct_transforms():
    x = torch.arange(16.0).reshape(4, 4)
    assert len({tuple(dihedral(x, k).flatten().tolist()) for k in range(8)}) == 8


def test_pad_to_grid():
    z = torch.randn(45, 70)
    zp, vp, crop = pad_to_grid(z, torch.ones(45, 70, dtype=torch.bool))
    assert zp.shape == (64, 96) and vp.all()
    np.testing.assert_array_equal(zp[crop], z)


def test_tiled_equals_untiled():
    """Tiles with a margin wider than the receptive field reproduce the whole-image pass."""
    torch.manual_seed(0)
    net = SelfToSelfUNet(width=8).eval()
    z = torch.randn(224, 288)
    m = (torch.rand(224, 288) < 0.7).float()

    def fn(x, mask):
        return net(x, mask)

    with torch.no_grad():
        whole = fn(z[None, None], m[None, None])[0, 0]
        tiled = tiled_apply(fn, z, m, tile_size=64)
    np.testing.assert_allclose(tiled.numpy(), whole.numpy(), rtol=0, atol=1e-5)


def test_predict_independent_of_tiling():
    """Without dropout the ensemble is deterministic given the seed: tiling changes nothing."""
    rng = np.random.default_rng(0)
    image = smooth_field((500, 470)) + rng.normal(0, 0.3, (500, 470))
    model = TDRModel(width=8, dropout=0.0, patch_size=32, batch_size=2, device="cpu")
    model.fit(image, steps=2, seed=0, progress=False)
    # 128-pixel tiles plus 160-pixel margins are smaller than the image: it is really tiled.
    small, _ = model.predict(image, n_predictions=2, seed=0, tile_size=128, progress=False)
    whole, _ = model.predict(image, n_predictions=2, seed=0, tile_size=4096, progress=False)
    np.testing.assert_allclose(small, whole, rtol=0, atol=1e-5)


def test_tile_borders_leave_no_pattern():
    """With dropout on, tiled and untiled ensembles differ only by noise, not at borders."""
    rng = np.random.default_rng(1)
    image = smooth_field((448, 448)) + rng.normal(0, 0.3, (448, 448))
    model = TDRModel(width=8, patch_size=32, batch_size=2, device="cpu")
    model.fit(image, steps=5, seed=0, progress=False)
    # 64-pixel tiles plus 160-pixel margins are smaller than the image: it is really tiled.
    tiled, _ = model.predict(image, n_predictions=2, seed=0, tile_size=64, progress=False)
    whole, _ = model.predict(image, n_predictions=2, seed=0, tile_size=4096, progress=False)
    assert np.ptp(whole) > 0.1  # the network does produce structure
    diff = np.abs(tiled - whole)
    borders = np.zeros(image.shape, bool)
    for b in range(64, 448, 64):
        borders[b - 1:b + 1, :] = True
        borders[:, b - 1:b + 1] = True
    assert diff.mean() > 0  # dropout differs between the runs
    assert diff[borders].mean() < 1.5 * diff[~borders].mean()
