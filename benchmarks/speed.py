"""Speed: the notebook way vs emnist_bench's own training path, side by side, in one process.

For the ``cnn_baseline`` model on the IDX proxy it measures
  1. seconds per epoch (median of the epochs after the first, which includes tracing),
  2. training time until the test accuracy first reaches the target (84% by default),
  3. loading Balanced-size data (131,600 images) from the cache, and ``--help`` wall time,
then prints one table and writes the figures to a JSON file.

``--end-to-end`` also times each way as a user waits for it: whole processes (Python start,
imports, data, building, every epoch with its validation, evaluation and files), the 3-epoch
process less the 1-epoch one, halved, so that what a run costs once cancels out.
``--isa native,AVX512_CORE,AVX2`` runs all of it once per oneDNN ISA, each in a process of its own
with ``ONEDNN_MAX_CPU_ISA`` set (``native``: unset), so that one machine measures every CPU kind
up to its own, and prints one table of all of them.

The notebook way is ``model.fit(x_float, y_onehot, batch_size=32)`` on float32 arrays with
categorical cross-entropy and Adam; emnist_bench's way is ``tf.data`` over uint8 arrays with the
trainer settings of the composed config (batch size, precision, steps per execution, ...).
Test accuracy is measured after each epoch, outside the timed part.

    python benchmarks/speed.py --root ../shared/data/emnist-proxy [overrides ...]
    python benchmarks/speed.py --isa native,AVX512_CORE,AVX2 --end-to-end --max-epochs 4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore", message=".*shuffle=True.*")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BALANCED_TRAIN, BALANCED_TEST = 112_800, 18_800


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from emnist_bench import config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return hydra_compose("config", overrides=[*overrides, "output_dir=unused"])


def train_until(fit_epoch, evaluate, target: float, max_epochs: int) -> dict:
    """Runs ``fit_epoch`` until ``evaluate`` reaches ``target``; times only the fitting."""
    seconds, accuracies = [], []
    for _ in range(max_epochs):
        started = time.perf_counter()
        fit_epoch()
        seconds.append(time.perf_counter() - started)
        accuracies.append(evaluate())
        print(
            f"    epoch {len(seconds)}: {seconds[-1]:.1f} s, test {accuracies[-1]:.4f}", flush=True
        )
        if accuracies[-1] >= target:
            break
    reached = accuracies[-1] >= target
    run = {"epoch_seconds": seconds, "test_accuracy": accuracies}
    return {
        **run,
        "seconds_per_epoch": statistics.median(seconds[1:] or seconds),
        "epochs_to_target": len(seconds) if reached else None,
        "seconds_to_target": seconds_to(run, target),
    }


def seconds_to(run: dict, target: float) -> float | None:
    """Training seconds until ``run``'s test accuracy first reached ``target`` (None: never)."""
    for epoch, accuracy in enumerate(run["test_accuracy"], start=1):
        if accuracy >= target:
            return sum(run["epoch_seconds"][:epoch])
    return None


def notebook_setup(cfg, data):
    """The notebook's model, compiled its way, and its arrays: float pixels, one-hot labels."""
    import keras

    from emnist_bench.training.fit import build_model
    from emnist_bench.training.runtime import configure_runtime

    configure_runtime(cfg.trainer)
    keras.mixed_precision.set_global_policy("float32")
    model = build_model(cfg, data.num_classes)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    x = data.x_train.astype("float32")  # the notebook held float arrays and one-hot labels
    y = keras.utils.to_categorical(data.y_train, data.num_classes)
    validation = (
        data.x_val.astype("float32"),
        keras.utils.to_categorical(data.y_val, data.num_classes),
    )
    return model, x, y, validation


def notebook_way(cfg, data, target: float, max_epochs: int) -> dict:
    model, x, y, validation = notebook_setup(cfg, data)
    x_test = data.x_test.astype("float32")

    def fit_epoch():
        model.fit(x, y, batch_size=32, epochs=1, validation_data=validation, verbose=0)

    def evaluate():
        return float((model.predict(x_test, verbose=0).argmax(1) == data.y_test).mean())

    return train_until(fit_epoch, evaluate, target, max_epochs)


