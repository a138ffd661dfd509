"""``python -m emnist_bench.evaluate RUN_DIR [data.root=DIR] [key=value ...]``: a saved model on
a test split.

Loads a run's ``model.keras`` and resolved ``config.yaml``, evaluates on the test split found
in ``data.root`` (a folder with only the test files and the mapping is enough), prints accuracy
and macro F1, and writes ``RUN_DIR/eval_<folder name>.json``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from emnist_bench.config import with_overrides
from emnist_bench.errors import UserError, exit_on_user_error
from emnist_bench.rundir import MODEL, load_saved_model, read_saved_config, write_json

USAGE = "usage: python -m emnist_bench.evaluate RUN_DIR [data.root=DIR] [key=value ...]"


def evaluate(run_dir: Path | str, overrides: list[str] = ()) -> dict[str, Any]:
    """Evaluates the model saved in ``run_dir``; returns and writes the figures.

    Raises:
        UserError: when the run folder, its files or the data are missing or do not match.
    """
    run_dir = Path(run_dir)
    saved = read_saved_config(run_dir)
    cfg = with_overrides(saved, list(overrides), USAGE)

    from emnist_bench.data import load_test

    test, mapping = load_test(cfg.data)

    from emnist_bench.evaluate.metrics import pairs_text, predict, test_metrics

    model = load_saved_model(run_dir)
    outputs = model.output_shape[-1]
    if outputs != mapping.num_classes:
        raise UserError(
            f"{run_dir / MODEL}: the model predicts {outputs} classes but the {cfg.data.split} "
            f"mapping in {cfg.data.root} has {mapping.num_classes}; evaluate on the split it was "
            "trained on"
        )
    probabilities = predict(model, test.images, int(cfg.trainer.batch_size))
    scores = test_metrics(probabilities, test.labels, mapping.characters)
    result = {
        "test_accuracy": scores["test_accuracy"],
        "macro_f1": scores["macro_f1"],
        "test_loss": scores["test_loss"],
        "test_samples": scores["test_samples"],
        "confused_pairs": scores["confused_pairs"],
        "data_root": str(cfg.data.root),
        "split": cfg.data.split,
        "data_layout": test.layout,
    }
    folder = Path(str(cfg.data.root)).expanduser().resolve().name
    destination = run_dir / f"eval_{folder}.json"
    write_json(destination, result)
    print(
        f"{cfg.data.split} test in {cfg.data.root}: accuracy {result['test_accuracy']:.4f}, "
        f"macro F1 {result['macro_f1']:.4f} on {result['test_samples']} images -> {destination}"
    )
    if result["confused_pairs"]:
        print(f"most confused: {pairs_text(result['confused_pairs'][:5])}")
    return result


def main(arguments: list[str] | None = None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    arguments = sys.argv[1:] if arguments is None else arguments
    if not arguments or arguments[0] in ("-h", "--help"):
        print(USAGE)
        sys.exit(0 if arguments else 2)
    with exit_on_user_error():
        evaluate(arguments[0], arguments[1:])
