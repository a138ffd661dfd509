"""Sweeps that vary several techniques at once: an additive model fitted on all runs.

For each model (and cohort), test accuracy is fitted by least squares as the base's accuracy
plus one main effect per non-base option (treatment coding). This gives:

* each option's main effect with a 95% interval (OLS standard errors, Student's t);
* the share of the variance of test accuracy each technique group explains (what the fit loses
  when the group is dropped, over the total: a type-II share, so on an unbalanced design the
  shares need not sum to 1), and the residual share;
* an option the design cannot separate from another (its column is a linear combination of the
  others: two options that always move together) has no effect, only ``not estimable (aliased
  with X)``, and its group no share;
* the strongest two-way interactions: for each pair of groups, the share of variance their
  interaction terms add to the additive model, with the F-test's p-value (Holm-adjusted over
  the pairs);
* a parallel-coordinates figure of every run (``plots/parallel_<model>.png``).

The one-factor grid has nothing to add here (its runs differ from the base in one group), so
the analysis runs only where some run differs from the base in two groups or more.
Nothing here imports TensorFlow.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from scipy import stats

from emnist_bench.figures import new_figure
from emnist_bench.report.statistics import ALPHA, holm
from emnist_bench.rundir import COMPLETED
from emnist_bench.techniques import TECHNIQUE_GROUPS

TOP_INTERACTIONS = 5


@dataclass
class Factorial:
    """The additive model of one model's runs."""

    model: str
    runs: pd.DataFrame  # the completed runs it was fitted on
    groups: list[str]  # the technique groups varied
    effects: pd.DataFrame  # technique, option, effect, ci_low, ci_high
    shares: pd.DataFrame  # technique, share (of the variance of test accuracy)
    interactions: pd.DataFrame = field(default_factory=pd.DataFrame)


def _design(runs: pd.DataFrame, groups: list[str], base: dict[str, str]) -> tuple[np.ndarray, list]:
    """Intercept plus one indicator per non-base option of each group; the columns' names."""
    columns, names = [np.ones(len(runs))], [("base", "")]
    for group in groups:
        for option in sorted(set(runs[group]) - {base[group]}):
            columns.append((runs[group] == option).to_numpy(float))
            names.append((group, option))
    return np.column_stack(columns), names


def _aliases(x: np.ndarray, names: list) -> dict[int, list[str]]:
    """Per column the design cannot estimate, the options it is aliased with: the other
    columns of the linear combination that reproduces it."""
    rank, found = np.linalg.matrix_rank(x), {}
    for j in range(1, x.shape[1]):
        others = np.delete(x, j, axis=1)
        if np.linalg.matrix_rank(others) < rank:
            continue  # column j adds a dimension of its own: estimable
        weights, *_ = np.linalg.lstsq(others, x[:, j], rcond=None)
        indices = [i if i < j else i + 1 for i in np.flatnonzero(np.abs(weights) > 1e-8)]
        found[j] = [f"{names[i][0]}={names[i][1]}" for i in indices if names[i][0] != "base"]
    return found


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """The residual sum of squares of the least-squares fit, and the rank of ``x``."""
    coefficients, _, rank, _ = np.linalg.lstsq(x, y, rcond=None)
    residual = y - x @ coefficients
    return float(residual @ residual), int(rank)


def _rss(x: np.ndarray, y: np.ndarray) -> float:
    return _fit(x, y)[0]


def _without(x: np.ndarray, names: list, group: str) -> np.ndarray:
    return x[:, [i for i, (g, _) in enumerate(names) if g != group]]


def _interactions(runs, groups, base, x, y) -> pd.DataFrame:
    (rss_additive, rank_additive), total = _fit(x, y), float(((y - y.mean()) ** 2).sum())
    rows = []
    for first, second in itertools.combinations(groups, 2):
        terms = [
            ((runs[first] == a) & (runs[second] == b)).to_numpy(float)
            for a in sorted(set(runs[first]) - {base[first]})
            for b in sorted(set(runs[second]) - {base[second]})
        ]
        rss, rank = _fit(np.column_stack([x, *terms]), y)
        dof, added = len(y) - rank, rank - rank_additive
        if dof <= 0 or added <= 0:
            continue
        f = ((rss_additive - rss) / added) / (rss / dof) if rss > 0 else math.inf
        rows.append({
            "interaction": f"{first} x {second}",
            "share": (rss_additive - rss) / total if total else 0.0,
            "p_value": float(stats.f.sf(f, added, dof)),
        })  # fmt: skip
    table = pd.DataFrame(rows, columns=["interaction", "share", "p_value"])
    if table.empty:
        return table
    table["p_adjusted"] = holm(table["p_value"].tolist())
    return table.sort_values("share", ascending=False).head(TOP_INTERACTIONS).reset_index(drop=True)


