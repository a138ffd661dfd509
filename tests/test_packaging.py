"""The package finds conf/ when installed from a wheel, not only from a source checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory) -> Path:
    """The project built as a wheel and unpacked as pip would install it (pure Python)."""
    work = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(work), str(REPO_ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = work.glob("emnist_bench-*.whl")
    site = work / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def run_installed(site: Path, *code_or_args: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [sys.executable, *code_or_args], capture_output=True, text=True, cwd=site.parent,
        env=environment, timeout=120,
    )  # fmt: skip


def test_wheel_ships_every_config(installed_wheel):
    shipped = {p.relative_to(installed_wheel / "emnist_bench" / "conf")
               for p in (installed_wheel / "emnist_bench" / "conf").rglob("*.yaml")}  # fmt: skip
    in_repo = {p.relative_to(REPO_ROOT / "conf") for p in (REPO_ROOT / "conf").rglob("*.yaml")}
    assert shipped == in_repo


def test_installed_package_composes_from_its_own_conf(installed_wheel):
    result = run_installed(
        installed_wheel,
        "-c",
        "import emnist_bench; print(emnist_bench.__file__); print(emnist_bench.config_dir())",
    )
    assert result.returncode == 0, result.stderr
    module_file, conf = result.stdout.split()
    assert Path(module_file).is_relative_to(installed_wheel)
    assert Path(conf) == installed_wheel / "emnist_bench" / "conf"
    composed = run_installed(
        installed_wheel, "-m", "emnist_bench", "--cfg", "job", "+experiment=cnn_notebook_tuned"
    )
    assert composed.returncode == 0, composed.stderr
    assert "name: cnn_notebook_tuned" in composed.stdout and "name: rmsprop" in composed.stdout


def test_wheel_ships_every_module_of_the_source_tree(installed_wheel):
    package = REPO_ROOT / "emnist_bench"
    in_repo = {p.relative_to(package) for p in package.rglob("*.py")}
    shipped = {p.relative_to(installed_wheel / "emnist_bench")
               for p in (installed_wheel / "emnist_bench").rglob("*.py")}  # fmt: skip
    assert in_repo <= shipped
    assert (installed_wheel / "emnist_bench/report/templates/report.html.j2").is_file()
    shown = run_installed(installed_wheel, "-m", "emnist_bench.report", "--help")
    assert shown.returncode == 0, shown.stderr
