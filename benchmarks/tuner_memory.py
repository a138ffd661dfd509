"""Resident memory across the trials of one keras-tuner search, in one process.

    MPLBACKEND=Agg TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python benchmarks/tuner_memory.py \
        [--trials 20] [--family mlp] [--data-root ../shared/data/emnist-proxy-csv]

Runs a random search of tiny trials (10 images per class, one epoch each) and prints the
resident set size (VmRSS) after each trial, then its growth from trial 2 (after the warm-up)
to the last. The search clears the Keras session between trials, so the growth should stay
under 10%; the exit status is 1 when it does not.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
from pathlib import Path

from hydra import compose, initialize_config_dir

from emnist_bench import config_dir

REPO = Path(__file__).resolve().parents[1]
LIMIT_PERCENT = 10.0


def resident_mib() -> float:
    """This process's resident set size in MiB (Linux ``/proc/self/status``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--family", choices=["mlp", "cnn"], default="mlp")
    parser.add_argument(
        "--data-root", type=Path, default=REPO.parent / "shared/data/emnist-proxy-csv"
    )
    args = parser.parse_args()

    from emnist_bench.data import load_dataset
    from emnist_bench.training.runtime import configure_runtime
    from emnist_bench.tuning import search as search_lib

    readings: list[float] = []

    class MeasuredRandomSearch(search_lib.RandomSearch):
        def on_trial_end(self, trial):
            super().on_trial_end(trial)  # clears the Keras session
            readings.append(resident_mib())
            status = self.oracle.get_trial(trial.trial_id).status
            print(
                f"trial {len(readings):3d}  {status:9s}  RSS {readings[-1]:8.1f} MiB",
                file=sys.__stdout__,
                flush=True,
            )

    search_lib.TUNERS["random"] = MeasuredRandomSearch
    with tempfile.TemporaryDirectory() as folder:
        overrides = [
            f"model={args.family}",
            "tuner=random",
            f"tuner.max_trials={args.trials}",
            "tuner.epochs=1",
            f"data.root={args.data_root.resolve()}",
            "data.val_size=0.2",
            "data.subset=10",
            f"data.cache_dir={folder}/cache",
            f"output_dir={folder}",
        ]
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose("config", overrides=overrides)
        configure_runtime(cfg.trainer)
        data = load_dataset(cfg.data, seed=int(cfg.trainer.seed))
        print(f"before the search   RSS {resident_mib():8.1f} MiB", flush=True)
        with contextlib.redirect_stdout(io.StringIO()):  # keras-tuner's per-trial tables
            search_lib.search(cfg, data, Path(folder))

    warm, middle, last = readings[1], readings[len(readings) // 2 - 1], readings[-1]
    growth = 100 * (last - warm) / warm
    print(
        f"growth from trial 2 to trial {len(readings)}: {last - warm:+.1f} MiB ({growth:+.1f}%), "
        f"limit {LIMIT_PERCENT:.0f}%; over the second half (trial {len(readings) // 2} on): "
        f"{last - middle:+.1f} MiB"
    )
    return 0 if growth < LIMIT_PERCENT else 1


if __name__ == "__main__":
    sys.exit(main())
