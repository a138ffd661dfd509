"""requirements.lock pins every dependency that `make` installs, within pyproject.toml's ranges."""

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO_ROOT

# The extras `make lock` resolves (the Makefile's LOCKED_EXTRAS): all but gpu.
LOCKED_EXTRAS = ("cpu", "dev", "track", "slurm", "ray")
# The platform it resolves them for (the Makefile's --python-platform).
LOCKED_PLATFORM = {"sys_platform": "linux", "platform_machine": "x86_64", "python_version": "3.11"}


def _pins() -> dict[str, str]:
    text = (REPO_ROOT / "requirements.lock").read_text()
    found = re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", text, flags=re.MULTILINE)
    return {canonicalize_name(name): version for name, version in found}


def _project() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def _applying(texts: list[str], environment: dict[str, str]) -> list[Requirement]:
    """The requirements among ``texts`` whose markers hold on ``environment``'s platform."""
    requirements = [Requirement(text) for text in texts]
    return [r for r in requirements if r.marker is None or r.marker.evaluate(environment)]


def _declared() -> list[Requirement]:
    project = _project()
    extras = project["optional-dependencies"]
    texts = [*project["dependencies"], *(d for e in LOCKED_EXTRAS for d in extras[e])]
    return _applying(texts, LOCKED_PLATFORM)


def test_the_lock_pins_each_declared_dependency_within_its_range():
    pins = _pins()
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in requirements.lock: run make lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, outside {requirement}: run make lock"
        )


def test_the_makefile_installs_through_the_lock_the_extras_it_was_resolved_for():
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "-c $(LOCK)" in makefile
    assert f"LOCKED_EXTRAS := {' '.join(LOCKED_EXTRAS)}" in makefile


# Where PyPI has which TensorFlow 2.21 wheel for CPython 3.11 (its file list, 2026-12-07):
# tensorflow-cpu for Linux x86-64 and Windows; tensorflow for those and Apple silicon and Linux
# on ARM, where it is the CPU build.
CPU_WHEELS = {
    ("linux", "x86_64"): "tensorflow-cpu",
    ("win32", "AMD64"): "tensorflow-cpu",
    ("darwin", "arm64"): "tensorflow",
    ("linux", "aarch64"): "tensorflow",
}


@pytest.mark.parametrize(("platform", "machine"), CPU_WHEELS)
def test_the_cpu_extra_asks_for_one_tensorflow_that_has_a_wheel_there(platform, machine):
    environment = {"sys_platform": platform, "platform_machine": machine, "python_version": "3.11"}
    asked = _applying(_project()["optional-dependencies"]["cpu"], environment)
    assert [r.name for r in asked] == [CPU_WHEELS[platform, machine]]
