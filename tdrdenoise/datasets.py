"""Synthetic images with known truth, for the demo, the tutorials and tests.

The images are generated, not downloaded: they need no network and no data files.
"""
import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

__all__ = ["make_granulation"]


def make_granulation(shape=(128, 128), seed=0, noise=0.1, granule_size=10.0,
                     bright_points=0):
    """A synthetic photosphere (solar granulation) with known truth, plus Gaussian noise.

    The truth is a cellular pattern: bright granules separated by dark intergranular
    lanes, built from the distance to the nearest and second-nearest of random cell
    centres (a Voronoi pattern), slightly smoothed and scaled to [0, 1]. Optional
    bright points (one or two pixels wide, like magnetic bright points in the lanes)
    give the image small, sharp features that a denoiser tends to smooth away and
    that the restore step of TDR gives back.

    Parameters
    ----------
    shape : tuple of int, optional
        Image shape (rows, columns).
    seed : int, optional
        Seed of the pattern and of the noise: the same seed gives the same images.
    noise : float, optional
        Standard deviation of the Gaussian noise added, in units of the [0, 1] range
        of the truth (0 gives a noise-free image).
    granule_size : float, optional
        Typical distance between granule centres, in pixels.
    bright_points : int, optional
        Number of bright points added in the lanes.

    Returns
    -------
    noisy, truth : ndarray
        Two float64 arrays of ``shape``: ``truth + noise`` and the truth, which
        spans [0, 1]. The noise is not clipped, so it is exactly Gaussian.

    Raises
    ------
    ValueError
        If ``shape`` is not two positive integers, or ``noise`` or ``granule_size``
        are not positive (``noise`` may be 0).

    Examples
    --------
    >>> from tdrdenoise.datasets import make_granulation
    >>> noisy, truth = make_granulation((64, 64), seed=1, noise=0.1)
    >>> noisy.shape, float(truth.min()), float(truth.max())
    ((64, 64), 0.0, 1.0)
    >>> round(float((noisy - truth).std()), 1)
    0.1
    """
    try:
        h, w = (int(n) for n in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be two integers (rows, columns); got {shape!r}") from None
    if h < 2 or w < 2:
        raise ValueError(f"shape must be at least (2, 2); got {shape!r}")
    if not noise >= 0:
        raise ValueError(f"noise must be zero or positive; got {noise}")
    if not granule_size > 0:
        raise ValueError(f"granule_size must be positive; got {granule_size}")
    rng = np.random.default_rng(seed)
    g = float(granule_size)
    # cell centres over the image and a margin, so that edges look like the middle
    area = (h + 4 * g) * (w + 4 * g)
    n_cells = max(int(round(area / g ** 2)), 4)
    centres = rng.uniform([-2 * g, -2 * g], [h + 2 * g, w + 2 * g], size=(n_cells, 2))
    yy, xx = np.mgrid[:h, :w]
    pixels = np.column_stack([yy.ravel(), xx.ravel()]).astype(float)
    dist, _ = cKDTree(centres).query(pixels, k=2)
    lane = (dist[:, 1] - dist[:, 0]).reshape(h, w)  # 0 on the lanes, large in granules
    granules = 1.0 - np.exp(-lane / (0.6 * g))
    # granules are brighter in the middle and vary from one to the next
    brightness = 0.75 + 0.25 * rng.uniform(size=n_cells)
    _, nearest = cKDTree(centres).query(pixels)
    granules = granules * brightness[nearest].reshape(h, w)
    truth = ndimage.gaussian_filter(granules, 1.0, mode="reflect")
    truth = (truth - truth.min()) / (truth.max() - truth.min())
    if bright_points:
        lanes = np.argwhere(lane < np.percentile(lane, 10))
        picks = lanes[rng.choice(len(lanes), size=int(bright_points), replace=False)]
        points = np.zeros((h, w))
        points[picks[:, 0], picks[:, 1]] = 1.0
        points = ndimage.gaussian_filter(points, 0.7, mode="constant")
        truth = truth + 0.6 * points / points.max()
    truth = (truth - truth.min()) / (truth.max() - truth.min())
    noisy = truth + rng.normal(0.0, float(noise), (h, w)) if noise else truth.copy()
    return noisy, truth
