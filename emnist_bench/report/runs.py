"""Reading a folder of runs into the summary table: one row per run, its techniques read from
its own ``metrics.json`` (what it actually used), and each model's base configuration."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from omegaconf import OmegaConf

from emnist_bench.config import with_defaults
from emnist_bench.errors import UserError
from emnist_bench.report.cohorts import cohorts, label_options, mark_duplicates
from emnist_bench.rundir import (
    COMPLETED,
    CONFIG,
    HYDRA,
    METRICS,
    find_run_dirs,
    read_annotations,
    read_json,
    read_metrics,
)
from emnist_bench.techniques import BASE, TECHNIQUE_GROUPS

SCORES = ("test_accuracy", "macro_f1", "val_accuracy", "test_loss")
SUMMARY_COLUMNS = (
    "run_dir", "model", "family", "variant", *TECHNIQUE_GROUPS, "seed", "status", *SCORES,
    "epochs_run", "train_seconds", "params", "error", "cohort", "epochs", "data", "subset",
    "test_samples", "num_classes", "test_fingerprint", "code", "duplicate_of", "tags", "note",
    "path", "settings",
)  # fmt: skip
# What is shown when runs of a report were trained differently (setup_notes).
SETUP = ("data", "subset", "epochs", "test_fingerprint")
# Config keys (and the subtrees under them) that cannot change a run's result: where it writes,
# how it logs, how a sweep launched it, how many threads it used. Every other resolved value
# must be equal for two runs to be pooled or paired. (seed_report: notebook_report's old name.)
UNRELATED = (
    "output_dir", "hparams_file", "continue_on_error", "grid", "variant", "notebook_report",
    "seed_report", "hydra", "logger", "data.cache_dir", "data.download", "data.urls", "data.md5",
    "trainer.seed", "tuner.seed", "trainer.intra_op_threads", "trainer.inter_op_threads",
    "trainer.steps_per_execution", "trainer.sample_grid", "trainer.callbacks",
    "tuner.distributed",
)  # fmt: skip
# Unused unless a tuner searches: a run without one never reads them.
SEARCH_ONLY = ("search_space", "tuner")
# Models in tables and plots: the MLP first, then the CNN, then any other by name.
FAMILY_ORDER = {"mlp": 0, "cnn": 1}


def _choices_from_config(run_dir: Path) -> dict[str, Any]:
    """The techniques of a run that never wrote metrics.json, from its saved config."""
    from emnist_bench.config import technique_choices

    for path in (run_dir / CONFIG, run_dir / HYDRA / CONFIG):
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


# libyaml when present: a report reads thousands of config.yaml files.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_run_config(run_dir: Path) -> dict[str, Any] | None:
    """A run's resolved config.yaml as plain data (no OmegaConf: it is already resolved)."""
    for path in (run_dir / CONFIG, run_dir / HYDRA / CONFIG):
        try:
            loaded = yaml.load(path.read_text(), Loader=_YAML_LOADER)
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(loaded, dict):
            return loaded
    return None


def _select(cfg: dict[str, Any], key: str) -> Any:
    """``cfg["data"]["root"]`` for ``data.root``; None where a level is missing."""
    for part in key.split("."):
        cfg = cfg.get(part) if isinstance(cfg, dict) else None
    return cfg


def run_row(run_dir: Path, label: str) -> dict[str, Any]:
    """One summary row from a run folder, shown as ``label``; scores are blank unless the run
    completed."""
    metrics = read_metrics(run_dir)
    cfg = load_run_config(run_dir)
    if metrics is None:
        metrics = {"status": "unfinished", **_choices_from_config(run_dir)}
    row = {key: metrics.get(key) for key in SUMMARY_COLUMNS}
    row["run_dir"], row["path"] = label, str(run_dir)
    row["model"] = row["model"] or Path(label).parts[0]
    row["error"] = _error_line(metrics.get("error"))
    provenance = metrics.get("provenance") or {}
    row["test_fingerprint"] = (provenance.get("data") or {}).get("test_fingerprint")
    row["code"] = provenance.get("git_commit")
    row["num_classes"] = len(metrics["per_class"]) if metrics.get("per_class") else None
    annotations = read_annotations(run_dir)
    row["tags"] = "; ".join(f"{k}={v}" for k, v in annotations["tags"].items()) or None
    row["note"] = annotations["note"]
    if cfg is not None:
        row["seed"] = _select(cfg, "trainer.seed")
        row["epochs"] = _select(cfg, "trainer.epochs")
        root = _select(cfg, "data.root")
        row["data"] = f"{Path(str(root)).name}/{_select(cfg, 'data.split')}"
        row["subset"] = _select(cfg, "data.subset")
    if row["status"] != COMPLETED:
        row.update(dict.fromkeys(SCORES))
    row["settings"] = settings(cfg) if cfg is not None else None
    return row


