"""The sweep report on fabricated run folders: rows, ranks, deltas, files, and the HTML page."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from emnist_bench.report import command as report
from emnist_bench.report.effects import best_options, technique_effects
from emnist_bench.report.html import RUN_PLOTS
from emnist_bench.report.runs import load_summary

BASE = {
    "optimizer": "adam",
    "activation": "relu",
    "batch_norm": "off",
    "regularization": "none",
    "dropout": "on",
    "lr_schedule": "constant",
}


def tiny_png(path: Path) -> None:
    """A 2x2 PNG, standing in for one of a run's own plots."""
    from matplotlib.image import imsave

    imsave(path, np.zeros((2, 2, 3)))


def write_run(
    sweep: Path,
    run_dir: str,
    accuracy: float | None,
    *,
    model: str = "mlp",
    status: str = "completed",
    epochs: int = 3,
    error: str | None = None,
    **techniques: str,
) -> Path:
    """A run folder as ``emnist_bench.run.run`` leaves it (metrics, history, config, plots)."""
    out = sweep / run_dir
    (out / "plots").mkdir(parents=True)
    (out / ".hydra").mkdir()
    choices = {**BASE, **techniques}
    metrics = {"status": status, "model": model, "family": model, **choices}
    if status == "failed":
        metrics["error"] = error or "ConfigError: broken"
    else:
        metrics |= {
            "test_accuracy": accuracy,
            "test_loss": 1.5,
            "macro_f1": accuracy - 0.05,
            "val_accuracy": accuracy - 0.01,
            "test_samples": 470,
            "train_samples": 2115,
            "val_samples": 235,
            "epochs_run": epochs,
            "train_seconds": 4.0,
            "params": 1234,
        }
        curve = np.linspace(0.05, accuracy, epochs)
        pd.DataFrame(
            {
                "epoch": range(epochs),
                "loss": 2.0,
                "accuracy": curve,
                "val_loss": 2.1,
                "val_accuracy": curve - 0.01,
                "learning_rate": 1e-3,
                "seconds": 1.0,
            }
        ).to_csv(out / "history.csv", index=False)
        for name in RUN_PLOTS:
            tiny_png(out / "plots" / f"{name}.png")
    (out / "metrics.json").write_text(json.dumps(metrics))
    config = {
        "data": {"root": "/data/emnist-proxy-csv", "split": "balanced", "subset": None},
        "trainer": {"epochs": epochs, "seed": 42},
    }
    OmegaConf.save(OmegaConf.create(config), out / "config.yaml")
    return out


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """A one-factor grid for mlp and cnn with known accuracies, one failure, one divergence."""
    root = tmp_path / "sweep"
    write_run(root, "mlp/base", 0.60)
    write_run(root, "mlp/optimizer=sgd", 0.50, optimizer="sgd")
    write_run(root, "mlp/optimizer=rmsprop", 0.65, optimizer="rmsprop")
    write_run(
        root,
        "mlp/optimizer=adagrad",
        None,
        optimizer="adagrad",
        status="failed",
        error="Traceback (most recent call last):\n  ...\nValueError: bad adagrad",
    )
    write_run(root, "mlp/activation=elu", 0.62, activation="elu")
    write_run(root, "mlp/batch_norm=on", 0.58, batch_norm="on")
    write_run(root, "cnn/base", 0.80, model="cnn")
    write_run(root, "cnn/optimizer=sgd", 0.70, model="cnn", optimizer="sgd")
    write_run(root, "cnn/optimizer=rmsprop", 0.85, model="cnn", optimizer="rmsprop")
    write_run(
        root, "cnn/optimizer=adagrad", 0.02, model="cnn", optimizer="adagrad", status="diverged"
    )
    write_run(root, "cnn/activation=elu", 0.81, model="cnn", activation="elu")
    write_run(root, "cnn/batch_norm=on", 0.86, model="cnn", batch_norm="on")
    return root


