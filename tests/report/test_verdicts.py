"""What stands behind each row of the report: cohorts that never pool unlike runs, partial
failures, runs never compared, duplicates counted once, and Holm's family of real comparisons."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emnist_bench.report import command as report
from emnist_bench.report.effects import technique_effects
from emnist_bench.report.runs import load_summary
from tests.fake_runs import write_run

SEEDS = (1, 2, 3)
PLAIN = {"augment.name": "none"}


def grid(root: Path, **settings: object) -> None:
    """A base and two dropout/optimizer variants of the MLP, three seeds each."""
    config = {"augment.name": settings.pop("augment", "none"), **settings}
    for seed in SEEDS:
        write_run(root, f"mlp/base/seed={seed}", 0.60, seed=seed, settings=config)
        write_run(root, f"mlp/dropout=off/seed={seed}", 0.66, seed=seed, dropout="off",
                  settings=config)  # fmt: skip
        write_run(root, f"mlp/optimizer=sgd/seed={seed}", 0.55, seed=seed, optimizer="sgd",
                  settings=config)  # fmt: skip


def effects_of(*folders: Path) -> pd.DataFrame:
    summary, bases = load_summary(list(folders))
    return technique_effects(summary, bases)


def test_runs_that_differ_in_any_other_setting_are_never_pooled(tmp_path: Path):
    grid(tmp_path / "plain")
    grid(tmp_path / "light", augment="light", **{"optimizer.learning_rate": 0.001})
    effects = effects_of(tmp_path / "plain", tmp_path / "light")
    # Each cohort is named by what sets it apart, and compared within itself: three seeds
    # each, never six.
    assert set(effects["model"]) == {"mlp (augment=none)", "mlp (augment=light)"}
    assert (effects["n_runs"] == 3).all()
    assert (effects.loc[~effects["is_base"], "paired_seeds"] == 3).all()


def test_options_of_one_name_but_other_settings_are_other_options(tmp_path: Path):
    root = tmp_path / "sweep"
    for seed in SEEDS:
        write_run(root, f"mlp/base/seed={seed}", 0.60, seed=seed,
                  settings={"optimizer.learning_rate": 0.001})  # fmt: skip
        write_run(root, f"mlp/fast/seed={seed}", 0.62, seed=seed,
                  settings={"optimizer.learning_rate": 0.003})  # fmt: skip
    summary, _ = load_summary([root])
    assert set(summary["optimizer"]) == {"adam (learning_rate=0.001)", "adam (learning_rate=0.003)"}
    assert (summary["cohort"] == "").all()


def test_a_variant_with_failed_seeds_is_unstable_not_better(tmp_path: Path):
    root = tmp_path / "sweep"
    grid(root)
    # dropout=off: seed 1 completed (and much better), seeds 2 and 3 did not.
    for seed, status in ((2, "diverged"), (3, "failed")):
        for path in (root / f"mlp/dropout=off/seed={seed}").iterdir():
            if path.is_file():
                path.unlink()
        write_run(root, f"mlp/dropout=off/seed={seed}/again", None, seed=seed, dropout="off",
                  status=status, settings=PLAIN)  # fmt: skip
    effects = effects_of(root).set_index(["technique", "option"])
    row = effects.loc[("dropout", "off")]
    assert row["verdict"] == "unstable (2 of 3 seeds failed)"
    assert (row["n_runs"], row["n_completed"]) == (3, 1)
    assert pd.isna(row["p_adjusted"]) and pd.isna(row["rank"])


def test_runs_without_predictions_are_not_compared(tmp_path: Path):
    root = tmp_path / "sweep"
    grid(root)
    for seed in SEEDS:
        (root / f"mlp/optimizer=sgd/seed={seed}/predictions.npz").unlink()
    effects = effects_of(root).set_index(["technique", "option"])
    row = effects.loc[("optimizer", "sgd")]
    assert row["verdict"] == "not compared"
    assert row["paired_seeds"] == 0 and row["unpaired_seeds"] == "1, 2, 3"
    assert pd.isna(row["p_adjusted"])
    assert effects.loc[("dropout", "off"), "verdict"] == "better"


def test_a_copied_run_counts_once_and_is_listed(tmp_path: Path):
    root = tmp_path / "sweep"
    grid(root)
    before = effects_of(root).set_index(["technique", "option"])
    # The same seed of the same config again, under another name.
    write_run(root, "mlp/dropout=off/copy-of-seed=1", 0.66, seed=1, dropout="off",
              settings=PLAIN)  # fmt: skip
    summary, _ = load_summary([root])
    copies = summary[summary["duplicate_of"].notna()]
    assert list(copies["run_dir"]) == ["mlp/dropout=off/seed=1"] or list(copies["run_dir"]) == [
        "mlp/dropout=off/copy-of-seed=1"
    ]
    after = effects_of(root).set_index(["technique", "option"])
    assert after.loc[("dropout", "off"), "n_runs"] == 3
    assert after.loc[("dropout", "off"), "p_value"] == before.loc[("dropout", "off"), "p_value"]
    text = (report.write_report(root)["summary_md"]).read_text()
    assert "1 run repeat another run's config and seed and count once" in text


def test_a_copy_made_after_a_key_was_added_with_null_is_still_a_copy(tmp_path: Path):
    root = tmp_path / "sweep"
    grid(root)
    write_run(root, "mlp/dropout=off/copy-of-seed=1", 0.66, seed=1, dropout="off",
              settings={**PLAIN, "optimizer.weight_decay": None})  # fmt: skip
    summary, _ = load_summary([root])
    assert summary["duplicate_of"].notna().sum() == 1


def test_a_run_made_before_a_key_existed_counts_as_made_with_its_default(tmp_path: Path):
    # trainer.label_smoothing came with 0.0, hard labels as before: runs whose config lacks it
    # are pooled with runs at 0.0 and never with runs that smooth, and a copy at 0.0 is a copy.
    grid(tmp_path / "old")
    grid(tmp_path / "smoothed", **{"trainer.label_smoothing": 0.1})
    effects = effects_of(tmp_path / "old", tmp_path / "smoothed")
    assert set(effects["model"]) == {
        "mlp (trainer.label_smoothing=0.0)",
        "mlp (trainer.label_smoothing=0.1)",
    }
    assert (effects["n_runs"] == 3).all()
    write_run(tmp_path / "old", "mlp/dropout=off/copy-of-seed=1", 0.66, seed=1, dropout="off",
              settings={**PLAIN, "trainer.label_smoothing": 0.0})  # fmt: skip
    summary, _ = load_summary([tmp_path / "old"])
    assert summary["duplicate_of"].notna().sum() == 1


def test_holm_adjusts_for_the_real_comparisons_only_and_says_how_many(tmp_path: Path):
    root = tmp_path / "sweep"
    grid(root)
    for seed in SEEDS:
        write_run(root, f"mlp/optimizer=adagrad/seed={seed}", None, seed=seed,
                  optimizer="adagrad", status="failed", settings=PLAIN)  # fmt: skip
        write_run(root, f"mlp/activation=tanh/seed={seed}", 0.01, seed=seed,
                  activation="tanh", settings=PLAIN)  # fmt: skip
    effects = effects_of(root)
    family = effects[effects["p_adjusted"].notna()]
    assert sorted(family["option"]) == ["off", "sgd"]
    assert set(effects.loc[effects["p_adjusted"].isna(), "verdict"]) == {
        "base",
        "failed",
        "collapsed",
    }
    text = (report.write_report(root)["summary_md"]).read_text()
    assert "Comparisons adjusted for (Holm): 2." in text


def test_options_that_always_move_together_are_not_estimable(tmp_path: Path):
    from emnist_bench.report.factorial import fit_all, tables

    root = tmp_path / "aliased"
    # dropout=off only ever comes with batch_norm=on: the design cannot tell them apart.
    cells = [("adam", "off", "on", 0.60), ("sgd", "off", "on", 0.50),
             ("adam", "on", "off", 0.66), ("sgd", "on", "off", 0.56)]  # fmt: skip
    for seed in SEEDS:
        for optimizer, bn, dropout, accuracy in cells:
            write_run(root, f"mlp/{optimizer},{bn},{dropout}/seed={seed}",
                      accuracy + seed / 1000, seed=seed, optimizer=optimizer, batch_norm=bn,
                      dropout=dropout)  # fmt: skip
    summary, bases = load_summary([root])
    (fitted,) = fit_all(summary, bases)
    main = fitted.effects.set_index(["technique", "option"])
    assert main.loc[("optimizer", "sgd"), "effect"] == pytest.approx(-0.1, abs=1e-6)
    assert np.isnan(main.loc[("batch_norm", "on"), "effect"])
    # Which dropout option is the base is the data's choice here (a tie): either is the alias.
    assert bases["mlp"]["batch_norm"] == "off"
    varied = "on" if bases["mlp"]["dropout"] == "off" else "off"
    assert (
        main.loc[("batch_norm", "on"), "note"] == f"not estimable (aliased with dropout={varied})"
    )
    assert main.loc[("dropout", varied), "note"] == "not estimable (aliased with batch_norm=on)"
    shares = fitted.shares.set_index("technique")["share"]
    assert np.isnan(shares["batch_norm"]) and np.isnan(shares["dropout"])
    (_, _, rows), (shares_title, _, _), _ = tables(fitted)
    note = f"not estimable (aliased with dropout={varied})"
    assert ["batch_norm", "on", "", "", note] in rows
    assert "type-II" in shares_title and "need not sum to 1" in shares_title


def test_a_seed_the_base_lacks_is_reported_unpaired(tmp_path: Path):
    root = tmp_path / "sweep"
    grid(root)
    write_run(root, "mlp/dropout=off/seed=4", 0.66, seed=4, dropout="off", settings=PLAIN)
    effects = effects_of(root).set_index(["technique", "option"])
    row = effects.loc[("dropout", "off")]
    assert (row["n_completed"], row["paired_seeds"], row["unpaired_seeds"]) == (4, 3, "4")
    text = (report.write_report(root)["summary_md"]).read_text()
    assert "| 4 (seed 4 unpaired) |" in text
