"""Errors and correlation of two images: how much, and how linearly, denoising changed them."""
import numpy as np

from ._core import images, linear_fit, with_unit

__all__ = ["absolute_error", "mean_squared_error", "pearson_cc", "linear_coefficient"]


def absolute_error(initial, denoised):
    """Mean absolute difference of two images, ``mean(|initial − denoised|)``.

    Against the noisy input it measures how much the denoiser changed; against a
    clean reference (pass it as ``initial``) it is the mean absolute error.

    Parameters
    ----------
    initial, denoised : CCDData, NDData, sunpy Map, Quantity or array-like
        Two images of the same shape (``denoised`` is converted to the unit of
        ``initial`` when both have one).

    Returns
    -------
    float or `~astropy.units.Quantity`
        In the image unit.

    Raises
    ------
    ValueError
        If the shapes differ or no pixel is valid in both.
    astropy.units.UnitsError
        If the units are incompatible.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.metrics import absolute_error
    >>> absolute_error(np.array([[0.0, 1.0]]), np.array([[1.0, -1.0]]))
    1.5
    """
    (a, d), valid, unit = images((initial, "initial"), (denoised, "denoised"))
    return with_unit(np.mean(np.abs(a - d)[valid]), unit)


def mean_squared_error(initial, denoised):
    """Mean squared difference of two images, mean((initial − denoised)²).

    Parameters
    ----------
    initial, denoised : CCDData, NDData, sunpy Map, Quantity or array-like
        Two images of the same shape.

    Returns
    -------
    float or `~astropy.units.Quantity`
        In the image unit squared.

    Raises
    ------
    ValueError
        If the shapes differ or no pixel is valid in both.
    astropy.units.UnitsError
        If the units are incompatible.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy import units as u
    >>> from tdrdenoise.metrics import mean_squared_error
    >>> mean_squared_error(np.array([[0.0, 1.0]]) * u.G, np.array([[1.0, -1.0]]) * u.G)
    <Quantity 2.5 G2>
    """
    (a, d), valid, unit = images((initial, "initial"), (denoised, "denoised"))
    return with_unit(np.mean(((a - d) ** 2)[valid]), unit, 2)


def pearson_cc(initial, denoised):
    """Pearson correlation coefficient of the valid pixels of two images.

    Parameters
    ----------
    initial, denoised : CCDData, NDData, sunpy Map, Quantity or array-like
        Two images of the same shape.

    Returns
    -------
    float
        Between −1 and 1; NaN when either image is constant.

    Raises
    ------
    ValueError
        If the shapes differ or no pixel is valid in both.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.metrics import pearson_cc
    >>> pearson_cc(np.array([[1.0, 2.0, 3.0]]), np.array([[2.0, 4.0, 6.5]]))  # doctest: +FLOAT_CMP
    0.9979487157886733
    """
    (a, d), valid, _ = images((initial, "initial"), (denoised, "denoised"))
    x, y = a[valid] - a[valid].mean(), d[valid] - d[valid].mean()
    denom = np.sqrt(np.dot(x, x) * np.dot(y, y))
    return float(np.dot(x, y) / denom) if denom > 0 else float("nan")


def linear_coefficient(initial, denoised):
    """Slope of the least-squares line ``denoised = a · initial + b``.

    The paper's linear coefficient: 1 when the denoiser keeps the amplitude of the
    signal, below 1 when it smooths strong features away.

    Parameters
    ----------
    initial, denoised : CCDData, NDData, sunpy Map, Quantity or array-like
        Two images of the same shape.

    Returns
    -------
    float
        The slope ``a`` (exactly 1 when ``denoised`` equals ``initial``).

    Raises
    ------
    ValueError
        If the shapes differ, no pixel is valid in both, or ``initial`` is constant.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.metrics import linear_coefficient
    >>> x = np.arange(12.0).reshape(3, 4)
    >>> linear_coefficient(x, 0.5 * x + 3)
    0.5
    """
    (a, d), valid, _ = images((initial, "initial"), (denoised, "denoised"))
    return linear_fit(a[valid], d[valid])[0]
