"""One factor at a time: each option of each technique against its model's base run."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from emnist_bench.report.runs import order_key
from emnist_bench.rundir import COMPLETED
from emnist_bench.techniques import BASE, TECHNIQUE_GROUPS


def technique_effects(summary: pd.DataFrame, bases: dict[str, dict[str, str]]) -> pd.DataFrame:
    """Per model and technique group, each option's run ranked by test accuracy.

    Only runs equal to the base in every other group count (one factor at a time), so the
    table is the same for the one-factor grid and the full factorial. ``delta`` is the test
    accuracy minus the base run's; ``rank`` 1 is the best completed run.
    """
    rows = []
    for model, runs in summary.groupby("model", sort=False):
        base = bases[model]
        base_runs = runs[runs["variant"] == BASE]
        base_accuracy = base_runs["test_accuracy"].max() if len(base_runs) else math.nan
        for group in TECHNIQUE_GROUPS:
            others = [g for g in TECHNIQUE_GROUPS if g != group]
            same_elsewhere = (runs[others] == pd.Series({g: base[g] for g in others})).all(axis=1)
            chosen = runs[same_elsewhere].drop_duplicates(subset=[group], keep="first")
            for _, run in chosen.iterrows():
                rows.append(
                    {
                        "model": model,
                        "technique": group,
                        "option": run[group],
                        "is_base": run[group] == base[group],
                        "status": run["status"],
                        "test_accuracy": run["test_accuracy"],
                        "delta": run["test_accuracy"] - base_accuracy,
                        "macro_f1": run["macro_f1"],
                        "val_accuracy": run["val_accuracy"],
                        "epochs_run": run["epochs_run"],
                        "train_seconds": run["train_seconds"],
                        "run_dir": run["run_dir"],
                    }
                )
    effects = pd.DataFrame(rows)
    if effects.empty:
        return effects
    # A group whose only run is the base was not varied: nothing to compare.
    varied = effects.groupby(["model", "technique"])["option"].transform("nunique") > 1
    effects = effects[varied].reset_index(drop=True)
    if effects.empty:
        return effects
    effects["rank"] = effects.groupby(["model", "technique"])["test_accuracy"].rank(
        ascending=False, method="min"
    )
    effects["_missing"] = effects["test_accuracy"].isna()
    effects = effects.sort_values(
        ["model", "technique", "_missing", "test_accuracy"],
        ascending=[True, True, True, False],
        key=lambda column: (
            column.map(order_key) if column.name in ("model", "technique") else column
        ),
    )
    return effects.drop(columns="_missing").reset_index(drop=True)


def best_options(effects: pd.DataFrame) -> pd.DataFrame:
    """The best completed option of each technique per model (rank 1; first on ties)."""
    completed = effects[effects["status"] == COMPLETED]
    return completed.groupby(["model", "technique"], sort=False).head(1).reset_index(drop=True)


def side_by_side(effects: pd.DataFrame, group: str, models: Sequence[str]) -> pd.DataFrame:
    """One group's options as rows, each model's accuracy, delta and rank as columns."""
    data = effects[effects["technique"] == group]
    table = data.pivot_table(
        index="option",
        columns="model",
        values=["test_accuracy", "delta", "rank"],
        aggfunc="first",
        dropna=False,
    )
    options = list(dict.fromkeys(data["option"]))
    mean = table["test_accuracy"].mean(axis=1) if "test_accuracy" in table else None
    if mean is not None:
        options.sort(key=lambda o: -mean.get(o, -1) if not pd.isna(mean.get(o)) else 1)
    statuses = data.pivot_table(index="option", columns="model", values="status", aggfunc="first")
    out = pd.DataFrame(index=options)
    base_options = set(data.loc[data["is_base"], "option"])
    out["option"] = [f"{o} (base)" if o in base_options else o for o in options]
    for model in models:
        for metric in ("test_accuracy", "delta", "rank"):
            column = table[metric][model] if (metric, model) in table.columns else None
            out[f"{model} {metric}"] = column.reindex(options) if column is not None else math.nan
        if model in statuses:
            out[f"{model} status"] = statuses[model].reindex(options)
    return out.reset_index(drop=True)
