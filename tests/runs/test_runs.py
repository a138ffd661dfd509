"""``python -m emnist_bench.runs ls|diff|tag|note`` on fabricated runs and on one real run, each
command in a fresh process that must not import TensorFlow."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from emnist_bench.report import command as report
from emnist_bench.report.runs import load_summary
from tests.fake_runs import write_run

ROOT = Path(__file__).resolve().parents[2]


def runs_cli(*arguments: str) -> subprocess.CompletedProcess:
    """``python -m emnist_bench.runs ARGUMENTS`` in a fresh process; fails the test when the
    command imported TensorFlow."""
    script = textwrap.dedent(
        f"""
        import sys
        from emnist_bench.runs.command import main
        try:
            main({list(arguments)!r})
        finally:
            assert "tensorflow" not in sys.modules, "the runs command imported TensorFlow"
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},  # no COLUMNS: a pipe, as in a script
    )


def ok(*arguments: str) -> str:
    done = runs_cli(*arguments)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def sweep(tmp_path) -> Path:
    folder = tmp_path / "sweep"
    write_run(folder, "mlp/base/seed=1", 0.80, seed=1)
    write_run(folder, "mlp/base/seed=2", 0.82, seed=2)
    write_run(
        folder, "mlp/optimizer=sgd/seed=1", 0.70, seed=1, optimizer="sgd",
        settings={"optimizer.name": "sgd", "optimizer.learning_rate": 0.01},
    )  # fmt: skip
    write_run(folder, "mlp/optimizer=sgd/seed=2", None, seed=2, optimizer="sgd", status="failed")
    return folder


def test_ls_lists_every_run_with_the_techniques_that_vary(sweep):
    rows = json.loads(ok("ls", str(sweep), "--json"))

    assert [row["run"] for row in rows] == [
        "mlp/base/seed=1", "mlp/base/seed=2", "mlp/optimizer=sgd/seed=1",
        "mlp/optimizer=sgd/seed=2",
    ]  # fmt: skip
    assert "optimizer" in rows[0] and "activation" not in rows[0]  # only what varies
    assert [row["optimizer"] for row in rows] == ["adam", "adam", "sgd", "sgd"]
    assert [row["status"] for row in rows] == ["completed"] * 3 + ["failed"]
    assert rows[1]["test_accuracy"] == pytest.approx(0.82) and rows[3]["test_accuracy"] is None
    assert rows[0]["epochs_run"] == 3 and rows[0]["seed"] == 1

    table = ok("ls", str(sweep))
    assert "4 runs" in table and "82.00%" in table
    # Into a pipe, one line per run at the table's natural width, not cells folded at 80
    # characters; no column for tags or notes that no run has.
    lines = table.splitlines()
    assert any("mlp/optimizer=sgd/seed=1" in line and "70.00%" in line for line in lines)
    header = next(line for line in lines if "run" in line and "status" in line)
    assert "test acc" in header and "tags" not in header and "note" not in header


