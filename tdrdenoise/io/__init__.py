"""Reading and writing images, and the edge between containers and arrays.

- :mod:`~tdrdenoise.io.images`: :func:`read_image` and :func:`write_image` (the public
  functions of ``tdrdenoise.io``), :func:`parse_unit`, :func:`output_path`.
- ``containers``: CCDData / NDData / sunpy Map / Quantity / ndarray in, plain arrays
  (data, invalid mask, unit, meta) for the numerical code, and the same kind back out.
- ``provenance``: the header keys of tdrdenoise, the ``add_keyword`` option and the
  records that ``tdr_denoise``, ``restore_file`` and the batch functions write.
- ``files``: atomic writes, output claims, stale temporaries.

Nothing here imports torch.
"""
from .images import *  # noqa: F401,F403
from .images import __all__  # noqa: F401  (the public names of tdrdenoise.io)