def fit(model: str, runs: pd.DataFrame, base: dict[str, str]) -> Factorial | None:
    """The additive model of ``runs`` (one model's), or None when no run differs from the base
    in two groups or more (or too few runs completed to fit it)."""
    runs = runs[runs["status"] == COMPLETED].dropna(subset=["test_accuracy"])
    groups = [g for g in TECHNIQUE_GROUPS if runs[g].nunique() > 1]
    changed = (runs[groups] != pd.Series({g: base[g] for g in groups})).sum(axis=1)
    if len(groups) < 2 or not (changed >= 2).any():
        return None
    y = runs["test_accuracy"].to_numpy(float)
    x, names = _design(runs, groups, base)
    rank = np.linalg.matrix_rank(x)
    dof = len(y) - rank
    if dof <= 0:
        return None
    coefficients, *_ = np.linalg.lstsq(x, y, rcond=None)
    residual = y - x @ coefficients
    sigma2 = float(residual @ residual) / dof
    errors = np.sqrt(np.clip(np.diag(np.linalg.pinv(x.T @ x)) * sigma2, 0, None))
    t = stats.t.ppf(1 - ALPHA / 2, dof)
    aliased = _aliases(x, names)
    rows = []
    for j, ((g, o), c, e) in enumerate(zip(names, coefficients, errors, strict=True)):
        if g == "base":
            continue
        if j in aliased:
            note = f"not estimable (aliased with {', '.join(aliased[j]) or 'the base'})"
            rows.append({"technique": g, "option": o, "effect": math.nan, "ci_low": math.nan,
                         "ci_high": math.nan, "note": note})  # fmt: skip
        else:
            rows.append({"technique": g, "option": o, "effect": c, "ci_low": c - t * e,
                         "ci_high": c + t * e, "note": ""})  # fmt: skip
    effects = pd.DataFrame(rows)
    total = float(((y - y.mean()) ** 2).sum())
    rss = float(residual @ residual)
    inseparable = {names[j][0] for j in aliased}
    shares = [
        {
            "technique": g,
            "share": math.nan
            if g in inseparable
            else ((_rss(_without(x, names, g), y) - rss) / total if total else 0),
        }
        for g in groups
    ]
    residual_share = rss / total if total else 0.0
    shares.append({"technique": "residual (noise, interactions)", "share": residual_share})
    return Factorial(
        model=model,
        runs=runs,
        groups=groups,
        effects=effects,
        shares=pd.DataFrame(shares),
        interactions=_interactions(runs, groups, base, x, y),
    )


def fit_all(summary: pd.DataFrame, bases: dict[str, dict[str, str]]) -> list[Factorial]:
    """The additive model of each model (and cohort) whose runs vary several groups at once."""
    fitted = []
    for (model, cohort), runs in summary.groupby(["model", "cohort"], sort=False):
        result = fit(f"{model} ({cohort})" if cohort else model, runs, bases[model])
        if result is not None:
            fitted.append(result)
    return fitted


def parallel_figure(result: Factorial, about: str) -> Figure:
    """Every run as a line through its option of each varied group, ending at its test
    accuracy; coloured by that accuracy."""
    runs, groups = result.runs, result.groups
    levels = {g: sorted(set(runs[g])) for g in groups}
    accuracy = runs["test_accuracy"].to_numpy(float)
    low, high = float(accuracy.min()), float(accuracy.max())
    span = high - low or 1.0
    jitter = np.random.default_rng(0).uniform(-0.015, 0.015, size=(len(runs), len(groups)))
    ys = (
        np.column_stack(
            [
                runs[g].map({o: i / max(1, len(levels[g]) - 1) for i, o in enumerate(levels[g])})
                for g in groups
            ]
        ).astype(float)
        + jitter
    )
    ys = np.column_stack([ys, (accuracy - low) / span])
    xs = np.arange(len(groups) + 1)
    fig = new_figure(max(8.0, 1.9 * len(xs)), 5.2)
    ax = fig.add_subplot()
    order = np.argsort(accuracy)  # the best runs drawn last, on top
    lines = LineCollection(
        [np.column_stack([xs, ys[i]]) for i in order], array=accuracy[order], cmap="viridis",
        linewidths=0.8, alpha=0.6,
    )  # fmt: skip
    ax.add_collection(lines)
    for x, group in enumerate(groups):
        for i, option in enumerate(levels[group]):
            ax.text(x, i / max(1, len(levels[group]) - 1), f" {option}", fontsize=8, va="center")
    ax.set_xticks(xs, labels=[*groups, "test accuracy"])
    ax.set_xlim(-0.2, len(groups) + 0.6)
    ax.set_ylim(-0.06, 1.06)
    ax.set_yticks([])
    ax.grid(True, axis="x", alpha=0.4)
    colorbar = fig.colorbar(lines, ax=ax, pad=0.01)
    colorbar.set_label("test accuracy")
    ax.set_title(f"{result.model}: every run through its options ({about})", fontsize=11)
    return fig


def tables(result: Factorial) -> list[tuple[str, list[str], list[list[str]]]]:
    """The model's three tables as (title, header, rows of text cells)."""
    effects = [
        [r.technique, r.option, "", "", r.note] if r.note else
        [r.technique, r.option, f"{r.effect * 100:+.2f} pp",
         f"[{r.ci_low * 100:+.1f}, {r.ci_high * 100:+.1f}]",
         "yes" if r.ci_low > 0 or r.ci_high < 0 else "no"]
        for r in result.effects.itertuples()
    ]  # fmt: skip
    shares = [
        [r.technique, "not separable (aliased)" if math.isnan(r.share) else f"{r.share:.1%}"]
        for r in result.shares.itertuples()
    ]
    interactions = [
        [r.interaction, f"{r.share:.1%}", f"{r.p_adjusted:.2g}"]
        for r in result.interactions.itertuples()
    ]
    return [
        (
            f"{result.model}: main effect of each option against the base ({len(result.runs)} "
            "runs, additive model)",
            ["technique", "option", "effect", "95% CI", "interval excludes 0"],
            effects,
        ),
        (
            f"{result.model}: share of the variance of test accuracy each group explains "
            "(type-II: what dropping the group loses; on an unbalanced design the shares need "
            "not sum to 1)",
            ["technique", "share"],
            shares,
        ),
        (
            f"{result.model}: strongest two-way interactions",
            ["interaction", "share of variance added", "p (F-test, Holm)"],
            interactions,
        ),
    ]
