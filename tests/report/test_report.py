"""The sweep report on fabricated run folders: rows, ranks, deltas, files, and the HTML page."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from scipy import stats

from emnist_bench.report import command as report
from emnist_bench.report import statistics
from emnist_bench.report.effects import best_options, technique_effects
from emnist_bench.report.factorial import fit_all
from emnist_bench.report.html import RUN_PLOTS
from emnist_bench.report.runs import load_summary
from tests.chromium import CHROMIUM, FLAGS
from tests.configs import compose_config
from tests.fake_runs import BASE, write_run


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


def test_options_get_intervals_verdicts_and_ranks_only_where_detectable(sweep: Path):
    summary, bases = load_summary([sweep])
    effects = technique_effects(summary, bases)

    mlp_opt = effects[(effects.model == "mlp") & (effects.technique == "optimizer")]
    assert list(mlp_opt["option"]) == ["rmsprop", "adam", "sgd", "adagrad"]
    assert list(mlp_opt["verdict"]) == ["better", "base", "worse", "failed"]
    assert list(mlp_opt["rank"][:3]) == [1, 2, 3] and math.isnan(mlp_opt["rank"].iloc[3])
    rmsprop, sgd = mlp_opt.iloc[0], mlp_opt.iloc[2]
    assert (rmsprop["delta"], sgd["delta"]) == pytest.approx((0.05, -0.10), abs=0.002)
    assert rmsprop["delta_ci_low"] > 0 and sgd["delta_ci_high"] < 0
    # One seed: the paired t-test on the per-image differences (the fabricated runs are nested,
    # so the better one is right on 24 more images and wrong on none the other got right).
    differences = np.r_[np.ones(round(0.65 * 470) - round(0.60 * 470)), np.zeros(446)]
    assert rmsprop["p_value"] == pytest.approx(stats.ttest_1samp(differences, 0).pvalue)
    assert list(mlp_opt["is_base"]) == [False, True, False, False]
    # One seed: the accuracy (from its predictions) has Wilson's interval on the 470 images.
    assert (rmsprop["ci_low"], rmsprop["ci_high"]) == pytest.approx(
        statistics.wilson(rmsprop["test_accuracy"], 470)
    )

    cnn_bn = effects[(effects.model == "cnn") & (effects.technique == "batch_norm")]
    assert list(cnn_bn["option"]) == ["on", "off"]
    assert cnn_bn["delta"].iloc[0] == pytest.approx(0.06, abs=0.002)
    cnn_opt = effects[(effects.model == "cnn") & (effects.technique == "optimizer")]
    assert cnn_opt.set_index("option").loc["adagrad", "verdict"] == "diverged"
    # Groups nobody varied (dropout, regularization, lr_schedule) are left out.
    assert set(effects["technique"]) == {"optimizer", "activation", "batch_norm"}

    best = best_options(effects).set_index(["model", "technique"])
    assert best.loc[("mlp", "optimizer"), "option"] == "rmsprop"
    assert best.loc[("mlp", "batch_norm"), "option"] == "off"  # the base itself won
    assert best.loc[("cnn", "batch_norm"), "option"] == "on"


def test_noise_collapse_and_no_op_are_told_apart_from_real_effects(tmp_path: Path):
    sweep = tmp_path / "verdicts"
    for seed in (1, 2):
        write_run(sweep, f"mlp/base/seed={seed}", 0.60, seed=seed, learning_rates=[1e-3] * 3)
        # Two points better on average, but right on a different random set of images: noise.
        write_run(sweep, f"mlp/activation=elu/seed={seed}", 0.62, seed=seed, independent=seed,
                  activation="elu")  # fmt: skip
        write_run(sweep, f"mlp/optimizer=sgd/seed={seed}", 0.03, seed=seed, optimizer="sgd")
        # A schedule that never moved the rate from the base's: whatever its scores, a no-op.
        write_run(sweep, f"mlp/lr_schedule=step_decay/seed={seed}", 0.61, seed=seed,
                  lr_schedule="step_decay", learning_rates=[1e-3] * 3)  # fmt: skip
        write_run(sweep, f"mlp/lr_schedule=cosine/seed={seed}", 0.70, seed=seed,
                  lr_schedule="cosine", learning_rates=[1e-3, 5e-4, 1e-4])  # fmt: skip
    summary, bases = load_summary([sweep])
    effects = technique_effects(summary, bases).set_index(["technique", "option"])
    assert effects.loc[("activation", "elu"), "verdict"] == "no detectable difference"
    assert math.isnan(effects.loc[("activation", "elu"), "rank"])  # not ranked
    assert effects.loc[("optimizer", "sgd"), "verdict"] == "collapsed"  # 3% <= 2 / 47
    assert effects.loc[("lr_schedule", "step_decay"), "verdict"] == "no-op"
    assert effects.loc[("lr_schedule", "cosine"), "verdict"] == "better"
    assert (effects["n_seeds"] == 2).all()
    # Two seeds that agree exactly add nothing: the test images alone set the interval, as wide
    # as one seed's (the images, not the seeds x images, are the unit).
    base = effects.loc[("activation", "relu")]
    half = stats.t.ppf(0.975, 469) * math.sqrt(0.6 * 0.4 / 469)
    assert (base["ci_low"], base["ci_high"]) == pytest.approx((0.6 - half, 0.6 + half), abs=2e-3)
    # Holm's family holds only the real comparisons: elu and cosine, not the base, the
    # collapsed sgd or the no-op step_decay.
    assert effects["p_adjusted"].notna().sum() == 2


def test_effects_csv_has_the_documented_columns(sweep: Path):
    report.write_report(sweep)
    effects = pd.read_csv(sweep / "effects.csv")
    assert list(effects.columns) == [
        "model", "technique", "option", "n_seeds", "mean_test_accuracy", "ci_low", "ci_high",
        "delta_vs_base", "delta_ci_low", "delta_ci_high", "p_value", "p_adjusted", "verdict",
        "n_runs", "n_completed", "n_paired_seeds", "unpaired_seeds", "seeds_needed",
    ]  # fmt: skip
    adjusted = effects.dropna(subset=["p_value"])
    assert (adjusted["p_adjusted"] >= adjusted["p_value"]).all()
    assert len(effects) == 16  # per model: 4 optimizers, 2 activations, 2 batch norms


def test_a_folder_of_one_run_or_of_runs_differing_in_two_groups_is_reported(tmp_path: Path):
    one = tmp_path / "one"
    write_run(one, "run", 0.6)
    assert report.write_report(one)["report_html"].is_file()
    two = tmp_path / "two"
    write_run(two, "a", 0.6)
    write_run(two, "b", 0.7, optimizer="sgd", dropout="off")
    written = report.write_report(two)
    assert pd.read_csv(written["effects_csv"]).empty
    assert len(pd.read_csv(written["summary_csv"])) == 2


def test_several_folders_merge_and_differently_trained_runs_are_not_pooled(tmp_path: Path):
    short, long = tmp_path / "short", tmp_path / "long"
    for folder, epochs in ((short, 1), (long, 3)):
        write_run(folder, "mlp/base", 0.5 + epochs / 20, epochs=epochs)
        write_run(folder, "mlp/dropout=off", 0.6 + epochs / 20, epochs=epochs, dropout="off")
    out = tmp_path / "both"
    written = report.write_report([short, long], out=out)
    summary = pd.read_csv(written["summary_csv"])
    assert sorted(summary["run_dir"])[:2] == ["long/mlp/base", "long/mlp/dropout=off"]
    effects = pd.read_csv(written["effects_csv"])
    assert set(effects["model"]) == {"mlp (trainer.epochs=1)", "mlp (trainer.epochs=3)"}
    text = (out / "summary.md").read_text()
    assert "The runs differ in epochs (1, 3): compared only within the same epochs." in text


def test_markdown_shows_intervals_verdicts_and_what_the_sweep_can_detect(sweep: Path):
    report.write_report(sweep)
    text = (sweep / "summary.md").read_text()
    assert "Smallest difference this sweep could detect: about" in text

    section = text.split("### mlp · optimizer")[1].split("###")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "rank" not in line]
    assert [row.split(" | ")[1] for row in rows] == ["rmsprop", "adam (base)", "sgd", "adagrad"]
    assert "| 1 | rmsprop | 1 | 65.11% [60.7, 69.3] |" in rows[0] and "| better |" in rows[0]
    assert "+5.11 pp [+" in rows[0]
    assert "| failed |" in rows[3]
    header = "| option | mlp test acc [95% CI] | mlp Δ vs base [95% CI] | mlp verdict |"
    assert header in text
    assert "| cnn/optimizer=adagrad | diverged |" in text
    assert "Where the best run of each model errs" not in text  # runs without confused pairs


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


class _PageParser(HTMLParser):
    """The tags of a page and the text of its table cells."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.cells: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "td":
            self._in_cell = True
            self.cells.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.cells[-1] += data


