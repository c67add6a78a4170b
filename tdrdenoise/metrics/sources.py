"""Sources found before and after denoising, at one threshold (photutils)."""
import warnings

import numpy as np

from ..io.containers import scalar_in_unit
from ._core import filled, images, with_unit

__all__ = ["detect_sources"]

# pytest-doctestplus: this example needs photutils
__doctest_requires__ = {("detect_sources",): ["photutils"]}


def detect_sources(initial, denoised, threshold=None, *, nsigma=3.0, npixels=5,
                   connectivity=8):
    """Count the sources found before and after denoising, at the same threshold.

    Segmentation by `photutils.segmentation.detect_sources` (optional dependency).
    The same absolute threshold is used on both images: by default the one
    `photutils.segmentation.detect_threshold` derives from the *initial* image
    (sigma-clipped background plus ``nsigma`` times the sigma-clipped noise), so
    that sources which appear only after denoising are fainter than what the noisy
    image allows to detect (the HST use case: faint star clusters).

    Parameters
    ----------
    initial, denoised : CCDData, NDData, sunpy Map, Quantity or array-like
        The noisy image and its denoised version. Pixels invalid in either are
        masked in both.
    threshold : float or `~astropy.units.Quantity`, optional
        Absolute detection threshold in the image unit.
    nsigma : float, optional
        Threshold in noise standard deviations above the background of ``initial``,
        used when ``threshold`` is None.
    npixels : int, optional
        Minimum number of connected pixels above the threshold.
    connectivity : {4, 8}, optional
        Pixel connectivity of a source.

    Returns
    -------
    dict
        ``threshold`` (float or Quantity), ``n_initial`` and ``n_denoised`` (number of
        sources), ``n_new`` (sources of the denoised image that overlap no source of
        the initial one), ``segm_initial`` and ``segm_denoised``
        (`~photutils.segmentation.SegmentationImage`, or None when nothing is found).

    Raises
    ------
    ImportError
        If photutils is not installed.
    ValueError
        If the shapes differ or no pixel is valid in both.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.metrics import detect_sources
    >>> image = np.zeros((32, 32))
    >>> image[10:13, 10:13] = 5.0
    >>> result = detect_sources(image, image, threshold=1.0)
    >>> result["n_initial"], result["n_denoised"], result["n_new"]
    (1, 1, 0)
    """
    try:
        from photutils.segmentation import detect_sources as _detect
        from photutils.segmentation import detect_threshold
        from photutils.utils.exceptions import NoDetectionsWarning
    except ImportError as exc:
        raise ImportError("tdrdenoise.metrics.detect_sources needs photutils: "
                          "pip install photutils") from exc
    (a, d), valid, unit = images((initial, "initial"), (denoised, "denoised"))
    a, d = filled(a, valid), filled(d, valid)
    if threshold is None:
        thr = detect_threshold(a, float(nsigma), mask=~valid)
        level = float(np.median(thr))
    else:
        level = thr = scalar_in_unit(threshold, unit, "threshold")
    segms = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoDetectionsWarning)
        for data in (a, d):
            segms.append(_detect(data, thr, int(npixels), connectivity=connectivity,
                                 mask=~valid))
    counts = [0 if s is None else len(s.labels) for s in segms]
    n_new = counts[1]
    if segms[0] is not None and segms[1] is not None:
        labels = segms[1].data
        n_new -= np.unique(labels[(labels > 0) & (segms[0].data > 0)]).size
    return {"threshold": with_unit(level, unit), "n_initial": counts[0],
            "n_denoised": counts[1], "n_new": int(n_new), "segm_initial": segms[0],
            "segm_denoised": segms[1]}
