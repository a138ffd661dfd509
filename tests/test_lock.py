"""requirements.lock pins every dependency that `make` installs, within pyproject.toml's ranges."""

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO_ROOT

# The extras `make lock` resolves (the Makefile's LOCKED_EXTRAS): all but gpu.
LOCKED_EXTRAS = ("cpu", "dev", "track", "slurm", "ray")


def _pins() -> dict[str, str]:
    text = (REPO_ROOT / "requirements.lock").read_text()
    found = re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", text, flags=re.MULTILINE)
    return {canonicalize_name(name): version for name, version in found}


def _declared() -> list[Requirement]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [
        Requirement(text)
        for text in [*project["dependencies"], *(d for e in LOCKED_EXTRAS for d in extras[e])]
    ]


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
