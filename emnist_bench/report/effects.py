"""One factor at a time: each option of each technique against its model's base, with how sure.

An option's runs are those equal to the base in every other technique and every other setting
(their cohort, ``runs.cohorts``), one per seed. Each is paired with the base run of the same
seed on the same test images (``predictions.npz``); the difference, with the test images and
the seeds as the units of evidence (``statistics.paired_difference``), gets a 95% interval, a
p-value and, after Holm's correction over the comparisons the report really makes, a verdict:

* ``better`` / ``worse``: the adjusted p-value is below 5% and the interval excludes zero;
* ``no detectable difference``: otherwise; the difference is inside the noise, not ranked (and
  ``seeds_needed`` says how many seeds would detect a difference of that size);
* ``unstable (k of n seeds failed)``: some seeds completed, others failed or diverged; no
  better/worse verdict on the seeds that happened to survive;
* ``not compared``: no seed could be paired with the base (no predictions, or other test
  images): nothing was measured, which is not the same as no difference;
* ``collapsed``: mean test accuracy at most twice chance (1 / classes);
* ``no-op``: its training was the base's (a schedule whose rate never moved from the base's,
  or the same predictions and history as the base, seed for seed);
* ``failed`` / ``diverged``: no run of the option completed;
* ``base``: the reference itself.

Only ``better``, ``worse`` and ``no detectable difference`` rows are comparisons: the others
leave Holm's family (``p_adjusted`` is blank), so they cost the real comparisons no power.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emnist_bench.report import statistics
from emnist_bench.report.runs import models_in, order_key
from emnist_bench.rundir import COMPLETED, HISTORY, PREDICTIONS, read_predictions
from emnist_bench.techniques import TECHNIQUE_GROUPS

BETTER, WORSE, SAME = "better", "worse", "no detectable difference"
COLLAPSED, NO_OP, FAILED, DIVERGED = "collapsed", "no-op", "failed", "diverged"
NOT_COMPARED, UNSTABLE = "not compared", "unstable"
BASE_VERDICT = "base"
RANKED = (BASE_VERDICT, BETTER, WORSE)  # the verdicts a table ranks
DEFAULT_CLASSES = 47
# effects.csv: one row per model x technique x option.
CSV_COLUMNS = {
    "model": "model", "technique": "technique", "option": "option", "n_seeds": "n_seeds",
    "test_accuracy": "mean_test_accuracy", "ci_low": "ci_low", "ci_high": "ci_high",
    "delta": "delta_vs_base", "delta_ci_low": "delta_ci_low", "delta_ci_high": "delta_ci_high",
    "p_value": "p_value", "p_adjusted": "p_adjusted", "verdict": "verdict",
    "n_runs": "n_runs", "n_completed": "n_completed", "paired_seeds": "n_paired_seeds",
    "unpaired_seeds": "unpaired_seeds", "seeds_needed": "seeds_needed",
}  # fmt: skip


class _Runs:
    """Reads (and keeps) each run's predictions and history, by folder."""

    def __init__(self) -> None:
        self._predictions: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
        self._histories: dict[str, pd.DataFrame | None] = {}

    def predictions(self, path: str) -> tuple[np.ndarray, np.ndarray] | None:
        if path not in self._predictions:
            self._predictions[path] = read_predictions(Path(path) / PREDICTIONS)
        return self._predictions[path]

    def history(self, path: str) -> pd.DataFrame | None:
        if path not in self._histories:
            try:
                self._histories[path] = pd.read_csv(Path(path) / HISTORY)
            except (OSError, ValueError, pd.errors.EmptyDataError):
                self._histories[path] = None
        return self._histories[path]


def _by_seed(runs: pd.DataFrame) -> dict[Any, pd.Series]:
    completed = runs[runs["status"] == COMPLETED]
    return {run["seed"]: run for _, run in completed.iterrows()}


def _same_training(option: pd.Series, base: pd.Series, technique: str, reader: _Runs) -> bool:
    """Whether the option's run trained exactly as the base's (so it is a no-op)."""
    mine, theirs = reader.history(option["path"]), reader.history(base["path"])
    if mine is None or theirs is None or len(mine) != len(theirs):
        return False
    if technique == "lr_schedule" and "learning_rate" in mine and "learning_rate" in theirs:
        # A schedule changes only the learning rate; the same rate every epoch is no change.
        return bool(np.array_equal(mine["learning_rate"], theirs["learning_rate"]))
    predicted = reader.predictions(option["path"]), reader.predictions(base["path"])
    if None in predicted or not np.array_equal(predicted[0][1], predicted[1][1]):
        return False
    columns = [c for c in ("loss", "accuracy", "val_loss", "val_accuracy") if c in mine]
    return bool(np.allclose(mine[columns], theirs[columns], rtol=0, atol=1e-7, equal_nan=True))


def _correct(run: pd.Series, reader: _Runs) -> tuple[np.ndarray, np.ndarray] | None:
    """A run's true labels and whether it got each test image right."""
    predicted = reader.predictions(run["path"])
    return None if predicted is None else (predicted[0], predicted[0] == predicted[1])