def test_page_escapes_run_folders_and_techniques_and_embeds_every_image(sweep: Path):
    evil_dir = "mlp/<script>alert('dir')"
    evil_option = '<script>alert("option")</script>'
    write_run(sweep, evil_dir, 0.61, optimizer=evil_option)
    report.write_report(sweep)
    page = (sweep / "report.html").read_text()

    assert "<script" not in page.lower()
    assert "&lt;script&gt;" in page
    parsed = _PageParser()
    parsed.feed(page)
    assert "script" not in {tag for tag, _ in parsed.tags}
    # The names come back unchanged as the text of their cells, not as markup.
    assert evil_dir in parsed.cells
    assert evil_option in parsed.cells
    images = [attrs for tag, attrs in parsed.tags if tag == "img"]
    assert len(images) == 4
    assert all(attrs["src"].startswith("data:image/png;base64,") for attrs in images)
    hrefs = [attrs["href"] for tag, attrs in parsed.tags if tag == "a"]
    evil_links = [href for href in hrefs if "script" in href]
    assert len(evil_links) == len(RUN_PLOTS) + 1  # its plots and metrics.json, percent-encoded
    assert all("<" not in href and (sweep / unquote(href)).is_file() for href in hrefs)
    # Base rows and bad statuses keep their classes.
    assert ("tr", {"class": "base"}) in parsed.tags
    td_classes = {attrs.get("class") for tag, attrs in parsed.tags if tag == "td"}
    assert {"failed", "diverged"} <= td_classes


