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
# The build must work offline: no inventories are fetched, so references to astropy,
# numpy, sunpy... render as plain text instead of links.
intersphinx_mapping = {}

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