def _compare(
    option_runs: pd.DataFrame, base_runs: pd.DataFrame, technique: str, reader: _Runs
) -> dict[str, Any]:
    """The paired difference of an option from its base over the seeds both completed and
    scored on the same test images; the option's other completed seeds are ``unpaired_seeds``."""
    mine, theirs = _by_seed(option_runs), _by_seed(base_runs)
    correct_mine, correct_theirs, no_op, paired = [], [], [], []
    for seed in sorted(set(mine) & set(theirs), key=str):
        a, b = _correct(mine[seed], reader), _correct(theirs[seed], reader)
        if a is None or b is None or not np.array_equal(a[0], b[0]):
            continue  # not scored on the same test images: never paired
        correct_mine.append(a[1])
        correct_theirs.append(b[1])
        no_op.append(_same_training(mine[seed], theirs[seed], technique, reader))
        paired.append(seed)
    unpaired = ", ".join(str(s) for s in sorted(set(mine) - set(paired), key=str))
    if not correct_mine:
        return {"paired_seeds": 0, "no_op": False, "unpaired_seeds": unpaired}
    difference = statistics.paired_difference(correct_mine, correct_theirs)
    return {
        "paired_seeds": difference.seeds,
        "unpaired_seeds": unpaired,
        "delta": difference.delta,
        "delta_ci_low": difference.low,
        "delta_ci_high": difference.high,
        "p_value": difference.p_value,
        "difference": difference,
        "no_op": all(no_op),
    }


def _accuracy(completed: pd.DataFrame, images: int, reader: _Runs) -> tuple[float, float, float]:
    """Mean test accuracy over seeds and its 95% interval: from the runs' predictions (images
    and seeds as units) where every run has them on the same images, else from their figures."""
    scored = [_correct(run, reader) for _, run in completed.iterrows()]
    if all(s is not None for s in scored) and all(
        np.array_equal(s[0], scored[0][0]) for s in scored
    ):
        return statistics.accuracy_interval([s[1] for s in scored])
    return statistics.mean_interval(completed["test_accuracy"].tolist(), images)


def _effect_row(
    label: str, technique: str, option: str, is_base: bool, runs: pd.DataFrame,
    base_runs: pd.DataFrame, reader: _Runs,
) -> dict[str, Any]:  # fmt: skip
    completed = runs[runs["status"] == COMPLETED]
    statuses = set(runs["status"].astype(str))
    row: dict[str, Any] = {
        "model": label, "technique": technique, "option": option, "is_base": is_base,
        "n_seeds": len(completed), "n_completed": len(completed), "n_runs": len(runs),
        "status": COMPLETED if len(completed) else (DIVERGED if DIVERGED in statuses else FAILED),
        "run_dir": runs.iloc[0]["run_dir"], "run_paths": tuple(runs["path"]), "paired_seeds": 0,
        "no_op": False, "unpaired_seeds": "",
    }  # fmt: skip
    if completed.empty:
        return row
    images = (
        int(completed["test_samples"].dropna().median())
        if completed["test_samples"].notna().any()
        else 0
    )
    mean, low, high = _accuracy(completed, images, reader)
    classes = completed["num_classes"].dropna()
    row |= {
        "test_accuracy": mean, "ci_low": low, "ci_high": high, "test_images": images,
        "classes": int(classes.iloc[0]) if len(classes) else DEFAULT_CLASSES,
        **{key: completed[key].mean() for key in ("macro_f1", "val_accuracy", "epochs_run",
                                                    "train_seconds")},
    }  # fmt: skip
    if not is_base:
        row |= _compare(runs, base_runs, technique, reader)
    return row


def _outside_family(row: pd.Series) -> str | None:
    """The verdict of a row that is not a comparison (so leaves Holm's family), else None."""
    if row["status"] != COMPLETED:
        return row["status"]
    if row["is_base"]:
        return BASE_VERDICT
    if row["test_accuracy"] <= 2 / row["classes"]:
        return COLLAPSED
    if row["n_completed"] < row["n_runs"]:
        failed = row["n_runs"] - row["n_completed"]
        return f"{UNSTABLE} ({failed} of {row['n_runs']} seeds failed)"
    if row["paired_seeds"] == 0:
        return NOT_COMPARED
    if row["no_op"]:
        return NO_OP
    return None


def verdict(row: pd.Series) -> str:
    """The verdict of one effects row (its ``p_adjusted`` already set); see the module doc."""
    fixed = _outside_family(row)
    if fixed is not None:
        return fixed
    detected = row["p_adjusted"] < statistics.ALPHA and (
        row["delta_ci_low"] > 0 or row["delta_ci_high"] < 0
    )
    if not detected:
        return SAME
    return BETTER if row["delta"] > 0 else WORSE


def comparisons(effects: pd.DataFrame) -> int:
    """How many comparisons Holm's correction adjusted for (the rows with ``p_adjusted``)."""
    return int(effects["p_adjusted"].notna().sum()) if len(effects) else 0


