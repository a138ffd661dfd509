"""The notebook report: the notebook's four models, each beside the figure it published."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from emnist_bench import config_dir
from emnist_bench.report.notebook import main as notebook_report_main
from emnist_bench.report.notebook import write_notebook_report
from tests.configs import compose_config
from tests.fake_runs import write_run

PUBLISHED = {"mlp_baseline": 0.775, "mlp_notebook_tuned": 0.7878, "cnn_baseline": 0.8612,
             "cnn_notebook_tuned": 0.8705}  # fmt: skip


def write_notebook_run(sweep, model: str, accuracy: float | None, status: str = "completed"):
    """One of the four runs as the notebook_report sweep leaves it (4 epochs, step decay, adam)."""
    return write_run(
        sweep, model, accuracy, model=model, status=status, epochs=4, lr_schedule="step_decay"
    )


def test_notebook_report_sweep_runs_the_four_notebook_models_with_their_schedules():
    cfg = compose_config(["+sweep=notebook_report"])
    assert dict(cfg.notebook_report.published) == PUBLISHED
    sweep = OmegaConf.load(config_dir() / "sweep" / "notebook_report.yaml")
    assert sweep.hydra.mode == "MULTIRUN"
    assert sweep.hydra.sweeper.params["+experiment"].split(",") == list(PUBLISHED)
    for name, schedule, optimizer in [
        ("mlp_baseline", "step_decay", "adam"),
        ("cnn_baseline", "step_decay", "adam"),
        ("mlp_notebook_tuned", "constant", "adam"),
        ("cnn_notebook_tuned", "reduce_on_plateau", "rmsprop"),
    ]:
        job = compose_config(["+sweep=notebook_report", f"+experiment={name}"])
        assert job.model.name == name
        assert (job.lr_schedule.name, job.optimizer.name) == (schedule, optimizer)
        assert job.trainer.epochs == job.notebook_report.epochs[name]
    overridden = compose_config(["+sweep=notebook_report", "+experiment=cnn_baseline",
                                 "notebook_report.epochs.cnn_baseline=3"])  # fmt: skip
    assert overridden.trainer.epochs == 3


def test_notebook_report_sets_each_model_beside_the_notebook_figure(tmp_path):
    write_notebook_run(tmp_path, "cnn_baseline", 0.85)
    write_notebook_run(tmp_path, "mlp_baseline", 0.71)
    write_notebook_run(tmp_path, "cnn_notebook_tuned", None, status="failed")
    table = write_notebook_report(tmp_path, PUBLISHED)
    # Ordered as the notebook lists them; a failed run is a row, not a gap.
    assert list(table["model"]) == ["mlp_baseline", "cnn_baseline", "cnn_notebook_tuned"]
    assert list(table["published_val_accuracy"]) == [0.775, 0.8612, 0.8705]
    assert table.set_index("model").loc["cnn_baseline", "val_accuracy"] == pytest.approx(0.84)
    markdown = (tmp_path / "notebook_report.md").read_text()
    assert "| cnn_baseline | completed | 4 | step_decay | adam | 84.00% | 85.00% | 80.00% |" \
        in markdown  # fmt: skip
    assert "86.12%" in markdown and "emnist-proxy" in markdown
    assert "| cnn_notebook_tuned | failed |" in markdown
    assert (tmp_path / "notebook_report.csv").read_text().count("\n") == 4


def test_notebook_report_command_refuses_a_folder_without_runs(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        notebook_report_main([str(tmp_path)])
    assert exited.value.code == 2
    assert "no runs found" in capsys.readouterr().err
    write_notebook_run(tmp_path, "mlp_notebook_tuned", 0.75)
    notebook_report_main([str(tmp_path)])
    assert (tmp_path / "notebook_report.md").is_file()


def test_a_run_of_a_preset_s_old_name_still_gets_the_notebook_figure(tmp_path):
    write_notebook_run(tmp_path, "cnn_seed_tuned", 0.86)  # made before the rename
    table = write_notebook_report(tmp_path, PUBLISHED)
    assert list(table["published_val_accuracy"]) == [0.8705]
