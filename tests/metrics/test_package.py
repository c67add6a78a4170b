"""Tests of the tdrdenoise.metrics subpackage as a whole."""
from pathlib import Path

import pytest

from tdrdenoise import metrics

#: Every name tdrdenoise.metrics exported before it became a subpackage.
NAMES_BEFORE = ["noise_level", "absolute_error", "mean_squared_error", "pearson_cc",
                "linear_coefficient", "residual_flux", "restored_fraction", "power_spectrum",
                "deviation_frequency", "snr_map", "psnr", "ssim", "evaluate", "r_sweep",
                "detect_sources"]
PACKAGE = Path(metrics.__file__).parent


def test_all_is_complete():
    for name in metrics.__all__:
        assert callable(getattr(metrics, name))


def test_old_names_still_import():
    namespace = {}
    exec(f"from tdrdenoise.metrics import {', '.join(NAMES_BEFORE)}", namespace)
    assert set(NAMES_BEFORE) <= set(metrics.__all__)
    assert len(set(metrics.__all__)) == len(metrics.__all__)  # no name twice
    assert metrics.FREQUENCY_UNIT.to_string() == "1 / pix"


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_modules_are_small(path):
    assert len(path.read_text().splitlines()) <= 400


def test_every_name_has_one_api_page():
    """docs/reference/metrics_<module>_api.rst documents each module's names, once."""
    reference = PACKAGE.parents[1] / "docs" / "reference"
    if not reference.is_dir():
        pytest.skip("no docs/reference beside the package")
    documented = {}
    for module in ["noise", "errors", "flux", "damage", "spectra", "snr", "reference",
                   "evaluation", "sources"]:
        page = (reference / f"metrics_{module}_api.rst").read_text()
        names = [line.split(":include:")[1].strip() for line in page.splitlines()
                 if ":include:" in line]
        assert sorted(names) == sorted(getattr(metrics, module).__all__), module
        for name in names:
            documented[name] = documented.get(name, 0) + 1
    assert documented == {name: 1 for name in metrics.__all__}