def test_ls_filters_sorts_and_writes_csv(sweep):
    where = ["--where", "optimizer=adam", "--where", "status=completed"]
    rows = json.loads(ok("ls", str(sweep), *where, "--sort", "-test_accuracy", "--json"))
    assert [row["run"] for row in rows] == ["mlp/base/seed=2", "mlp/base/seed=1"]
    # A config key, and a sort that puts runs without a score last.
    by_rate = json.loads(ok("ls", str(sweep), "--where", "optimizer.learning_rate=0.01", "--json"))
    assert [row["run"] for row in by_rate] == ["mlp/optimizer=sgd/seed=1"]
    ordered = json.loads(ok("ls", str(sweep), "--sort", "test_accuracy", "--json"))
    assert [row["run"] for row in ordered][0] == "mlp/optimizer=sgd/seed=1"
    assert ordered[-1]["test_accuracy"] is None

    table = list(csv.DictReader(io.StringIO(ok("ls", str(sweep), *where, "--csv"))))
    assert [row["run"] for row in table] == ["mlp/base/seed=1", "mlp/base/seed=2"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["ls", "{sweep}", "--where", "optimizer"], "--where 'optimizer': write KEY=VALUE"),
        (["ls", "{sweep}/missing"], "missing: not a folder"),
        (["tag", "{sweep}", "broken"], "not a run folder"),
        (["tag", "{sweep}/mlp/base/seed=1", "novalue"], "tag 'novalue': write KEY=VALUE"),
    ],
)
def test_wrong_arguments_are_one_line_and_exit_2(sweep, arguments, message):
    done = runs_cli(*(a.format(sweep=sweep) for a in arguments))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_diff_shows_the_config_keys_and_metrics_that_differ(sweep):
    a, b = sweep / "mlp/base/seed=1", sweep / "mlp/optimizer=sgd/seed=1"
    found = json.loads(ok("diff", str(a), str(b), "--json"))

    assert found["config"]["optimizer.name"] == ["(unset)", "sgd"]
    assert found["config"]["optimizer.learning_rate"] == ["(unset)", "0.01"]
    assert "trainer.epochs" not in found["config"]  # equal: not shown
    assert found["metrics"]["optimizer"] == ["adam", "sgd"]
    assert found["metrics"]["test_accuracy"] == [pytest.approx(0.8), pytest.approx(0.7)]
    assert not any(key.startswith("per_class") for key in found["metrics"])

    table = ok("diff", str(a), str(b))
    assert "optimizer.name" in table and "test_accuracy" in table and "trainer.epochs" not in table
    same = ok("diff", str(a), str(a))
    assert "same config" in same and len(same.splitlines()) == 1  # long paths do not wrap it


def test_tags_and_notes_stay_in_the_run_folder_and_show_in_ls_and_the_report(sweep):
    run = sweep / "mlp/base/seed=1"
    ok("tag", str(run), "baseline=yes", "owner=ana")
    ok("tag", str(run), "owner=")  # removes it
    ok("note", str(run), "the reference run")

    assert json.loads((run / "annotations.json").read_text()) == {
        "tags": {"baseline": "yes"},
        "note": "the reference run",
    }
    rows = json.loads(ok("ls", str(sweep), "--where", "baseline=yes", "--json"))
    assert [(r["run"], r["tags"], r["note"]) for r in rows] == [
        ("mlp/base/seed=1", {"baseline": "yes"}, "the reference run")
    ]
    summary, _ = load_summary([sweep])
    row = summary.set_index("run_dir").loc["mlp/base/seed=1"]
    assert (row["tags"], row["note"]) == ("baseline=yes", "the reference run")
    page = report.write_report(sweep)["report_html"].read_text()
    assert "baseline=yes; the reference run" in page
    found = json.loads(ok("diff", str(run), str(sweep / "mlp/base/seed=2"), "--json"))
    assert found["annotations"] == {
        "note": ["the reference run", None],
        "tag.baseline": ["yes", "(unset)"],
    }


def test_runs_work_on_a_real_run(cnn_run, tmp_path):
    out, metrics = cnn_run
    rows = json.loads(ok("ls", str(out), "--json"))
    assert len(rows) == 1
    row = rows[0]
    assert (row["model"], row["status"], row["seed"]) == ("cnn", "completed", 42)
    assert row["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert row["epochs_run"] == metrics["epochs_run"] == 1
    assert row["train_seconds"] == pytest.approx(metrics["train_seconds"])

    # The run beside a fabricated one with another optimizer: diff names the real config keys.
    fake = write_run(tmp_path, "fake", 0.5, model="cnn", optimizer="adam")
    found = json.loads(ok("diff", str(out), str(fake), "--json"))
    assert found["config"]["optimizer.name"] == ["rmsprop", "(unset)"]
    assert found["metrics"]["optimizer"] == ["rmsprop", "adam"]