def test_summary_has_one_row_per_run_with_techniques_from_metrics(sweep: Path):
    # The folder name says nothing; the row must show what metrics.json says was used.
    write_run(sweep, "mlp/odd-name", 0.55, regularization="l2")
    report.write_report(sweep)
    summary = pd.read_csv(sweep / "summary.csv", keep_default_na=False, na_values=[""])

    required = [
        "run_dir",
        "model",
        "optimizer",
        "activation",
        "lr_schedule",
        "batch_norm",
        "regularization",
        "dropout",
        "status",
        "test_accuracy",
        "macro_f1",
        "val_accuracy",
        "epochs_run",
        "train_seconds",
        "params",
    ]
    assert set(required) <= set(summary.columns)
    assert len(summary) == 13
    assert list(summary["run_dir"][:2]) == ["mlp/base", "mlp/activation=elu"]  # base first
    odd = summary.set_index("run_dir").loc["mlp/odd-name"]
    assert (odd["regularization"], odd["variant"]) == ("l2", "regularization=l2")
    by_dir = summary.set_index("run_dir")
    assert by_dir.loc["mlp/optimizer=adagrad", "status"] == "failed"
    assert by_dir.loc["mlp/optimizer=adagrad", "error"] == "ValueError: bad adagrad"
    assert by_dir.loc["cnn/optimizer=adagrad", "status"] == "diverged"
    # Failed and diverged runs keep their status and have no scores.
    for run in ("mlp/optimizer=adagrad", "cnn/optimizer=adagrad"):
        assert by_dir.loc[run, ["test_accuracy", "macro_f1", "val_accuracy"]].isna().all()
    assert by_dir.loc["cnn/batch_norm=on", "test_accuracy"] == pytest.approx(0.86)


def test_options_are_ranked_with_the_difference_from_the_base(sweep: Path):
    summary, bases = load_summary(sweep)
    effects = technique_effects(summary, bases)

    mlp_opt = effects[(effects.model == "mlp") & (effects.technique == "optimizer")]
    assert list(mlp_opt["option"]) == ["rmsprop", "adam", "sgd", "adagrad"]
    assert list(mlp_opt["rank"][:3]) == [1, 2, 3] and math.isnan(mlp_opt["rank"].iloc[3])
    assert list(mlp_opt["delta"][:3]) == pytest.approx([0.05, 0.0, -0.10])
    assert list(mlp_opt["is_base"]) == [False, True, False, False]

    cnn_bn = effects[(effects.model == "cnn") & (effects.technique == "batch_norm")]
    assert list(cnn_bn["option"]) == ["on", "off"]
    assert cnn_bn["delta"].iloc[0] == pytest.approx(0.06)
    # Groups nobody varied (dropout, regularization, lr_schedule) are left out.
    assert set(effects["technique"]) == {"optimizer", "activation", "batch_norm"}

    best = best_options(effects).set_index(["model", "technique"])
    assert best.loc[("mlp", "optimizer"), "option"] == "rmsprop"
    assert best.loc[("mlp", "batch_norm"), "option"] == "off"  # the base itself won
    assert best.loc[("cnn", "batch_norm"), "option"] == "on"


def test_markdown_ranks_per_model_and_puts_models_side_by_side(sweep: Path):
    report.write_report(sweep)
    text = (sweep / "summary.md").read_text()

    section = text.split("### mlp · optimizer")[1].split("###")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "rank" not in line]
    assert [row.split(" | ")[1] for row in rows] == ["rmsprop", "adam (base)", "sgd", "adagrad"]
    assert "+5.00 pp" in rows[0] and "failed" in rows[3]
    assert "| option | mlp test acc | mlp Δ vs base | mlp rank | cnn test acc |" in text
    side = text.split("### optimizer")[1].split("###")[0]
    assert "| rmsprop | 65.00% | +5.00 pp | 1 | 85.00% | +5.00 pp | 1 |" in side
    assert "| cnn/optimizer=adagrad | diverged |" in text