def emnist_bench_way(cfg, data, target: float, max_epochs: int) -> dict:
    from emnist_bench.evaluate.metrics import predict
    from emnist_bench.training.fit import build_model, compile_model
    from emnist_bench.training.inputs import make_dataset
    from emnist_bench.training.runtime import configure_runtime

    configure_runtime(cfg.trainer)
    model = build_model(cfg, data.num_classes)
    compile_model(model, cfg)
    batch, seed = int(cfg.trainer.batch_size), int(cfg.trainer.seed)
    train = make_dataset(data.x_train, data.y_train, batch_size=batch, shuffle=True,
                                  seed=seed)  # fmt: skip
    val = make_dataset(data.x_val, data.y_val, batch_size=batch, shuffle=False, seed=seed)

    def fit_epoch():
        model.fit(train, epochs=1, validation_data=val, verbose=0)

    def evaluate():
        return float((predict(model, data.x_test, batch).argmax(1) == data.y_test).mean())

    return train_until(fit_epoch, evaluate, target, max_epochs)


def cache_load_seconds(root: Path, repeats: int = 5) -> float:
    """Median time to load Balanced-size train + test (131,600 images) from the cache."""
    import numpy as np

    from emnist_bench.data.load import load_part
    from tests.emnist_files import write_idx_split, write_mapping

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        source = load_part(root, "balanced", "train", cache_dir=folder / "cache")
        for part, count in (("train", BALANCED_TRAIN), ("test", BALANCED_TEST)):
            take = np.resize(np.arange(source.labels.size), count)
            write_idx_split(folder / "data", "balanced", part, source.images[take],
                            source.labels[take])  # fmt: skip
        write_mapping(folder / "data", "balanced", 47)
        for part in ("train", "test"):  # the first, parsing load fills the cache
            load_part(folder / "data", "balanced", part, cache_dir=folder / "cache")
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            for part in ("train", "test"):
                load_part(folder / "data", "balanced", part, cache_dir=folder / "cache")
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def help_seconds(repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "emnist_bench", "--help"], capture_output=True,
                       check=True)  # fmt: skip
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def notebook_process(root: str, epochs: int) -> None:
    """The notebook way as a whole process would run it: load, build, fit ``epochs``, evaluate."""
    from emnist_bench.data import load_dataset

    base = [f"data.root={root}", "+experiment=cnn_baseline"]
    cfg = compose([*base, "trainer.early_stopping.enabled=false"])
    data = load_dataset(cfg.data, seed=int(cfg.trainer.seed))
    model, x, y, validation = notebook_setup(cfg, data)
    model.fit(x, y, batch_size=32, epochs=epochs, validation_data=validation, verbose=0)
    model.predict(data.x_test.astype("float32"), verbose=0)  # the test score, as notebook_way


def process_seconds(command: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env, cwd=REPO)
    return time.perf_counter() - started


def end_to_end(root: str, overrides: list[str], repeats: int) -> dict:
    """Seconds per epoch as a user waits: (3-epoch process - 1-epoch process) / 2, the median of
    ``repeats`` pairs, for the notebook way and for ``python -m emnist_bench``."""
    script = [sys.executable, str(Path(__file__).resolve())]
    figures = {}
    with tempfile.TemporaryDirectory() as folder:

        def ours(epochs: int, repeat: int) -> list[str]:
            return [sys.executable, "-m", "emnist_bench", f"data.root={root}",
                    "+experiment=cnn_baseline", "trainer.early_stopping.enabled=false",
                    f"trainer.epochs={epochs}", *overrides,
                    f"hydra.run.dir={folder}/run-{epochs}-{repeat}"]  # fmt: skip

        ways = {
            "notebook": lambda epochs, _: [
                *script,
                "--root",
                root,
                "--notebook-process",
                str(epochs),
            ],  # fmt: skip
            "emnist_bench": ours,
        }
        for way, command in ways.items():
            # Unmeasured: fills the data cache and trainer.precision=auto's choice, which later
            # runs read, so that the 1-epoch process pays for neither more than the 3-epoch one.
            process_seconds(command(1, "warm-up"))
            pairs = []
            for repeat in range(repeats):
                one = process_seconds(command(1, repeat))
                three = process_seconds(command(3, repeat))
                pairs.append({"one_epoch": one, "three_epochs": three})
                print(f"    {way} end to end: 1 epoch {one:.1f} s, 3 epochs {three:.1f} s",
                      flush=True)  # fmt: skip
            per_epoch = [(p["three_epochs"] - p["one_epoch"]) / 2 for p in pairs]
            figures[way] = {"processes": pairs, "seconds_per_epoch": statistics.median(per_epoch)}
    figures["speedup"] = (
        figures["notebook"]["seconds_per_epoch"] / figures["emnist_bench"]["seconds_per_epoch"]
    )
    return figures


