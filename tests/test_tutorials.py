"""The tutorials cannot rot: every Python block of docs/tutorials/ and of the guide
pages is valid Python, imports names that exist, and calls the functions and methods
of tdrdenoise with keyword arguments they accept. The blocks that need data run on
../shared/data in the slow tests (skipped cleanly without it)."""
import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(DOCS.glob("tutorials/*.rst")) + [DOCS / name for name in (
    "index.rst", "quickstart.rst", "evaluation.rst")]
_BLOCK = re.compile(r"^\.\. code-block:: python\n((?:\n|    .*\n)+)", re.M)


def python_blocks(page):
    """The ``code-block:: python`` bodies of ``page``, dedented."""
    text = page.read_text()
    return [re.sub(r"^    ", "", m.group(1), flags=re.M) for m in _BLOCK.finditer(text)]


def _page_id(page):
    return str(page.relative_to(DOCS))


def tdrdenoise_imports(tree):
    """{local name: object} of the tdrdenoise names a block imports."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tdrdenoise"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module} has no {alias.name}"
                found[alias.asname or alias.name] = getattr(module, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("tdrdenoise"):
                    importlib.import_module(alias.name)
    return found


def _accepts(func, keywords, where):
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(keywords) - set(params))
    assert not unknown, f"{where}: {getattr(func, '__qualname__', func)} takes no {unknown}"


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_tutorial_code_matches_the_api(page):
    from tdrdenoise import TDRModel

    blocks = python_blocks(page)
    if not blocks:
        pytest.skip("no Python block")
    names = {}
    for block in blocks:
        tree = ast.parse(block)  # valid Python
        names.update(tdrdenoise_imports(tree))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            keywords = [k.arg for k in node.keywords if k.arg is not None]
            where = f"{_page_id(page)} line {node.lineno} of a block"
            if isinstance(node.func, ast.Name) and node.func.id in names:
                _accepts(names[node.func.id], keywords, where)
            elif isinstance(node.func, ast.Attribute):
                # model.fit(...), TDRModel.load(...), model.predict(...)
                method = getattr(TDRModel, node.func.attr, None)
                if callable(method) and not node.func.attr.startswith("_"):
                    _accepts(method, keywords, where)


def test_the_check_finds_a_stale_keyword(tmp_path):
    page = tmp_path / "page.rst"
    page.write_text(".. code-block:: python\n\n"
                    "    from tdrdenoise import tdr_denoise\n"
                    "    tdr_denoise(image, model, R=1, no_such_option=2)\n")
    (block,) = python_blocks(page)
    tree = ast.parse(block)
    names = tdrdenoise_imports(tree)
    call = [n for n in ast.walk(tree) if isinstance(n, ast.Call)][0]
    with pytest.raises(AssertionError, match="no_such_option"):
        _accepts(names["tdr_denoise"], [k.arg for k in call.keywords], "page")


def _short(block):
    """A block with its trainings cut to 2 steps (the tutorial's numbers need more;
    what is tested here is that the code runs against the API)."""
    return re.sub(r"\bsteps=\d+", "steps=2", block)


@pytest.mark.data
def test_choosing_r_tutorial_runs(tmp_path, monkeypatch):
    """docs/tutorials/choosing_r.rst, its Python blocks in order on the HST exposures
    of ../shared/data (trainings cut short; the demo block is the demo's own test)."""
    pytest.importorskip("matplotlib")
    from .conftest import SHARED_DATA

    blocks = [b for b in python_blocks(DOCS / "tutorials" / "choosing_r.rst")
              if "run_demo" not in b]
    assert len(blocks) == 3
    source = "\n".join(_short(b) for b in blocks).replace(
        '"../shared/data/hst"', repr(str(SHARED_DATA / "hst")))
    monkeypatch.chdir(tmp_path)
    import matplotlib
    matplotlib.use("Agg")
    namespace = {}
    exec(compile(source, "choosing_r.rst", "exec"), namespace)
    assert (tmp_path / "r_sweep.png").is_file()
    assert len(namespace["sweep"]) == len(namespace["Rs"])
