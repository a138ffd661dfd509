"""A damaged keras-tuner state (``tuner/<project>/oracle.json``, a ``trial.json``) is one line
naming the file and the way out; ``tuner.overwrite=true`` starts the search over."""

from __future__ import annotations

import shutil

import pytest

from emnist_bench.errors import exit_on_user_error
from emnist_bench.run import run
from tests.configs import compose_config, smoke_overrides

SEARCH = (
    "model=mlp",
    "tuner=random",
    "tuner.max_trials=1",
    "tuner.epochs=1",
)


@pytest.fixture(scope="module")
def one_search(smoke_data, proxy_cache, tmp_path_factory):
    """A finished one-trial search: (its overrides, its folder)."""
    out = tmp_path_factory.mktemp("search")
    overrides = smoke_overrides(smoke_data, proxy_cache, *SEARCH)
    assert run(compose_config(overrides, output_dir=out))["status"] == "completed"
    return overrides, out


@pytest.fixture
def searched(one_search, tmp_path):
    """A copy of the search: (its overrides, folder, keras-tuner project folder)."""
    overrides, finished = one_search
    out = tmp_path / "search"
    shutil.copytree(finished, out)
    project = out / "tuner" / "mlp_random"
    assert (project / "oracle.json").is_file()
    return overrides, out, project


@pytest.mark.parametrize("damaged", ["oracle.json", "trial_0/trial.json"])
def test_a_garbled_tuner_state_is_one_line_naming_the_file_and_the_fix(searched, damaged, capsys):
    overrides, out, project = searched
    garbled = project / damaged
    garbled.write_text(garbled.read_text()[:40])
    # The same search with one more trial would reload the state.
    cfg = compose_config([*overrides, "tuner.max_trials=2"], output_dir=out)

    with pytest.raises(SystemExit) as exited, exit_on_user_error():
        run(cfg)

    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: {garbled}: the saved search state is damaged (")
    assert err.endswith(
        f"resume from a copy of {project.parent} if you have one, or start the search over "
        "with tuner.overwrite=true\n"
    )


def test_tuner_overwrite_starts_a_damaged_search_over(searched):
    from emnist_bench.tuning.search import ConfigHyperModel, make_tuner

    overrides, out, project = searched
    (project / "oracle.json").write_text("{not json")
    cfg = compose_config([*overrides, "tuner.overwrite=true"], output_dir=out)

    tuner = make_tuner(cfg, ConfigHyperModel(cfg, num_classes=47), out)

    assert tuner.oracle.trials == {}  # the old trials are gone with the damaged state
    assert not (project / "oracle.json").exists()