def per_isa(args: argparse.Namespace) -> None:
    """Runs this benchmark once per ISA in ``args.isa``, each in its own process and environment,
    then prints one table of them all."""
    results = {}
    for isa in args.isa.split(","):
        env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA",
                                                                  "DNNL_MAX_CPU_ISA")}  # fmt: skip
        if isa != "native":
            env["ONEDNN_MAX_CPU_ISA"] = isa
        output = Path(args.output).with_name(f"speed-{isa}.json")
        command = [sys.executable, str(Path(__file__).resolve()), "--root", args.root,
                   "--target", str(args.target), "--max-epochs", str(args.max_epochs),
                   "--output", str(output), "--repeats", str(args.repeats),
                   *(["--end-to-end"] if args.end_to_end else []), *args.overrides]  # fmt: skip
        print(f"== ISA {isa}", flush=True)
        subprocess.run(command, check=True, env=env, cwd=REPO)
        results[isa] = json.loads(output.read_text())
    isa_table(results, args.target)
    output = Path(args.output).with_name("speed-isa.json")
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"figures written to {output}")


def isa_table(results: dict, target: float) -> None:
    from rich.console import Console
    from rich.table import Table

    def fmt(value, unit=" s"):
        return "-" if value is None else f"{value:.1f}{unit}"

    table = Table(title="cnn_baseline, the notebook way against emnist_bench, per oneDNN ISA")
    for column in (
        "ISA",
        "step median: notebook",
        "emnist_bench",
        "ratio",
        "end to end: notebook",
        "emnist_bench",
        "ratio",
        f"emnist_bench to {target:.0%}",
    ):
        table.add_column(column, justify="right")  # fmt: skip
    for isa, found in results.items():
        ours, theirs = found["emnist_bench"], found.get("notebook") or {}
        whole = found.get("end_to_end") or {}
        table.add_row(
            isa,
            fmt(theirs.get("seconds_per_epoch")),
            fmt(ours["seconds_per_epoch"]),
            fmt(found.get("epoch_speedup"), "x"),
            fmt(whole.get("notebook", {}).get("seconds_per_epoch")),
            fmt(whole.get("emnist_bench", {}).get("seconds_per_epoch")),
            fmt(whole.get("speedup"), "x"),
            fmt(ours["seconds_to_target"]) if ours["seconds_to_target"] else
            f"not in {len(ours['epoch_seconds'])} epochs",
        )  # fmt: skip
    Console(width=160).print(table)