def _flatten_into(value: Any, prefix: str, out: dict[str, str]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten_into(item, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value if isinstance(value, str) else json.dumps(value, default=str)


def _unrelated(key: str, searched: bool) -> bool:
    prefixes = UNRELATED if searched else UNRELATED + SEARCH_ONLY
    return any(key == p or key.startswith(f"{p}.") for p in prefixes)


def flat_config(cfg: dict[str, Any]) -> dict[str, str]:
    """A resolved config as dotted keys, each value a string (lists and numbers as JSON):
    ``{"trainer.epochs": "5", "model.hidden_units": "[512, 256, 128]", ...}``."""
    flat: dict[str, str] = {}
    _flatten_into(cfg, "", flat)
    return flat


def settings(cfg: dict[str, Any]) -> dict[str, str]:
    """A run's resolved config as ``{"trainer.epochs": "5", ...}``: every value that can change
    its result (not :data:`UNRELATED`), a key its version of the code lacked at its default, the
    data folder by name only (paths differ between machines)."""
    flat = flat_config(with_defaults(cfg))
    searched = flat.get("tuner.name", "none") not in ("none", "null")
    kept = {key: value for key, value in flat.items() if not _unrelated(key, searched)}
    if "data.root" in kept:
        kept["data.root"] = Path(str(_select(cfg, "data.root"))).name
    return kept


def _multirun_choices(folders: Sequence[Path]) -> dict[str, str]:
    """The base choices of a Hydra sweep (its master config), from the first multirun.yaml."""
    for folder in folders:
        try:
            choices = OmegaConf.load(folder / "multirun.yaml").hydra.runtime.choices
            return {group: str(choices[group]) for group in TECHNIQUE_GROUPS if group in choices}
        except Exception:  # no or foreign multirun.yaml
            continue
    return {}


def _in_base_folder(run_dir: str) -> bool:
    return BASE in Path(run_dir).parts


def base_choices(summary: pd.DataFrame, folders: Sequence[Path]) -> dict[str, dict[str, str]]:
    """Per model, the techniques of the base configuration.

    The base is a run in a folder named ``base`` (the one-factor grid); failing that, the
    sweep's own defaults (multirun.yaml, e.g. the full factorial); failing that, the most
    common option of each group.
    """
    sweep_defaults = _multirun_choices(folders)
    bases = {}
    for model, runs in summary.groupby("model", sort=False):
        named = runs[runs["run_dir"].map(_in_base_folder)]
        if len(named):
            bases[model] = {g: named.iloc[0][g] for g in TECHNIQUE_GROUPS}
        elif len(sweep_defaults) == len(TECHNIQUE_GROUPS):
            bases[model] = dict(sweep_defaults)
        else:
            common = {g: runs[g].dropna().mode() for g in TECHNIQUE_GROUPS}
            # A model none of whose runs names its techniques (no metrics.json, no config) has
            # no base; its runs are then shown by folder name.
            bases[model] = {g: mode.iloc[0] if len(mode) else None for g, mode in common.items()}
    return bases


def _variant(row: pd.Series, base: dict[str, str]) -> str:
    if any(pd.isna(row[g]) for g in TECHNIQUE_GROUPS):
        return Path(row["run_dir"]).name
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
        str(row["cohort"]),
        row["seed"] if isinstance(row["seed"], int) else -1,
        row["run_dir"],
    )


def load_summary(folders: Sequence[Path]) -> tuple[pd.DataFrame, dict[str, dict[str, str]]]:
    """The summary table (one row per run, base runs first) and each model's base choices.

    Runs of several folders are merged; their ``run_dir`` is then prefixed with the folder's
    name. Runs trained differently (any resolved setting but their techniques and seed, see
    ``report.cohorts``) get different cohorts and are never pooled; a run that repeats another
    is kept, with ``duplicate_of`` set, and counted once.

    Raises:
        UserError: when the folders hold no run.
    """
    rows = []
    for folder in folders:
        for run_dir in find_run_dirs(folder):
            label = run_dir.relative_to(folder).as_posix()
            rows.append(run_row(run_dir, f"{folder.name}/{label}" if len(folders) > 1 else label))
    if not rows:
        names = ", ".join(str(f) for f in folders)
        raise UserError(f"{names}: no runs found (no */metrics.json); run a sweep first")
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    summary["family"] = summary["family"].fillna(summary["model"])
    mark_duplicates(summary)
    label_options(summary)
    summary["cohort"] = cohorts(summary)
    bases = base_choices(summary, folders)
    summary["variant"] = [_variant(row, bases[row["model"]]) for _, row in summary.iterrows()]
    order = sorted(range(len(summary)), key=lambda i: _sort_key(summary.iloc[i]))
    return summary.iloc[order].reset_index(drop=True), bases


def setup_notes(summary: pd.DataFrame) -> list[str]:
    """One sentence per way the runs were not trained alike (data, length, code)."""
    notes = []
    names = {
        "data": "data",
        "subset": "training subset",
        "epochs": "epochs",
        "test_fingerprint": "test images (content hash)",
        "code": "code (git commit)",
    }
    for key, name in names.items():
        values = sorted({str(v) for v in summary[key].dropna()})
        if len(values) > 1:
            shown = ", ".join(values[:4]) + (", ..." if len(values) > 4 else "")
            pooled = "compared only within the same" if key in SETUP else "pooled across"
            notes.append(f"The runs differ in {name} ({shown}): {pooled} {name}.")
    duplicates = summary[summary["duplicate_of"].notna()]
    if len(duplicates):
        pairs = [f"{r['run_dir']} (as {r['duplicate_of']})" for _, r in duplicates.iterrows()]
        shown = "; ".join(pairs[:10]) + ("; ..." if len(pairs) > 10 else "")
        notes.append(
            f"{len(pairs)} run{'s' if len(pairs) != 1 else ''} repeat another run's config and "
            f"seed and count once: {shown}."
        )
    return notes


def order_key(value: Any) -> Any:
    if value in TECHNIQUE_GROUPS:
        return TECHNIQUE_GROUPS.index(value)
    return (FAMILY_ORDER.get(value, len(FAMILY_ORDER)), str(value))


def models_in(summary: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(summary["model"]))


def data_description(summary: pd.DataFrame, short: bool = False) -> str:
    """The data, training length and seeds, read from the first run that saved its config.

    ``short`` gives the few words a plot title has room for.
    """
    seeds = sorted({int(s) for s in summary["seed"].dropna()})
    seeds_text = f"seed{'s' if len(seeds) != 1 else ''} {', '.join(map(str, seeds))}"
    for path in summary["path"]:
        metrics = read_json(Path(path) / METRICS) or {}
        cfg = load_run_config(Path(path))
        if cfg is None:
            continue
        root = str(_select(cfg, "data.root"))
        source = Path(root).name or root
        epochs = int(_select(cfg, "trainer.epochs") or 0)
        epochs_text = f"{epochs} epoch{'s' if epochs != 1 else ''}"
        sizes = ""
        if "train_samples" in metrics:
            sizes = f"{metrics['train_samples']:,} train / {metrics['test_samples']:,} test images"
        if short:
            return ", ".join(part for part in (source, sizes, epochs_text, seeds_text) if part)
        subset = _select(cfg, "data.subset")
        split = f"{_select(cfg, 'data.split')} split" + (
            f", at most {subset} training images per class" if subset else ""
        )
        if sizes:
            sizes = sizes.replace(" train /", f" train / {metrics['val_samples']:,} validation /")
        return f"Data: {source} ({split}), {sizes}; up to {epochs_text}, {seeds_text}"
    return "" if short else "Data: unknown (no run saved its config.yaml)"


def status_counts(summary: pd.DataFrame) -> str:
    counts = summary["status"].fillna("unknown").value_counts()
    return ", ".join(f"{count} {status}" for status, count in counts.items())
