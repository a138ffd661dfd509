"""The docs site builds without a warning, and its configuration reference matches conf/."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_configuration_reference_is_up_to_date():
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "gen_config_reference.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "configuration" / "index.html").is_file()
    assert (tmp_path / "statistics" / "index.html").is_file()


def test_readme_is_a_short_guide_whose_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert len(readme.splitlines()) <= 300
    assert "make test" in readme and "\nmake test\n" in ci
    assert "\nmake lint\n" in ci


def make_dry_run(*args: str) -> str:
    result = subprocess.run(
        ["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.skipif(
    subprocess.run(["which", "make"], capture_output=True).returncode, reason="no make"
)
def test_make_run_installs_only_tensorflow_unless_engines_are_asked_for(tmp_path):
    venv = f"VENV={tmp_path / 'venv'}"  # an empty venv: every install step is printed
    assert '-e ".[cpu]"' in make_dry_run("run", venv)
    assert '-e ".[cpu,ray]"' in make_dry_run("run", venv, "ENGINES=ray")
    assert '-e ".[cpu,dev,track,slurm,ray]"' in make_dry_run("test", venv)
    assert '-e ".[cpu,dev,track]"' in make_dry_run("test", venv, "TEST_ENGINES=")
