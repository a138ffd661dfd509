"""Time to accuracy: proxy test accuracy against training seconds, for the notebook's way and
the presets ``cnn_baseline``, ``speedrun_cnn``, ``speedrun_cnn_avx2``, ``best_cnn`` and
``best_mlp``, in one run.

Each preset trains through the command line, exactly as a user runs it
(``python -m emnist_bench +experiment=NAME trainer.seed=S ...``), with one addition: Keras's
``ModelCheckpoint`` keeps every epoch's weights (``trainer.callbacks``). Only after the run has
finished is each epoch's copy scored on the test split, so the curve never touches training,
and a preset's own figure stays its final epoch's (``metrics.json``): no best epoch is picked.
The x axis is the run's training seconds (``history.csv``: the epochs, validation included).
The notebook's way is ``benchmarks/speed.py``'s (float arrays, one-hot labels, batch 32, Adam),
scored after every epoch outside the timed part.

A finished run is not trained again (the command line skips it), so the same command resumes an
interrupted benchmark; runs of earlier invocations (other recipes or seeds) stay in the results,
so the recipes can be run one at a time, each with the machine to itself. Writes
``results.json``, ``curves.csv``, ``summary.md`` and ``time_to_accuracy.png`` to ``--out``.

    python benchmarks/time_to_accuracy.py --root ../shared/data/emnist-proxy --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

PRESETS = ("cnn_baseline", "speedrun_cnn", "speedrun_cnn_avx2", "best_cnn", "best_mlp")
RECIPES = ("notebook", *PRESETS)
BUDGET_SECONDS = {"speedrun_cnn": 600, "speedrun_cnn_avx2": 600, "best_cnn": 2700, "best_mlp": 900}
"""The presets' training-time budgets on 2 cores (10, 10, 45 and 15 minutes)."""


def checkpoint_override(folder: Path) -> str:
    target = f"{folder}/epochs/{{epoch:03d}}.weights.h5"
    return (
        "trainer.callbacks=[{_target_:keras.callbacks.ModelCheckpoint,"
        f"filepath:'{target}',save_weights_only:true}}]"
    )


def train_preset(name: str, seed: int, root: str, out: Path, overrides: list[str]) -> Path:
    """Runs the preset through the command line (skipped when already completed)."""
    folder = out / name / f"seed={seed}"
    command = [
        sys.executable,
        "-m",
        "emnist_bench",
        f"+experiment={name}",
        f"data.root={Path(root).resolve()}",
        f"trainer.seed={seed}",
        checkpoint_override(folder),
        f"hydra.run.dir='{folder}'",
        *overrides,
    ]
    print(f"{name}, seed {seed}: {' '.join(command[2:])}", flush=True)
    subprocess.run(command, check=True, cwd=REPO)
    return folder


def preset_curve(folder: Path, x_test, y_test) -> dict:
    """Each kept epoch scored on the test split, against the cumulative training seconds."""
    from emnist_bench.evaluate.metrics import predict
    from emnist_bench.models import load_model

    metrics = json.loads((folder / "metrics.json").read_text())
    with (folder / "history.csv").open() as file:
        seconds = [float(row["seconds"]) for row in csv.DictReader(file)]
    model = load_model(folder / "model.keras")
    accuracies = []
    for epoch in range(1, len(seconds) + 1):
        model.load_weights(folder / "epochs" / f"{epoch:03d}.weights.h5")
        accuracies.append(float((predict(model, x_test, 512).argmax(1) == y_test).mean()))
    return {
        "epoch_seconds": seconds,
        "test_accuracy": accuracies,
        "final_test_accuracy": float(metrics["test_accuracy"]),
        "train_seconds": float(metrics["train_seconds"]),
        "status": metrics["status"],
    }


def notebook_curve(root: str, seed: int, epochs: int, overrides: list[str]) -> dict:
    """The notebook's way on the preset runs' data split (``overrides`` may change it)."""
    from speed import compose, notebook_way

    from emnist_bench.data import load_dataset

    base = [f"data.root={root}", "+experiment=cnn_baseline", f"trainer.seed={seed}"]
    cfg = compose([*base, *overrides])
    data = load_dataset(cfg.data, seed=seed)
    run = notebook_way(cfg, data, target=1.01, max_epochs=epochs)  # never stops early
    return {
        "epoch_seconds": run["epoch_seconds"],
        "test_accuracy": run["test_accuracy"],
        "final_test_accuracy": run["test_accuracy"][-1],
        "train_seconds": sum(run["epoch_seconds"]),
        "status": "completed",
    }


def seconds_to(curve: dict, target: float) -> float | None:
    elapsed = 0.0
    for seconds, accuracy in zip(curve["epoch_seconds"], curve["test_accuracy"], strict=True):
        elapsed += seconds
        if accuracy >= target:
            return elapsed
    return None


def summary_rows(results: dict, target: float) -> list[dict]:
    rows = []
    for recipe, by_seed in results["runs"].items():
        finals = [run["final_test_accuracy"] for run in by_seed.values()]
        budget = BUDGET_SECONDS.get(recipe)
        missed = [
            seed
            for seed, run in by_seed.items()
            if (budget and run["train_seconds"] > budget) or run["final_test_accuracy"] < target
        ]
        reach = [seconds_to(run, target) for run in by_seed.values()]
        rows.append(
            {
                "recipe": recipe,
                "seeds": ", ".join(by_seed),
                "final test accuracy (each seed)": ", ".join(f"{a:.2%}" for a in finals),
                "mean": f"{statistics.mean(finals):.2%}",
                "epochs": ", ".join(str(len(run["epoch_seconds"])) for run in by_seed.values()),
                "training seconds": ", ".join(
                    f"{run['train_seconds']:.0f}" for run in by_seed.values()
                ),
                f"first epoch at >= {target:.0%}, seconds": ", ".join(
                    "never" if r is None else f"{r:.0f}" for r in reach
                ),
                "budget": f"{budget} s" if budget else "-",
                "overrides": "; ".join(
                    f"seed {seed}: {' '.join(run['overrides'])}"
                    for seed, run in by_seed.items()
                    if run.get("overrides")
                )
                or "-",
                f"missed (final < {target:.0%} or over budget)": ", ".join(missed) or "none",
            }
        )
    return rows


