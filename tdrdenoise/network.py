"""The Self2Self network used by TDR (the "T" of train-denoise-restore).

A U-Net whose encoder is built from partial convolutions (Liu et al. 2018) so that
dropped, masked or missing pixels never contribute to the features, and whose
decoder applies dropout before every convolution so that Monte-Carlo dropout gives
an ensemble at prediction time (Quan et al. 2020; Liu, Quan et al. 2025).
"""
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["PartialConv2d", "SelfToSelfUNet"]


class PartialConv2d(nn.Conv2d):
    """A 3x3 convolution that only sees the pixels flagged valid by a mask.

    The output is renormalised by the fraction of valid pixels under the kernel,
    and the returned mask flags the output pixels that saw at least one valid input.

    Examples
    --------
    >>> import torch
    >>> conv = PartialConv2d(1, 4)
    >>> x, m = torch.ones(1, 1, 8, 8), torch.ones(1, 1, 8, 8)
    >>> y, m2 = conv(x, m)
    >>> tuple(y.shape), tuple(m2.shape)
    ((1, 4, 8, 8), (1, 1, 8, 8))
    """

    def __init__(self, in_channels, out_channels, kernel_size=3):
        super().__init__(in_channels, out_channels, kernel_size,
                         padding=kernel_size // 2, bias=True)
        self._window = float(kernel_size * kernel_size)

    def forward(self, x, mask):
        with torch.no_grad():
            # number of valid pixels under the kernel (zero padding counts as invalid)
            coverage = F.avg_pool2d(mask, self.kernel_size, 1, self.padding,
                                    count_include_pad=True, divisor_override=1)
            new_mask = (coverage > 0).to(x.dtype)
            ratio = self._window / coverage.clamp(min=1.0) * new_mask
        raw = F.conv2d(x * mask, self.weight, None, padding=self.padding)
        return torch.addcmul(self.bias.view(1, -1, 1, 1) * new_mask, raw, ratio), new_mask


class SelfToSelfUNet(nn.Module):
    """The Self2Self U-Net of the TDR paper.

    Encoder: seven partial-convolution layers of ``width`` channels (3x3,
    LeakyReLU 0.1) with five 2x2 max-pools. Decoder: nearest-neighbour
    upsampling, skip concatenation, dropout before every convolution, two
    convolutions of ``2 * width`` channels per level, then 64, 32 and 1 channels
    at full resolution.

    Parameters
    ----------
    width : int, optional
        Encoder channels (48 in the paper); decoder levels use twice this.
    dropout : float, optional
        Dropout probability before each decoder convolution (0.3 in the paper).

    Examples
    --------
    >>> import torch
    >>> net = SelfToSelfUNet()
    >>> x = torch.zeros(1, 1, 64, 64)
    >>> net(x, torch.ones_like(x)).shape
    torch.Size([1, 1, 64, 64])
    """

    n_pools = 5

    def __init__(self, width=48, dropout=0.3):
        super().__init__()
        self.width = int(width)
        self.dropout = float(dropout)
        w, d = self.width, 2 * self.width
        self.enc = nn.ModuleList([PartialConv2d(1, w)] +
                                 [PartialConv2d(w, w) for _ in range(6)])
        # decoder levels 5..2: (upsampled + skip) -> d -> d
        self.dec = nn.ModuleList()
        for level in range(self.n_pools, 1, -1):
            c_in = (w if level == self.n_pools else d) + w
            self.dec.append(nn.ModuleList([nn.Conv2d(c_in, d, 3, padding=1),
                                           nn.Conv2d(d, d, 3, padding=1)]))
        self.dec1 = nn.ModuleList([nn.Conv2d(d + 1, 64, 3, padding=1),
                                   nn.Conv2d(64, 32, 3, padding=1),
                                   nn.Conv2d(32, 1, 3, padding=1)])

    # Without autograd (prediction) every activation is used once, so activation and
    # dropout work in place: that saves a full-resolution copy per layer on big tiles.

    def _act(self, x):
        return F.leaky_relu(x, 0.1, inplace=not torch.is_grad_enabled())

    def _drop(self, x):
        # the same as F.dropout, about twice as fast on CPUs (uniform draws and a
        # comparison instead of Bernoulli sampling)
        if not self.training or self.dropout == 0:
            return x
        scale = 1.0 / (1.0 - self.dropout)
        if not torch.is_grad_enabled():
            return x.masked_fill_(torch.rand_like(x) < self.dropout, 0.0).mul_(scale)
        return x.mul(torch.rand_like(x) >= self.dropout).mul_(scale)

    def forward(self, x, mask):
        """Predict the full image from the pixels flagged by ``mask``.

        ``x`` and ``mask`` have shape (N, 1, H, W) with H and W multiples of 32.
        """
        skips = [x * mask]
        h, m = self.enc[0](x, mask)
        h = self._act(h)
        for i in range(1, 6):
            h, m = self.enc[i](h, m)
            h = self._act(h)
            h, m = F.max_pool2d(h, 2), F.max_pool2d(m, 2)
            skips.append(h)
        h, m = self.enc[6](h, m)
        h = self._act(h)
        skips.pop()  # the deepest pooled map feeds enc[6], not a skip
        for convs in self.dec:
            h = torch.cat([F.interpolate(h, scale_factor=2, mode="nearest"), skips.pop()], 1)
            for conv in convs:
                h = self._act(conv(self._drop(h)))
        h = torch.cat([F.interpolate(h, scale_factor=2, mode="nearest"), skips.pop()], 1)
        h = self._act(self.dec1[0](self._drop(h)))
        h = self._act(self.dec1[1](self._drop(h)))
        return self.dec1[2](self._drop(h))