EFFECT_COLUMNS = (
    "model", "technique", "option", "is_base", "status", "n_seeds", "n_runs", "test_accuracy",
    "ci_low", "ci_high", "delta", "delta_ci_low", "delta_ci_high", "p_value", "p_adjusted",
    "verdict", "rank", "paired_seeds", "n_completed", "unpaired_seeds", "seeds_needed",
    "no_op", "difference", "test_images", "classes", "macro_f1",
    "val_accuracy", "epochs_run", "train_seconds", "run_dir", "run_paths",
)  # fmt: skip


def technique_effects(summary: pd.DataFrame, bases: dict[str, dict[str, str]]) -> pd.DataFrame:
    """Per model (and cohort) and technique group, each option against the base, ranked only
    where the difference is detectable. Runs of different cohorts are never pooled; a run that
    repeats another (``duplicate_of``) counts once."""
    reader, rows = _Runs(), []
    counted = summary[summary["duplicate_of"].isna()] if "duplicate_of" in summary else summary
    for (model, cohort), runs in counted.groupby(["model", "cohort"], sort=False):
        label = f"{model} ({cohort})" if cohort else model
        base = bases[model]
        for group in TECHNIQUE_GROUPS:
            others = [g for g in TECHNIQUE_GROUPS if g != group]
            candidates = runs[(runs[others] == pd.Series({g: base[g] for g in others})).all(1)]
            if candidates[group].nunique() < 2:
                continue  # not varied: nothing to compare
            base_runs = candidates[candidates[group] == base[group]]
            for option, option_runs in candidates.groupby(group, sort=False):
                is_base = option == base[group]
                rows.append(
                    _effect_row(label, group, option, is_base, option_runs, base_runs, reader)
                )
    effects = pd.DataFrame(rows, columns=EFFECT_COLUMNS)
    if effects.empty:
        return effects
    family = effects.apply(_outside_family, axis=1).isna()
    p_values = effects["p_value"].astype(float).where(family)
    effects["p_adjusted"] = statistics.holm(p_values.tolist())
    effects["verdict"] = effects.apply(verdict, axis=1)
    size = comparisons(effects)
    effects["seeds_needed"] = [
        row["difference"].seeds_needed(size) if row["verdict"] == SAME else math.nan
        for _, row in effects.iterrows()
    ]
    ranked = effects["verdict"].isin(RANKED)
    effects["rank"] = (
        effects[ranked]
        .groupby(["model", "technique"])["test_accuracy"]
        .rank(ascending=False, method="min")
    ).reindex(effects.index)
    effects = effects.sort_values(
        ["model", "technique", "rank", "test_accuracy"],
        ascending=[True, True, True, False],
        na_position="last",
        key=lambda c: c.map(order_key) if c.name in ("model", "technique") else c,
    )
    return effects.reset_index(drop=True)


def effects_csv(effects: pd.DataFrame) -> pd.DataFrame:
    """The columns of ``effects.csv``."""
    return effects[list(CSV_COLUMNS)].rename(columns=CSV_COLUMNS)


def detectable(effects: pd.DataFrame) -> float:
    """The smallest difference this report could detect (80% power at Holm's strictest level),
    from the median measured standard error and degrees of freedom of its comparisons."""
    compared = effects[effects["p_adjusted"].notna()]
    if compared.empty:
        return math.nan
    parts = [difference.parts for difference in compared["difference"]]
    return statistics.detectable_difference(
        float(np.median([p.standard_error for p in parts])),
        comparisons(effects),
        float(np.median([p.dof for p in parts])),
    )


def best_options(effects: pd.DataFrame) -> pd.DataFrame:
    """Per model and technique, the best option that is detectably better than the base, or
    the base itself when none is."""
    winners = effects[effects["verdict"].isin((BETTER, BASE_VERDICT))]
    ordered = winners.assign(_better=winners["verdict"] == BETTER).sort_values(
        ["_better", "test_accuracy"], ascending=False
    )
    best = ordered.groupby(["model", "technique"], sort=False).head(1).drop(columns="_better")
    return best.sort_values(["model", "technique"], key=lambda c: c.map(order_key)).reset_index(
        drop=True
    )


def side_by_side(effects: pd.DataFrame, group: str, models: Sequence[str]) -> pd.DataFrame:
    """One group's options as rows; per model its effects row's values as ``<model> <key>``."""
    data = effects[effects["technique"] == group]
    options = list(dict.fromkeys(data.sort_values("test_accuracy", ascending=False)["option"]))
    base_options = set(data.loc[data["is_base"], "option"])
    out = pd.DataFrame({"option": [f"{o} (base)" if o in base_options else o for o in options]})
    keys = ("test_accuracy", "ci_low", "ci_high", "delta", "delta_ci_low", "delta_ci_high",
            "verdict", "rank", "status")  # fmt: skip
    for model in models:
        rows = data[data["model"] == model].set_index("option")
        for key in keys:
            out[f"{model} {key}"] = [rows[key].get(o, math.nan) for o in options]
    return out


def models_of(effects: pd.DataFrame, summary: pd.DataFrame) -> list[str]:
    """The models the tables compare: each model, or each model and cohort when runs of one
    model were trained differently (``mlp (epochs=3)``)."""
    return list(dict.fromkeys(effects["model"])) if len(effects) else models_in(summary)
