# Sphinx configuration of the tdrdenoise documentation (sphinx-astropy, automodapi).
#
# Build with ``tox -e build_docs``, or from this folder:
#     sphinx-build -W --keep-going -b html . _build/html
import datetime
import importlib.util

from sphinx_astropy.conf.v2 import *  # noqa: F401,F403

import tdrdenoise

# -- Project -----------------------------------------------------------------------
project = "tdrdenoise"
author = "tdrdenoise developers"
copyright = f"{datetime.date.today().year}, {author}"
version = release = tdrdenoise.__version__

# -- General -------------------------------------------------------------------------
# References to Python, numpy, astropy, sunpy, ccdproc and torch are links. Each
# inventory has two locations, tried in order (Sphinx's "multiple targets for the
# inventory"): the project's objects.inv, then an empty inventory shipped here. A build
# without network (sphinx-build -W on the build machines) falls back to the empty one,
# which Sphinx reports at INFO level; only a failure of every location is a warning,
# which -W would turn into an error. The references then render as plain text.
_OFFLINE = "_intersphinx/empty.inv"
intersphinx_mapping = {
    "python": ("https://docs.python.org/3/", (None, _OFFLINE)),
    "numpy": ("https://numpy.org/doc/stable/", (None, _OFFLINE)),
    "astropy": ("https://docs.astropy.org/en/stable/", (None, _OFFLINE)),
    "sunpy": ("https://docs.sunpy.org/en/stable/", (None, _OFFLINE)),
    "ccdproc": ("https://ccdproc.readthedocs.io/en/stable/", (None, _OFFLINE)),
    "torch": ("https://docs.pytorch.org/docs/stable/", (None, _OFFLINE)),
}
intersphinx_timeout = 10

# Extensions of sphinx-astropy that are not installed here are dropped rather than
# failing the build (sphinx-copybutton is optional).
extensions = [ext for ext in extensions  # noqa: F405
              if importlib.util.find_spec(ext.split(".")[0]) is not None]

# No graphviz on the build machines: no inheritance diagrams.
automodapi_inheritance_diagram = False
automodsumm_inherited_members = False
numpydoc_show_class_members = False

exclude_patterns = ["_build", "**.ipynb_checkpoints"]
nitpicky = False

# -- HTML ----------------------------------------------------------------------------
html_title = f"tdrdenoise v{release}"
html_static_path = ["_static"]
html_theme_options = dict(html_theme_options)  # noqa: F405
html_theme_options.update({
    "navigation_depth": 2,
    "show_nav_level": 1,
})