def machine() -> dict:
    import tensorflow as tf

    from emnist_bench.provenance import cpu_description

    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    return {"cores": os.cpu_count(), "cpu": cpu_description(), "device": ", ".join(gpus) or "CPU",
            "tensorflow": tf.__version__}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=str(REPO.parent / "shared/data/emnist-proxy"))
    parser.add_argument("--target", type=float, default=0.84)
    parser.add_argument("--max-epochs", type=int, default=12)
    parser.add_argument("--output", default="outputs/benchmarks/speed.json")
    parser.add_argument("--skip-notebook", action="store_true")
    parser.add_argument(
        "--end-to-end",
        action="store_true",
        help="also time whole processes of 1 and 3 epochs, each way",
    )
    parser.add_argument("--repeats", type=int, default=1, help="end-to-end pairs per way")
    parser.add_argument(
        "--isa",
        help="comma-separated oneDNN ISAs (native = no cap), one "
        "process each: native,AVX512_CORE,AVX2",
    )
    parser.add_argument("--notebook-process", type=int, metavar="EPOCHS", help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="config overrides for emnist_bench's way")
    args = parser.parse_args()
    if args.notebook_process:
        notebook_process(args.root, args.notebook_process)
        return
    if args.isa:
        per_isa(args)
        return

    from rich.console import Console
    from rich.table import Table

    from emnist_bench.data import load_dataset

    base = [
        f"data.root={args.root}",
        "+experiment=cnn_baseline",
        "trainer.early_stopping.enabled=false",
    ]
    cfg = compose([*base, *args.overrides])
    data = load_dataset(cfg.data, seed=int(cfg.trainer.seed))
    results = {"machine": machine(), "data": f"EMNIST proxy (IDX) at {args.root}",
               "train_images": int(data.y_train.size), "target": args.target,
               "overrides": args.overrides}  # fmt: skip
    if not args.skip_notebook:
        print("notebook way (float arrays, one-hot, batch 32):", flush=True)
        results["notebook"] = notebook_way(compose(base), data, args.target, args.max_epochs)
    print(f"emnist_bench way ({' '.join(args.overrides) or 'defaults'}):", flush=True)
    results["emnist_bench"] = emnist_bench_way(cfg, data, args.target, args.max_epochs)
    if args.end_to_end:
        results["end_to_end"] = end_to_end(args.root, args.overrides, args.repeats)
    results["cache_load_seconds"] = cache_load_seconds(Path(args.root))
    results["help_seconds"] = help_seconds()

    ours, theirs = results["emnist_bench"], results.get("notebook")
    if theirs:
        results["epoch_speedup"] = theirs["seconds_per_epoch"] / ours["seconds_per_epoch"]
        if ours["seconds_to_target"] and theirs["seconds_to_target"]:
            ratio = ours["seconds_to_target"] / theirs["seconds_to_target"]
            results["time_to_target_ratio"] = ratio
        elif ours["seconds_to_target"]:
            # The notebook way never got there: its whole training time bounds the ratio.
            results["time_to_target_ratio_below"] = ours["seconds_to_target"] / sum(
                theirs["epoch_seconds"]
            )
        # A target both ways reach: the notebook way's own best test accuracy.
        best = max(theirs["test_accuracy"])
        results["notebook_best"] = {"test_accuracy": best, "notebook_seconds": seconds_to(
            theirs, best), "emnist_bench_seconds": seconds_to(ours, best)}  # fmt: skip
    where = results["machine"]
    table = Table(title=f"cnn_baseline on the EMNIST proxy — {where['cores']} cores, "
                        f"{where['device']} ({where['cpu']})")  # fmt: skip
    table.add_column("measure")
    table.add_column("notebook way", justify="right")
    table.add_column("emnist_bench", justify="right")
    table.add_column("ratio", justify="right")

    def fmt(value, unit=" s"):
        return "-" if value is None else f"{value:.1f}{unit}"

    table.add_row("seconds per epoch", fmt(theirs and theirs["seconds_per_epoch"]),
                  fmt(ours["seconds_per_epoch"]),
                  fmt(results.get("epoch_speedup"), "x faster"))  # fmt: skip
    if "time_to_target_ratio_below" in results:
        never = f"not in {len(theirs['epoch_seconds'])} epochs"
        table.add_row(f"time to {args.target:.0%} test", never, fmt(ours["seconds_to_target"]),
                      f"< {results['time_to_target_ratio_below']:.2f}x the time")  # fmt: skip
    else:
        table.add_row(f"time to {args.target:.0%} test",
                      fmt(theirs and theirs["seconds_to_target"]), fmt(ours["seconds_to_target"]),
                      fmt(results.get("time_to_target_ratio"), "x the time"))  # fmt: skip
    table.add_row("epochs to target", str(theirs and theirs["epochs_to_target"]),
                  str(ours["epochs_to_target"]), "")  # fmt: skip
    if theirs:
        best = results["notebook_best"]
        mine = best["emnist_bench_seconds"]
        table.add_row(f"time to the notebook way's best ({best['test_accuracy']:.1%})",
                      fmt(best["notebook_seconds"]), fmt(mine),
                      fmt(mine and mine / best["notebook_seconds"], "x the time"))  # fmt: skip
    table.add_row("cache load, 131,600 images", "", f"{results['cache_load_seconds']:.2f} s", "")
    table.add_row("--help wall time", "", f"{results['help_seconds']:.2f} s", "")
    Console().print(table)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"figures written to {output}")


if __name__ == "__main__":
    main()
