"""Reading a folder of runs into the summary table: one row per run, its techniques read from
its own ``metrics.json`` (what it actually used), and each model's base configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import OmegaConf

from emnist_bench.errors import UserError
from emnist_bench.rundir import COMPLETED, find_run_dirs, read_json
from emnist_bench.techniques import BASE, TECHNIQUE_GROUPS

SCORES = ("test_accuracy", "macro_f1", "val_accuracy", "test_loss")
SUMMARY_COLUMNS = (
    "run_dir", "model", "family", "variant", *TECHNIQUE_GROUPS, "status", *SCORES, "epochs_run",
    "train_seconds", "params", "error",
)  # fmt: skip
# Models in tables and plots: the MLP first, then the CNN, then any other by name.
FAMILY_ORDER = {"mlp": 0, "cnn": 1}


def _choices_from_config(run_dir: Path) -> dict[str, Any]:
    """The techniques of a run that never wrote metrics.json, from its saved config."""
    from emnist_bench.config import technique_choices

    for path in (run_dir / "config.yaml", run_dir / ".hydra" / "config.yaml"):
        try:
            return technique_choices(OmegaConf.load(path))
        except Exception:  # missing or incomplete: try the next, else report it unknown
            continue
    return {}


def _error_line(error: Any) -> str | None:
    """The last line of an error (a traceback ends with the exception and its message)."""
    if not error:
        return None
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1] if lines else None


def run_row(run_dir: Path, sweep_dir: Path) -> dict[str, Any]:
    """One summary row from a run folder; scores are blank unless the run completed."""
    metrics = read_json(run_dir / "metrics.json")
    if metrics is None:
        metrics = {"status": "unfinished", **_choices_from_config(run_dir)}
    row = {key: metrics.get(key) for key in SUMMARY_COLUMNS}
    row["run_dir"] = run_dir.relative_to(sweep_dir).as_posix()
    row["model"] = row["model"] or run_dir.relative_to(sweep_dir).parts[0]
    row["error"] = _error_line(metrics.get("error"))
    if row["status"] != COMPLETED:
        row.update(dict.fromkeys(SCORES))
    return row


def _multirun_choices(sweep_dir: Path) -> dict[str, str]:
    """The base choices of a Hydra sweep (its master config), when multirun.yaml is there."""
    try:
        choices = OmegaConf.load(sweep_dir / "multirun.yaml").hydra.runtime.choices
        return {group: str(choices[group]) for group in TECHNIQUE_GROUPS if group in choices}
    except Exception:  # no or foreign multirun.yaml
        return {}


def _leaf(run_dir: str) -> str:
    return run_dir.rsplit("/", 1)[-1]


def base_choices(summary: pd.DataFrame, sweep_dir: Path) -> dict[str, dict[str, str]]:
    """Per model, the techniques of the base configuration.

    The base is the run in a folder named ``base`` (the one-factor grid); failing that, the
    sweep's own defaults (multirun.yaml, e.g. the full factorial); failing that, the most
    common option of each group.
    """
    sweep_defaults = _multirun_choices(sweep_dir)
    bases = {}
    for model, runs in summary.groupby("model", sort=False):
        named = runs[runs["run_dir"].map(_leaf) == BASE]
        if len(named):
            bases[model] = {g: named.iloc[0][g] for g in TECHNIQUE_GROUPS}
        elif len(sweep_defaults) == len(TECHNIQUE_GROUPS):
            bases[model] = dict(sweep_defaults)
        else:
            bases[model] = {g: runs[g].dropna().mode().iloc[0] for g in TECHNIQUE_GROUPS}
    return bases


def _variant(row: pd.Series, base: dict[str, str]) -> str:
    if any(pd.isna(row[g]) for g in TECHNIQUE_GROUPS):
        return _leaf(row["run_dir"])
    changed = [f"{g}={row[g]}" for g in TECHNIQUE_GROUPS if row[g] != base[g]]
    return ",".join(changed) or BASE


def _sort_key(row: pd.Series) -> tuple:
    variant = row["variant"]
    group = variant.split("=", 1)[0]
    position = (
        TECHNIQUE_GROUPS.index(group) + 1
        if group in TECHNIQUE_GROUPS
        else len(TECHNIQUE_GROUPS) + 1
    )
    return (
        FAMILY_ORDER.get(row["family"], len(FAMILY_ORDER)),
        str(row["model"]),
        0 if variant == BASE else position,
        variant,
        row["run_dir"],
    )


def load_summary(sweep_dir: Path) -> tuple[pd.DataFrame, dict[str, dict[str, str]]]:
    """The summary table (one row per run, base runs first) and each model's base choices.

    Raises:
        UserError: when ``sweep_dir`` holds no run.
    """
    run_dirs = find_run_dirs(sweep_dir)
    if not run_dirs:
        raise UserError(f"{sweep_dir}: no runs found (no */metrics.json); run a sweep first")
    summary = pd.DataFrame([run_row(d, sweep_dir) for d in run_dirs], columns=SUMMARY_COLUMNS)
    summary["family"] = summary["family"].fillna(summary["model"])
    bases = base_choices(summary, sweep_dir)
    summary["variant"] = [_variant(row, bases[row["model"]]) for _, row in summary.iterrows()]
    order = sorted(range(len(summary)), key=lambda i: _sort_key(summary.iloc[i]))
    return summary.iloc[order].reset_index(drop=True), bases


def order_key(value: Any) -> Any:
    if value in TECHNIQUE_GROUPS:
        return TECHNIQUE_GROUPS.index(value)
    return (FAMILY_ORDER.get(value, len(FAMILY_ORDER)), str(value))


def models_in(summary: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(summary["model"]))


def data_description(summary: pd.DataFrame, sweep_dir: Path, short: bool = False) -> str:
    """The data and training length, read from the first run that saved its config.

    ``short`` gives the few words a plot title has room for.
    """
    for run_dir in summary["run_dir"]:
        metrics = read_json(sweep_dir / run_dir / "metrics.json") or {}
        try:
            cfg = OmegaConf.load(sweep_dir / run_dir / "config.yaml")
        except OSError:
            continue
        source = Path(str(cfg.data.root)).name or str(cfg.data.root)
        epochs = int(cfg.trainer.epochs)
        epochs_text = f"{epochs} epoch{'s' if epochs != 1 else ''}"
        sizes = ""
        if "train_samples" in metrics:
            sizes = f"{metrics['train_samples']:,} train / {metrics['test_samples']:,} test images"
        if short:
            return ", ".join(part for part in (source, sizes, epochs_text) if part)
        subset = cfg.data.get("subset")
        split = f"{cfg.data.split} split" + (
            f", at most {subset} training images per class" if subset else ""
        )
        if sizes:
            sizes = sizes.replace(" train /", f" train / {metrics['val_samples']:,} validation /")
        return f"Data: {source} ({split}), {sizes}; up to {epochs_text}, seed {cfg.trainer.seed}"
    return "" if short else "Data: unknown (no run saved its config.yaml)"


def status_counts(summary: pd.DataFrame) -> str:
    counts = summary["status"].fillna("unknown").value_counts()
    return ", ".join(f"{count} {status}" for status, count in counts.items())
