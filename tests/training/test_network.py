"""The network's prediction path (no autograd) must compute what training computes."""
import numpy as np
import pytest
import torch
from torch.nn import functional as F

from tdrdenoise import TDRModel
from tdrdenoise.network import PartialConv2d, SelfToSelfUNet

from ..conftest import smooth_field


@pytest.mark.parametrize("channels_last", [False, True])
def test_prediction_path_equals_training_path(channels_last):
    torch.manual_seed(0)
    net = SelfToSelfUNet(width=8).eval()  # no dropout: both paths are deterministic
    x = torch.randn(2, 1, 64, 96)
    m = (torch.rand_like(x) > 0.3).float()
    expected = net(x, m).detach()
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    with torch.inference_mode():
        got = net(x, m)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=0, atol=1e-5)


def test_partial_conv_prediction_path():
    torch.manual_seed(1)
    conv = PartialConv2d(3, 5)
    x = torch.randn(1, 3, 16, 16)
    m = (torch.rand(1, 1, 16, 16) > 0.5).float()
    y_train, m_train = conv(x, m)
    with torch.no_grad():
        y_pred, m_pred = conv(x, m)
    np.testing.assert_allclose(y_pred.numpy(), y_train.detach().numpy(), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(m_pred.numpy(), m_train.numpy())


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
def test_upsample_into_concatenation(fmt):
    h = torch.randn(2, 3, 4, 5).contiguous(memory_format=fmt)
    skip = torch.randn(2, 2, 8, 10).contiguous(memory_format=fmt)
    expected = torch.cat([F.interpolate(h, scale_factor=2, mode="nearest"), skip], 1)
    with torch.no_grad():
        got = SelfToSelfUNet._up_cat(h, skip)
    assert torch.equal(got, expected)
    assert got.is_contiguous(memory_format=fmt)


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
def test_prediction_dropout_rate_and_seed(fmt):
    """In-place dropout drops 30 % of the values, scales the rest, and follows the seed."""
    net = SelfToSelfUNet(dropout=0.3).train()

    def drop(seed):
        torch.manual_seed(seed)
        x = torch.ones(1, 8, 256, 256).contiguous(memory_format=fmt)
        with torch.no_grad():
            rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
            return net._drop(x, rng)

    a, b, c = drop(0), drop(0), drop(1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert abs((a == 0).float().mean().item() - 0.3) < 0.005
    np.testing.assert_allclose(a[a != 0].numpy(), 1 / 0.7, rtol=1e-6)


def test_predict_leaves_network_layout_unchanged():
    """Prediction runs channels-last on CPUs and gives the parameters back as they were."""
    rng = np.random.default_rng(0)
    image = smooth_field((64, 64)) + rng.normal(0, 0.2, (64, 64))
    model = TDRModel(width=8, patch_size=32, batch_size=2, device="cpu")
    model.fit(image, steps=2, seed=0, progress=False)
    training = model._net.training
    first, _ = model.predict(image, n_predictions=2, seed=0, progress=False)
    assert all(p.is_contiguous() for p in model._net.parameters())
    assert model._net.training == training
    again, _ = model.predict(image, n_predictions=2, seed=0, progress=False)
    np.testing.assert_array_equal(first, again)
