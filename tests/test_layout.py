"""The package's layout rules: no module over 400 lines, no import cycle between modules."""

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "emnist_bench"
MAX_LINES = 400
# The project's layout checker (import cycles at module and function level), beside the checkout.
IMPORT_GRAPH = REPO_ROOT.parent / "shared" / "tools" / "import_graph.py"


def test_no_module_is_over_400_lines():
    lengths = {
        path.relative_to(REPO_ROOT).as_posix(): len(path.read_text().splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert {path: n for path, n in lengths.items() if n > MAX_LINES} == {}


def test_no_import_cycle():
    if not IMPORT_GRAPH.is_file():
        pytest.skip(f"{IMPORT_GRAPH} not found")
    checked = subprocess.run(
        [sys.executable, str(IMPORT_GRAPH), str(PACKAGE), "--max-lines", str(MAX_LINES)],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "cycles=0" in checked.stdout
