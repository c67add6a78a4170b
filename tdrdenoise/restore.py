"""The restore step (the "R" of train-denoise-restore)."""
import numpy as np
from scipy import ndimage

from .io.containers import join_quantity, split_quantity, unit_factor
from ._validate import FILLS, NoiseMultiple, check_fill, threshold_value

__all__ = ["restore", "ambient_values", "NoiseMultiple", "AMBIENT_WINDOW", "FILLS"]

#: Side, in pixels, of the window whose unrestored pixels give a restored pixel its
#: value with ``fill="ambient"``.
AMBIENT_WINDOW = 5


def ambient_values(values, usable, fallback, window=AMBIENT_WINDOW):
    """The mean of the usable pixels in the ``window`` x ``window`` window around each pixel.

    This is the value ``fill="ambient"`` gives a restored pixel: the mean of
    ``values`` over the pixels of its window (centred on it, clipped at the image
    edges) for which ``usable`` is True; where none is, ``fallback``.

    Parameters
    ----------
    values : ndarray
        2-D image whose values are averaged (the denoised image).
    usable : ndarray of bool
        The pixels that may be averaged (for restore: valid and not restored).
    fallback : ndarray
        The value of the pixels without any usable pixel in their window (for
        restore: the initial value).
    window : int, optional
        Odd window side in pixels (default :data:`AMBIENT_WINDOW`, 5).

    Returns
    -------
    ndarray of float64

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise.restore import ambient_values
    >>> values = np.arange(9.0).reshape(3, 3)
    >>> usable = np.ones((3, 3), bool)
    >>> usable[1, 1] = False
    >>> float(ambient_values(values, usable, values, window=3)[1, 1])  # the 8 neighbours
    4.0
    """
    if window < 1 or window % 2 != 1:
        raise ValueError(f"window must be an odd number of pixels; got {window}")
    values = np.asarray(values, dtype=np.float64)
    usable = np.asarray(usable, bool) & np.isfinite(values)
    kernel = np.ones((window,) * values.ndim)
    total = ndimage.correlate(np.where(usable, values, 0.0), kernel, mode="constant")
    count = ndimage.correlate(usable.astype(np.float64), kernel, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    return np.where(count > 0.5, mean, np.asarray(fallback, dtype=np.float64))


def restore(initial, denoised, R, *, fill="initial"):
    """Restore the pixels the denoiser changed by more than ``R``.

    This is the last step of TDR: denoised pixels that differ from the initial image by
    more than the threshold are taken to be real signal the network smoothed away
    (a sunspot edge, a faint point source), and get their initial values back. The
    paper puts ``R`` below the noise level for HMI magnetograms (5 G, with noise of
    about 8 G). For its HST images it uses 0.3 counts/s; we measure a noise of about
    0.094–0.098 counts/s on such frames (the paper quotes 0.4–0.5), so that ``R`` is
    about 3 sigma of the noise: a generous threshold that restores little besides real
    signal.

    ``R`` can be one number for the whole image or one per pixel, such as a multiple
    of the image's uncertainty (``R=3 * ccd.uncertainty.array * ccd.unit``), so that
    the threshold follows the noise where it varies across the image.

    With ``fill="ambient"`` a restored pixel takes instead the mean of the denoised
    values of the pixels around it that were not restored (see
    :func:`ambient_values`): the mean over the valid, unrestored pixels of the
    5 x 5 window centred on it; a pixel whose whole window was restored (the inside
    of a large structure the network changed, a sunspot or a star core) keeps its
    initial value. This suits isolated pixels the network rightly changed a lot
    (cosmic-ray hits, hot pixels) rather than real signal; see
    :ref:`choosing-fill` for measurements of when each fill is better.

    Parameters
    ----------
    initial, denoised : array-like or `~astropy.units.Quantity`
        The noisy image and its denoised version, of the same shape (and compatible
        units when both are Quantities).
    R : float, array-like or `~astropy.units.Quantity`
        Restore threshold, in the image unit (a Quantity is converted to it): a
        scalar, or an array of the image's shape with one threshold per pixel (a NaN
        entry restores its pixel). ``np.inf`` restores nothing; ``0`` with
        ``fill="initial"`` returns ``initial``.
    fill : {"initial", "ambient"}, optional
        The value of a restored pixel: its initial value (default, the paper's
        method; ``R=0`` returns ``initial`` bit for bit), or the mean of its
        unrestored neighbours' denoised values. ``R=0`` then restores every pixel
        the denoiser changed; those with a pixel it left unchanged in their window
        take the mean of such pixels, so the result need not be ``initial``.

    Returns
    -------
    restored : ndarray or `~astropy.units.Quantity`
        ``denoised`` where ``|denoised - initial| <= R``, the fill value elsewhere.
        NaN pixels of either input are taken from ``initial`` (with either fill).
    restored_mask : ndarray of bool
        True for the pixels that were restored.

    Raises
    ------
    ValueError
        If ``R`` is negative or NaN (for arrays: has negative values), ``R`` is an
        array of another shape than the images, the images' shapes differ, or
        ``fill`` is unknown.
    astropy.units.UnitsError
        If the units of ``R``, ``initial`` and ``denoised`` cannot be reconciled.
    TypeError
        If ``R`` is not a number, an array of numbers or a Quantity.

    Examples
    --------
    >>> import numpy as np
    >>> from tdrdenoise import restore
    >>> initial = np.array([0.0, 1.0, 10.0])
    >>> denoised = np.array([0.5, 1.0, 2.0])
    >>> restored, mask = restore(initial, denoised, R=1.0)
    >>> restored
    array([ 0.5,  1. , 10. ])
    >>> mask
    array([False, False,  True])

    One threshold per pixel:

    >>> restore(initial, denoised, R=np.array([0.1, 0.1, 9.0]))[0]
    array([0., 1., 2.])

    The ambient fill (a 1-D image here: its window is 5 pixels long):

    >>> restore(initial, denoised, R=1.0, fill="ambient")[0]
    array([0.5 , 1.  , 0.75])
    """
    fill = check_fill(fill)
    init, unit = split_quantity(initial, "initial")
    den, den_unit = split_quantity(denoised, "denoised")
    if unit is None:
        unit = den_unit
    elif den_unit is not None:
        den = den * unit_factor(den_unit, unit, "denoised", "{name} (unit '{unit}') cannot "
                                "be converted to the unit of initial ('{to}')")
    if init.shape != den.shape:
        raise ValueError(f"initial and denoised must have the same shape; got {init.shape} "
                         f"and {den.shape}")
    threshold = threshold_value(R, unit, shape=init.shape)
    with np.errstate(invalid="ignore"):
        restored_mask = ~(np.abs(den - init) <= threshold)
    dtype = np.result_type(init.dtype, den.dtype, np.float32)
    fill_values = init
    if fill == "ambient":
        both = np.isfinite(init) & np.isfinite(den)
        ambient = ambient_values(den, both & ~restored_mask, init)
        fill_values = np.where(both, ambient, init)
    out = np.where(restored_mask, fill_values, den).astype(dtype, copy=False)
    return join_quantity(out, unit), restored_mask
