"""The Self2Self network used by TDR (the "T" of train-denoise-restore).

A U-Net whose encoder is built from partial convolutions (Liu et al. 2018) so that
dropped, masked or missing pixels never contribute to the features, and whose
decoder applies dropout before every convolution so that Monte-Carlo dropout gives
an ensemble at prediction time (Quan et al. 2020; Liu, Quan et al. 2025).
"""
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["PartialConv2d", "SelfToSelfUNet", "StudentUNet"]

# elements of the random numbers drawn at once by in-place dropout (16 M)
_CHUNK_ELEMENTS = 1 << 24


def _flat_view(x):
    """A 1-D view of the memory of ``x`` (contiguous or channels-last), else None."""
    if x.is_contiguous():
        return x.view(-1)
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return x.permute(0, 2, 3, 1).view(-1)
    return None


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
        if torch.is_grad_enabled():
            return torch.addcmul(self.bias.view(1, -1, 1, 1) * new_mask, raw, ratio), new_mask
        # Prediction: the same arithmetic without full-size temporaries (ratio is zero
        # wherever new_mask is, so raw * ratio + bias * new_mask == (raw * ratio + bias)
        # * new_mask).
        raw.mul_(ratio).add_(self.bias.view(1, -1, 1, 1)).mul_(new_mask)
        return raw, new_mask


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

    def _drop(self, x, rng=None):
        # the same as F.dropout, about twice as fast on CPUs (uniform draws and a
        # comparison instead of Bernoulli sampling)
        if not self.training or self.dropout == 0:
            return x
        scale = 1.0 / (1.0 - self.dropout)
        if torch.is_grad_enabled():
            return x.mul(torch.rand_like(x) >= self.dropout).mul_(scale)
        # Prediction: in place, over the tensor's memory in chunks, so that the random
        # numbers never take a full-size copy of a big tile's activations.
        flat = _flat_view(x)
        if rng is None or flat is None or x.device.type != "cpu":
            x.masked_fill_(torch.rand_like(x) < self.dropout, 0.0)
            return x.mul_(scale)
        # On CPUs numpy's PCG64 draws 16-bit integers about four times faster than
        # torch.rand draws floats; the drop probability is then round(p * 2**16) / 2**16
        # (0.3 -> 0.300003).
        threshold = round(self.dropout * 65536)
        for i in range(0, flat.numel(), _CHUNK_ELEMENTS):
            part = flat[i:i + _CHUNK_ELEMENTS]
            drop = rng.integers(0, 65536, part.numel(), dtype=np.uint16) < threshold
            part.masked_fill_(torch.from_numpy(drop), 0.0)
        return x.mul_(scale)

    @staticmethod
    def _up_cat(h, skip):
        """Nearest-neighbour 2x upsampling of ``h`` concatenated with ``skip``."""
        if torch.is_grad_enabled():
            return torch.cat([F.interpolate(h, scale_factor=2, mode="nearest"), skip], 1)
        # prediction: upsample straight into the concatenated tensor (one full-size
        # allocation instead of two)
        n, c, hh, ww = h.shape
        fmt = (torch.channels_last if h.is_contiguous(memory_format=torch.channels_last)
               and not h.is_contiguous() else torch.contiguous_format)
        out = torch.empty((n, c + skip.shape[1], 2 * hh, 2 * ww), dtype=h.dtype,
                          device=h.device, memory_format=fmt)
        out[:, :c].unflatten(3, (ww, 2)).unflatten(2, (hh, 2)).copy_(
            h[:, :, :, None, :, None].expand(n, c, hh, 2, ww, 2))
        out[:, c:] = skip
        return out

    def forward(self, x, mask):
        """Predict the full image from the pixels flagged by ``mask``.

        ``x`` and ``mask`` have shape (N, 1, H, W) with H and W multiples of 32.
        Dropout draws from torch's global random generator (seeded by the caller),
        directly or through a numpy generator seeded from it.
        """
        rng = None
        if self.training and not torch.is_grad_enabled() and x.device.type == "cpu":
            rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
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
            h = self._up_cat(h, skips.pop())
            for conv in convs:
                h = self._act(conv(self._drop(h, rng)))
        h = self._up_cat(h, skips.pop())
        h = self._act(self.dec1[0](self._drop(h, rng)))
        h = self._act(self.dec1[1](self._drop(h, rng)))
        return self.dec1[2](self._drop(h, rng))


class StudentUNet(nn.Module):
    """A deterministic U-Net distilled from the Monte-Carlo ensemble of a
    :class:`SelfToSelfUNet` (the fast path of :func:`~tdrdenoise.tdr_denoise`).

    The teacher's layout (seven encoder convolutions with five 2x2 max-pools,
    nearest-neighbour upsampling and skip concatenation) with plain convolutions,
    no dropout, ``width`` encoder and ``2 * width`` decoder channels, and a
    full-resolution head of ``head`` channels. The input has two channels, the
    normalised image (zero where invalid) and its valid mask; the output has two,
    the ensemble mean and the logarithm of the ensemble standard deviation.

    Parameters
    ----------
    width : int, optional
        Encoder channels; decoder levels use twice this.
    head : int, optional
        Channels of the first full-resolution decoder convolution (the next has half).

    Examples
    --------
    >>> import torch
    >>> net = StudentUNet()
    >>> x = torch.zeros(1, 1, 64, 64)
    >>> net(x, torch.ones_like(x)).shape
    torch.Size([1, 2, 64, 64])
    """

    n_pools = 5

    def __init__(self, width=24, head=32):
        super().__init__()
        self.width, self.head = int(width), int(head)
        w, d, h = self.width, 2 * self.width, self.head
        self.enc = nn.ModuleList([nn.Conv2d(2, w, 3, padding=1)] +
                                 [nn.Conv2d(w, w, 3, padding=1) for _ in range(6)])
        self.dec = nn.ModuleList()
        for level in range(self.n_pools, 1, -1):
            c_in = (w if level == self.n_pools else d) + w
            self.dec.append(nn.ModuleList([nn.Conv2d(c_in, d, 3, padding=1),
                                           nn.Conv2d(d, d, 3, padding=1)]))
        self.dec1 = nn.ModuleList([nn.Conv2d(d + 2, h, 3, padding=1),
                                   nn.Conv2d(h, h // 2, 3, padding=1),
                                   nn.Conv2d(h // 2, 2, 3, padding=1)])

    def _act(self, x):
        return F.leaky_relu(x, 0.1, inplace=not torch.is_grad_enabled())

    def forward(self, x, mask):
        """Mean and log-std (channels 0 and 1) of the teacher's ensemble for ``x``.

        ``x`` and ``mask`` have shape (N, 1, H, W) with H and W multiples of 32.
        """
        x = torch.cat([x * mask, mask], 1)
        skips = [x]
        h = self._act(self.enc[0](x))
        for i in range(1, 6):
            h = F.max_pool2d(self._act(self.enc[i](h)), 2)
            skips.append(h)
        h = self._act(self.enc[6](h))
        skips.pop()
        for convs in self.dec:
            h = SelfToSelfUNet._up_cat(h, skips.pop())
            for conv in convs:
                h = self._act(conv(h))
        h = SelfToSelfUNet._up_cat(h, skips.pop())
        h = self._act(self.dec1[0](h))
        h = self._act(self.dec1[1](h))
        return self.dec1[2](h)


# The public path of the classes (tdrdenoise.network re-exports them): kept for their
# repr, the documentation and anything pickled before the code moved here.
for _cls in (PartialConv2d, SelfToSelfUNet, StudentUNet):
    _cls.__module__ = "tdrdenoise.network"
del _cls
