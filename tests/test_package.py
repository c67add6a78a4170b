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
    source.write_text("from .io.containers import is_map, _Image\n"
                      "from .prediction.noise import difference_noise\n"
                      "from . import _validate\n"
                      "from tdrdenoise.utils import _umask\n"
                      "from . import __version__\n")
    assert private_imports(source, PACKAGE) == ["_Image from .io.containers",
                                                "_umask from .utils"]


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_imports():
    """{module: the tdrdenoise modules it imports}, at any level (function-level
    imports included), from the source."""
    names = {_module_name(p): p for p in MODULES}
    graph = {}
    for name, path in names.items():
        base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    stem = base[:len(base) - node.level + 1] + (
                        node.module.split(".") if node.module else [])
                else:
                    stem = (node.module or "").split(".")
                target = ".".join(stem)
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    found.add(sub if sub in names else target)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        graph[name] = {t for t in found if t in names and t != name}
    return graph


def test_no_import_circle():
    """Imports run one way: no module imports the package __init__ (the version is in
    version.py), model_io never imports the model, and there is no circle."""
    graph = module_imports()
    assert [m for m, targets in graph.items() if "tdrdenoise" in targets
            and m != "tdrdenoise"] == []
    assert "tdrdenoise.model" not in graph["tdrdenoise.model_io"]
    assert graph["tdrdenoise.version"] <= {"tdrdenoise._version"}

    def reaches(start):
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    assert sorted(m for m in graph if m in reaches(m)) == []


def test_layers_run_one_way():
    """The prediction stages never import the training (training uses them), and io
    imports nothing of tdrdenoise outside itself but the warning class (no torch)."""
    graph = module_imports()
    for name, targets in graph.items():
        if name.startswith("tdrdenoise.prediction"):
            assert not any(t.startswith("tdrdenoise.training") for t in targets), name
        if name.startswith("tdrdenoise.io"):
            assert all(t.startswith("tdrdenoise.io") or t == "tdrdenoise._warnings"
                       for t in targets), (name, targets)


def test_model_io_returns_a_model_in_a_fresh_process(tmp_path):
    """model_io.from_bytes builds a TDRModel though model_io never imports it (the
    package registers the builder), also when nothing else of tdrdenoise was imported."""
    import subprocess
    import sys

    import numpy as np
    from tdrdenoise import TDRModel

    model = TDRModel(width=4, patch_size=32, batch_size=2, device="cpu").fit(
        np.random.default_rng(0).normal(size=(32, 32)), steps=1, seed=0, progress=False,
        distil_steps=0)
    (tmp_path / "m.tdr").write_bytes(model.to_bytes())
    script = ("import sys\nfrom tdrdenoise.model_io import load\n"
              "m = load(sys.argv[1], device='cpu')\nprint(type(m).__name__, m.fingerprint)")
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path / "m.tdr")],
                         capture_output=True, text=True, timeout=120,
                         cwd=PACKAGE.parent)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["TDRModel", model.fingerprint]


#: Lines a module may have, docstrings included: small enough to read in one sitting.
MAX_MODULE_LINES = 450


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_too_long(path):
    assert len(path.read_text().splitlines()) <= MAX_MODULE_LINES