def test_the_best_run_of_each_model_shows_where_it_errs(sweep: Path):
    write_run(sweep, "mlp/dropout=on", 0.66, dropout="on", confused={"0/O": 32, "1/l": 16})
    write_run(sweep, "cnn/dropout=on", 0.84, model="cnn", dropout="on", confused={"F/f": 9})
    write_run(sweep, "cnn/dropout=off", 0.87, model="cnn", confused={"0/O": 7, "9/q": 5})
    written = report.write_report(sweep)
    section = written["summary_md"].read_text().split("## Where the best run")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "pair" not in line]
    # mlp's best run has pairs; cnn's best (87%) is chosen over the 84% one, whose F/f is not.
    assert rows == [
        "| mlp | 0/O | 32 | 20% | mlp/dropout=on |",  # of its 160 errors on 470 images
        "| mlp | 1/l | 16 | 10% | mlp/dropout=on |",
        "| cnn | 0/O | 7 | 11% | cnn/dropout=off |",
        "| cnn | 9/q | 5 | 8% | cnn/dropout=off |",
    ]
    parsed = _PageParser()
    parsed.feed(written["report_html"].read_text())
    assert {"9/q", "1/l", "cnn/dropout=off"} <= set(parsed.cells)
    assert "F/f" not in parsed.cells


def test_a_run_that_never_finished_is_reported_from_its_config(sweep: Path):
    cfg = compose_config(["optimizer=nadam"])
    out = sweep / "mlp" / "optimizer=nadam"
    (out / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, out / "config.yaml")

    summary, _ = load_summary([sweep])
    row = summary.set_index("run_dir").loc["mlp/optimizer=nadam"]
    assert (row["status"], row["optimizer"], row["variant"]) == (
        "unfinished",
        "nadam",
        "optimizer=nadam",
    )


def test_metrics_edited_into_nonsense_count_as_unfinished_and_the_report_is_written(sweep: Path):
    """A completed run's metrics.json whose accuracy is not a number, and a folder of another
    tool's metrics.json with no techniques or config: neither stops the report."""
    edited = sweep / "mlp" / "optimizer=sgd" / "metrics.json"
    edited.write_text(json.dumps({**json.loads(edited.read_text()), "test_accuracy": "abc"}))
    foreign = sweep / "other" / "run"
    foreign.mkdir(parents=True)
    (foreign / "metrics.json").write_text('{"status": "completed", "test_accuracy": 0.5}')

    summary, _ = load_summary([sweep])
    rows = summary.set_index("run_dir")
    assert rows.loc["mlp/optimizer=sgd", "status"] == "unfinished"
    assert pd.isna(rows.loc["mlp/optimizer=sgd", "test_accuracy"])
    assert rows.loc["other/run", "variant"] == "run"  # no techniques: shown by folder name
    assert report.write_report(sweep)["report_html"].is_file()


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

    summary, bases = load_summary([sweep])
    assert bases["mlp"] == BASE
    effects = technique_effects(summary, bases).set_index(["technique", "option"])
    assert effects.loc[("batch_norm", "on"), "delta"] == pytest.approx(0.1, abs=0.002)
    assert effects.loc[("optimizer", "sgd"), "delta"] == pytest.approx(-0.1, abs=0.002)
    assert "optimizer=sgd,batch_norm=on" in set(summary["variant"])  # two factors: no table row
    # Several groups at once: the additive model recovers both main effects, no interaction.
    (fitted,) = fit_all(summary, bases)
    main = fitted.effects.set_index(["technique", "option"])
    assert main.loc[("batch_norm", "on"), "effect"] == pytest.approx(0.1, abs=0.003)
    assert main.loc[("optimizer", "sgd"), "effect"] == pytest.approx(-0.1, abs=0.003)
    shares = fitted.shares.set_index("technique")["share"]
    assert shares["batch_norm"] == pytest.approx(0.5, abs=0.02)
    assert shares.sum() == pytest.approx(1.0, abs=0.02)
    report.write_report(sweep)
    assert (sweep / "plots" / "parallel_mlp.png").is_file()
    assert "additive model" in (sweep / "summary.md").read_text()


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
    command = [CHROMIUM, "--headless", *FLAGS, f"--user-data-dir={profile}", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (.ci/run installs it)")
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