def test_report_writes_every_file_and_a_self_contained_page(sweep: Path):
    written = report.write_report(sweep)

    names = {"summary.csv", "summary.md", "report.html"}
    assert names <= {p.name for p in sweep.iterdir()}
    plots = {p.name for p in (sweep / "plots").glob("*.png")}
    assert plots == {
        "technique_effects.png",
        "val_curves_mlp.png",
        "val_curves_cnn.png",
        "best_mlp_vs_cnn.png",
    }
    for path in written.values():
        assert path.stat().st_size > 0
    page = (sweep / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(plots)
    assert not re.search(r'(src|href)="(https?:|//)', page)  # nothing to fetch: opens offline
    links = re.findall(r'href="([^"]+)"', page)
    assert "cnn/optimizer=rmsprop/plots/confusion_matrix.png" in links
    assert all((sweep / link).is_file() for link in links)


def test_a_run_that_never_finished_is_reported_from_its_config(sweep: Path):
    from hydra import compose, initialize_config_dir

    from emnist_bench import config_dir

    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=["optimizer=nadam"])
    out = sweep / "mlp" / "optimizer=nadam"
    (out / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, out / "config.yaml")

    summary, _ = load_summary(sweep)
    row = summary.set_index("run_dir").loc["mlp/optimizer=nadam"]
    assert (row["status"], row["optimizer"], row["variant"]) == (
        "unfinished",
        "nadam",
        "optimizer=nadam",
    )


def test_base_of_a_full_factorial_comes_from_the_sweep_config(tmp_path: Path):
    sweep = tmp_path / "full"
    names = {"adam": 0.6, "sgd": 0.5}
    for optimizer, accuracy in names.items():
        for bn, bump in (("off", 0.0), ("on", 0.1)):
            write_run(
                sweep,
                f"mlp/optimizer={optimizer},batch_norm={bn}",
                accuracy + bump,
                optimizer=optimizer,
                batch_norm=bn,
            )
    multirun = {"hydra": {"runtime": {"choices": {**BASE, "variant": "base"}}}}
    OmegaConf.save(OmegaConf.create(multirun), sweep / "multirun.yaml")

    summary, bases = load_summary(sweep)
    assert bases["mlp"] == BASE
    effects = technique_effects(summary, bases).set_index(["technique", "option"])
    assert effects.loc[("batch_norm", "on"), "delta"] == pytest.approx(0.1)
    assert effects.loc[("optimizer", "sgd"), "delta"] == pytest.approx(-0.1)
    assert "optimizer=sgd,batch_norm=on" in set(summary["variant"])  # two factors: no table row


def test_cli_writes_the_report_and_refuses_a_folder_without_runs(sweep: Path, tmp_path, capsys):
    report.main([str(sweep)])
    assert "best for mlp" in capsys.readouterr().out
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit) as exited:
        report.main([str(empty)])
    assert exited.value.code == 2
    assert "no runs found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        report.main([str(tmp_path / "missing")])
    assert exited.value.code == 2


def test_report_and_sweep_modules_do_not_import_tensorflow():
    code = (
        "import sys, emnist_bench.report.command, emnist_bench.sweep.callbacks; "
        "sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


# --- the page in a real browser --------------------------------------------------------------

_IMAGE_PROBE = """<script>
window.addEventListener("load", () => {
  document.body.setAttribute("data-image-widths",
    Array.from(document.images, (image) => image.naturalWidth).join(","));
});
</script></body>"""


def _chromium(*arguments: str, profile: Path) -> subprocess.CompletedProcess:
    command = [
        shutil.which("chromium"),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *arguments,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="chromium not installed (.ci/run installs it)"
)
def test_report_renders_in_headless_chromium_with_every_image_loaded(sweep: Path, tmp_path: Path):
    from matplotlib.image import imread

    report.write_report(sweep)
    page = sweep / "report.html"
    screenshot = tmp_path / "report.png"
    shot = _chromium(
        f"--screenshot={screenshot}",
        "--window-size=1200,2000",
        page.as_uri(),
        profile=tmp_path / "profile-shot",
    )
    assert screenshot.is_file(), shot.stderr[-2000:]
    pixels = imread(screenshot)[..., :3]
    assert pixels.shape[:2] == (2000, 1200)
    assert pixels.std() > 0.05 and (pixels.mean(axis=-1) < 0.9).mean() > 0.02  # not blank

    probe = sweep / "report_probe.html"  # beside the page, so relative links behave the same
    probe.write_text(page.read_text().replace("</body>", _IMAGE_PROBE))
    dom = _chromium(
        "--dump-dom",
        "--virtual-time-budget=10000",
        probe.as_uri(),
        profile=tmp_path / "profile-dom",
    )
    match = re.search(r'data-image-widths="([^"]*)"', dom.stdout)
    assert match, dom.stderr[-2000:]
    widths = [int(width) for width in match[1].split(",")]
    assert len(widths) == 4 and all(width > 0 for width in widths)
