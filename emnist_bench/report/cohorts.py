"""Which runs may be pooled or paired: cohorts (runs of one model trained alike but for their
techniques and seed), options of one name told apart by their settings, and duplicate runs.

Each reads the ``settings`` column (a run's resolved config flattened to dotted keys, less what
cannot change a result) of the summary table that ``report.runs.load_summary`` builds.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from emnist_bench.rundir import COMPLETED
from emnist_bench.techniques import TECHNIQUE_GROUPS

# A setting that a run's config lacks (written by older code), or a run without a config.
MISSING = "(unset)"


def _in_group(key: str, groups: Sequence[str]) -> bool:
    return any(key.startswith(f"{g}.") for g in groups)


def _label(keys: list[str], values: pd.DataFrame) -> pd.Series:
    """``augment=light, trainer.epochs=3`` per row of ``values`` (one column per key); a
    group's other keys are folded into its name where the name alone tells them apart."""
    shown = list(keys)
    for key in keys:
        prefix, _, leaf = key.rpartition(".")
        if leaf != "name" or not prefix:
            continue
        siblings = [k for k in keys if k != key and k.startswith(f"{prefix}.")]
        if siblings and (values.groupby(key)[siblings].nunique() <= 1).all(axis=None):
            shown = [k for k in shown if k not in siblings]
    names = {k: k.removesuffix(".name") for k in shown}
    return values[shown].apply(
        lambda row: ", ".join(f"{names[k]}={v}" for k, v in row.items()), axis=1
    )


def _setting_values(runs: pd.DataFrame, exclude: Sequence[str]) -> pd.DataFrame:
    """One column per setting (not under the ``exclude`` groups) of ``runs``' resolved configs;
    :data:`MISSING` where a run's config lacks it, or had no config at all."""
    known = [s if isinstance(s, dict) else {} for s in runs["settings"]]
    keys = sorted({k for s in known for k in s if not _in_group(k, exclude)})
    values = pd.DataFrame([[s.get(k, MISSING) for k in keys] for s in known], columns=keys)
    values.index = runs.index
    fingerprints = runs["test_fingerprint"].astype(object)
    if fingerprints.dropna().nunique() > 1:
        # Runs that never scored (failed) take their own config's most common test images.
        filled = fingerprints.copy()
        config = values.astype(str).agg("|".join, axis=1) if keys else pd.Series("", runs.index)
        for _, same in fingerprints.groupby(config):
            common = same.dropna().mode()
            if len(common):
                filled[same.index] = same.fillna(common.iloc[0])
        values["test images"] = filled.fillna(MISSING).astype(str).str[:12]
    return values


def _differing(values: pd.DataFrame) -> list[str]:
    """The settings with more than one value among the runs that have them: a key that some
    runs' configs lack (written by older code) is not held against them."""
    return [k for k in values.columns if values[k][values[k] != MISSING].nunique() > 1]


def cohorts(summary: pd.DataFrame) -> pd.Series:
    """Each run's cohort within its model: the settings (other than its techniques and seed)
    that differ between the model's runs, e.g. ``augment=light, trainer.epochs=3``; empty when
    every run of the model was trained alike. Runs of different cohorts are never pooled."""
    cohort = pd.Series("", index=summary.index, dtype=object)
    for _, runs in summary.groupby("model", sort=False):
        values = _setting_values(runs, TECHNIQUE_GROUPS)
        differing = _differing(values)
        if differing:
            cohort[runs.index] = _label(differing, values)
    return cohort


def label_options(summary: pd.DataFrame) -> None:
    """Options of one name but different settings (``optimizer=adam`` with two learning rates)
    are different options: each gets its differing settings, ``adam (learning_rate=0.003)``."""
    for group in TECHNIQUE_GROUPS:
        for _, runs in summary.groupby(["model", group], sort=False):
            values = _setting_values(runs, [g for g in TECHNIQUE_GROUPS if g != group])
            own = values[[k for k in values.columns if k.startswith(f"{group}.")]]
            differing = _differing(own)
            if not differing:
                continue
            shown = own[differing].rename(columns={k: k.split(".", 1)[1] for k in differing})
            labels = shown.apply(lambda row: ", ".join(f"{k}={v}" for k, v in row.items()), axis=1)
            summary.loc[runs.index, group] = runs[group].astype(str) + " (" + labels + ")"


def _identity(row: pd.Series) -> str | None:
    if not isinstance(row["settings"], dict):
        return None
    techniques = [row[g] for g in TECHNIQUE_GROUPS]
    # A null is a key's absence (one added since older runs were made), as runs compare configs.
    settings = sorted((k, v) for k, v in row["settings"].items() if v != "null")
    return repr((row["model"], row["seed"], techniques, settings))


def mark_duplicates(summary: pd.DataFrame) -> None:
    """A run with the same model, resolved config and seed as another (a copied folder, the same
    sweep passed twice) is counted once: ``duplicate_of`` names the run that counts (a completed
    one where there is one)."""
    identity = pd.Series([_identity(row) for _, row in summary.iterrows()], index=summary.index)
    summary["duplicate_of"] = None
    for _, same in summary[identity.notna()].groupby(identity.dropna(), sort=False):
        if len(same) < 2:
            continue
        kept = same.sort_values("status", key=lambda s: s != COMPLETED, kind="stable").index[0]
        others = same.index.drop(kept)
        summary.loc[others, "duplicate_of"] = summary.at[kept, "run_dir"]