def markdown(rows: list[dict], machine: dict) -> str:
    header = list(rows[0])
    lines = [
        f"Machine: {machine['cores']} cores, {machine['cpu']}, {machine['device']}, "
        f"TensorFlow {machine['tensorflow']}. Data: the EMNIST proxy (not EMNIST Balanced).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(str(row[key]) for key in header) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def plot(results: dict, target: float, path: Path) -> None:
    from emnist_bench.figures import new_figure, save

    fig = new_figure(8, 4.8)
    ax = fig.add_subplot()
    palette = ("tab:gray", "tab:blue", "tab:red", "tab:orange", "tab:green", "tab:purple")
    colors = dict(zip(RECIPES, palette, strict=True))
    for recipe, by_seed in results["runs"].items():
        for index, run in enumerate(by_seed.values()):
            elapsed, total = [], 0.0
            for seconds in run["epoch_seconds"]:
                total += seconds
                elapsed.append(total / 60)
            ax.plot(elapsed, [100 * a for a in run["test_accuracy"]], marker="o", markersize=3,
                    color=colors.get(recipe), alpha=0.85,
                    linestyle="--" if run.get("overrides") else "-",
                    label=recipe if index == 0 else None)  # fmt: skip
    ax.axhline(100 * target, color="black", linewidth=0.8, linestyle="--")
    for recipe, budget in BUDGET_SECONDS.items():
        if recipe in results["runs"]:
            ax.axvline(budget / 60, color=colors[recipe], linewidth=0.8, linestyle=":")
    ax.set_xlabel("training minutes (2 CPU cores; dashed: a run with overrides, see summary.md)")
    ax.set_ylabel("proxy test accuracy after the epoch (%)")
    ax.set_ylim(80, 92)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    machine = results["machine"]
    ax.set_title(f"EMNIST proxy, seeds {', '.join(results['seeds'])}: {machine['cpu']}",
                 fontsize=9)  # fmt: skip
    save(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--root",
        default=str(REPO.parent / "shared/data/emnist-proxy"),
        help="folder with the EMNIST Balanced files (default: the proxy beside the repository)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[1], help="one run per seed")
    parser.add_argument("--recipes", nargs="+", choices=RECIPES, default=list(RECIPES))
    parser.add_argument(
        "--notebook-epochs", type=int, default=12, help="epochs of the notebook's way"
    )
    parser.add_argument(
        "--target", type=float, default=0.90, help="the accuracy whose first epoch is timed"
    )
    parser.add_argument(
        "--out",
        default="outputs/benchmarks/time_to_accuracy",
        help="folder for results.json, curves.csv, the figure and summary.md; earlier runs "
        "there (other recipes or seeds) stay in them",
    )
    parser.add_argument("overrides", nargs="*", help="config overrides for every preset run")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    previous = json.loads(results_path.read_text()) if results_path.is_file() else {}

    from rich.console import Console
    from rich.table import Table
    from speed import compose, machine

    from emnist_bench.data import load_test

    test, _ = load_test(compose([f"data.root={args.root}"]).data)
    # Runs of earlier invocations (other recipes or seeds) stay in the results and the figure.
    runs = previous.get("runs", {})
    seeds = sorted({*previous.get("seeds", []), *map(str, args.seeds)}, key=int)
    for by_seed in runs.values():  # results written before runs kept their own: the old global ones
        for run in by_seed.values():
            run.setdefault("overrides", previous.get("overrides", []))
    results = {"machine": machine(), "root": args.root, "seeds": seeds, "runs": runs}
    for recipe in args.recipes:
        for seed in args.seeds:
            if recipe == "notebook":
                kept = previous.get("runs", {}).get("notebook", {}).get(str(seed))
                run = kept or notebook_curve(args.root, seed, args.notebook_epochs, args.overrides)
            else:
                folder = train_preset(recipe, seed, args.root, out, args.overrides)
                run = preset_curve(folder, test.images, test.labels)
            run["overrides"] = args.overrides  # e.g. one thread each for runs side by side
            results["runs"].setdefault(recipe, {})[str(seed)] = run
            results_path.write_text(json.dumps(results, indent=2) + "\n")

    with (out / "curves.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["recipe", "seed", "epoch", "training_seconds", "test_accuracy"])
        for recipe, by_seed in results["runs"].items():
            for seed, run in by_seed.items():
                total = 0.0
                for epoch, (seconds, accuracy) in enumerate(
                    zip(run["epoch_seconds"], run["test_accuracy"], strict=True), start=1
                ):
                    total += seconds
                    writer.writerow([recipe, seed, epoch, f"{total:.1f}", f"{accuracy:.4f}"])
    rows = summary_rows(results, args.target)
    (out / "summary.md").write_text(markdown(rows, results["machine"]))
    plot(results, args.target, out / "time_to_accuracy.png")
    table = Table(title=f"Time to accuracy on the EMNIST proxy ({results['machine']['cpu']})")
    for key in rows[0]:
        table.add_column(key)
    for row in rows:
        table.add_row(*map(str, row.values()))
    Console(width=200).print(table)
    print(f"Wrote {out}/summary.md, curves.csv, results.json and time_to_accuracy.png")


if __name__ == "__main__":
    main()
