"""Tests of the package as a whole: how its modules share code."""
import ast
from pathlib import Path

import pytest

import tdrdenoise

PACKAGE = Path(tdrdenoise.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))


def _is_module(package_dir, node, name):
    """True when ``from <node.module> import name`` imports a module (such as ``_noise``)."""
    folder = package_dir
    for _ in range(node.level - 1):
        folder = folder.parent
    if node.module:
        folder = folder.joinpath(*node.module.split("."))
    return (folder / f"{name}.py").is_file() or (folder / name / "__init__.py").is_file()


def private_imports(path, folder=None):
    """The private names ``path`` imports from other tdrdenoise modules.

    Relative imports are resolved from ``folder`` (by default the file's own).

    Private modules (``from ._noise import difference_noise``, ``from . import _noise``)
    are fine: they share code through public names; so are dunder names
    (``__version__``).
    """
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            package_dir = folder or path.parent
        elif node.module and node.module.split(".")[0] == "tdrdenoise":
            package_dir, node = PACKAGE, ast.ImportFrom(
                module=".".join(node.module.split(".")[1:]) or None, names=node.names,
                level=1)
        else:
            continue
        found += [f"{a.name} from {'.' * node.level}{node.module or ''}"
                  for a in node.names
                  if a.name.startswith("_") and not a.name.endswith("__")
                  and not _is_module(package_dir, node, a.name)]
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_name_across_modules(path):
    """Modules share helpers through public names (private modules such as _containers
    and metrics._core hold them), never by importing an underscore name."""
    assert private_imports(path) == []


def test_the_check_finds_private_names(tmp_path):
    source = tmp_path / "example.py"
    source.write_text("from ._containers import is_map, _Image\n"
                      "from ._noise import difference_noise\n"
                      "from . import _noise\n"
                      "from tdrdenoise.utils import _umask\n"
                      "from . import __version__\n")
    assert private_imports(source, PACKAGE) == ["_Image from ._containers", "_umask from .utils"]
