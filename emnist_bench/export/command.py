"""``python -m emnist_bench.export RUN_DIR --format savedmodel|tflite [--out DIR]
[--quantize none|dynamic|float16] [data.root=DIR ...]``: a run's model for serving or a phone.

Writes into ``--out`` (default ``RUN_DIR/export``):

* ``savedmodel/1/``: a SavedModel for TF Serving (``--model_base_path=OUT/savedmodel``), whose
  ``serving_default`` signature takes ``pixels`` (float32, (N, 28, 28), upright, 0-255) and
  gives ``output_0`` (the class probabilities);
* ``model.tflite`` (``model_dynamic.tflite``, ``model_float16.tflite`` when quantized), the
  same input and output;
* ``classes.json``: the character of each output;
* ``check_savedmodel.json``, ``check_model*.tflite.json``: the checks below.

Each is written under a temporary name, loaded back with TensorFlow's own loader and run on
the run's test split (``data.root`` of its config unless overridden) before it is renamed into
place and reported: the SavedModel must give the Keras model's predictions exactly, the TFLite
file must agree with them on at least :data:`MIN_AGREEMENT` of the images.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from emnist_bench.errors import UserError, exit_on_user_error
from emnist_bench.rundir import atomic_path, write_json

FORMATS = ("savedmodel", "tflite")
MIN_AGREEMENT = {"none": 0.999, "float16": 0.99, "dynamic": 0.97}
"""The least share of test images on which a TFLite file must predict the Keras model's class."""
SAVEDMODEL_TOLERANCE = 1e-5
"""The largest difference in any probability allowed between the SavedModel and Keras."""


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(
        prog="python -m emnist_bench.export",
        description="Export a run's model as a SavedModel or TFLite file, checked on its test "
        "split.",
    )
    parse.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="the output folder of a run")
    parse.add_argument(
        "overrides", metavar="key=value", nargs="*",
        help="config overrides for finding the test split, e.g. data.root=DIR",
    )  # fmt: skip
    parse.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
    parse.add_argument("--out", type=Path, default=None, help="folder (default RUN_DIR/export)")
    parse.add_argument(
        "--quantize", default="none", choices=("none", "dynamic", "float16"),
        help="TFLite only: int8 weights (dynamic) or float16 weights",
    )  # fmt: skip
    return parse


def agreement(probabilities: np.ndarray, reference: np.ndarray) -> float:
    """The share of images on which both give the same likeliest class."""
    return float((probabilities.argmax(axis=1) == reference.argmax(axis=1)).mean())


def export(
    run_dir: Path | str,
    fmt: str,
    out: Path | str | None = None,
    quantize: str = "none",
    overrides: list[str] = (),
) -> dict[str, Any]:
    """Exports the run's model, checks the file on the test split, and returns the check.

    Raises:
        UserError: when the run or its test split is unusable, or the check fails.
    """
    from emnist_bench.config import with_overrides
    from emnist_bench.predict.saved import open_run

    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if quantize != "none" and fmt != "tflite":
        raise UserError("--quantize applies to --format tflite only")
    bad = [item for item in overrides if "=" not in item]
    if bad:
        raise UserError(f"{bad[0]!r} is not key=value")
    out = Path(out) if out is not None else Path(run_dir) / "export"
    check_out(out)  # before the work, not after it
    run = open_run(run_dir)
    usage = "python -m emnist_bench.export --format FORMAT RUN_DIR [key=value ...]"
    cfg = with_overrides(run.config, ["data.download=false", *overrides], usage)
    test, mapping = load_checked_test(cfg, run.classes)

    from emnist_bench.evaluate.metrics import predict
    from emnist_bench.export import formats

    model = formats.float32_model(run.model)
    reference = predict(model, test.images, run.batch_size)
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "savedmodel":
        path, probabilities = _write_savedmodel(model, out, test.images, reference)
    else:
        path, probabilities = _write_tflite(model, out, quantize, test.images, reference)
    result = {
        "format": fmt,
        "path": str(path),
        "quantize": quantize,
        "size_bytes": _size(path),
        "test_samples": int(test.labels.size),
        "data_root": str(cfg.data.root),
        "agreement": agreement(probabilities, reference),
        "max_probability_difference": float(np.abs(probabilities - reference).max()),
        "keras_accuracy": float((reference.argmax(axis=1) == test.labels).mean()),
        "export_accuracy": float((probabilities.argmax(axis=1) == test.labels).mean()),
    }
    if model is not run.model:  # trained in mixed precision: how far float32 moved it
        trained = predict(run.model, test.images, run.batch_size)
        result["agreement_with_mixed_precision_model"] = agreement(reference, trained)
    from emnist_bench.evaluate.artifacts import write_classes

    write_classes(out, str(cfg.data.split), mapping)
    write_json(out / f"check_{'savedmodel' if fmt == 'savedmodel' else path.name}.json", result)
    return result


def check_out(out: Path) -> None:
    """Raises :class:`UserError` unless ``out`` is a folder, or can be made one, to write in."""
    existing = next(folder for folder in (out, *out.parents) if folder.exists())
    if not existing.is_dir():
        raise UserError(
            f"--out {existing}: exists and is not a folder; name a folder (new or existing)"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"--out {out}: {existing} is not writable; name a folder you own")


def load_checked_test(cfg, classes: tuple[str, ...]):
    """The run's test split (images, labels) and its mapping, which must be the model's."""
    from emnist_bench.data import load_test

    try:
        test, mapping = load_test(cfg.data)
    except UserError as error:
        raise UserError(
            f"the check needs the run's test split: {error}; pass data.root=DIR"
        ) from error
    if mapping.characters != classes:
        raise UserError(
            f"the {cfg.data.split} mapping in {cfg.data.root} is not the run's; pass the data.root "
            "of the split it was trained on"
        )
    return test, mapping


def _write_savedmodel(
    model, out: Path, images: np.ndarray, reference: np.ndarray
) -> tuple[Path, np.ndarray]:
    from emnist_bench.export.formats import savedmodel_predict, write_savedmodel

    final = out / "savedmodel" / "1"
    with atomic_path(final, folder=True) as temporary:  # renamed into place once checked
        write_savedmodel(model, temporary)
        probabilities = savedmodel_predict(temporary, images)
        difference = float(np.abs(probabilities - reference).max())
        if agreement(probabilities, reference) < 1 or difference > SAVEDMODEL_TOLERANCE:
            raise UserError(
                f"the SavedModel's predictions differ from the Keras model's (largest "
                f"probability difference {difference:.2e}); nothing written"
            )
    return final, probabilities


def _write_tflite(
    model, out: Path, quantize: str, images: np.ndarray, reference: np.ndarray
) -> tuple[Path, np.ndarray]:
    from emnist_bench.export.formats import tflite_bytes, tflite_predict, write_savedmodel

    final = out / ("model.tflite" if quantize == "none" else f"model_{quantize}.tflite")
    with atomic_path(final) as temporary:  # renamed into place once checked
        with tempfile.TemporaryDirectory(prefix="emnist-export-") as scratch:
            savedmodel = write_savedmodel(model, Path(scratch) / "savedmodel")
            temporary.write_bytes(tflite_bytes(savedmodel, quantize))
        probabilities = tflite_predict(temporary, images)
        share = agreement(probabilities, reference)
        if share < MIN_AGREEMENT[quantize]:
            raise UserError(
                f"the TFLite model ({quantize}) agrees with the Keras model on only {share:.2%} "
                f"of the test images (at least {MIN_AGREEMENT[quantize]:.1%} needed); nothing "
                "written"
            )
    return final, probabilities


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def report(result: dict[str, Any]) -> str:
    """The lines printed after an export."""
    size = result["size_bytes"] / 1e6
    lines = [f"{result['format']} written: {result['path']} ({size:.1f} MB)"]
    if result["format"] == "savedmodel":
        lines.append(f"  TF Serving: --model_base_path={Path(result['path']).parent}")
    lines.append(
        f"  checked on {result['test_samples']} test images in {result['data_root']}: "
        f"same class as the Keras model on {result['agreement']:.2%} (largest probability "
        f"difference {result['max_probability_difference']:.1e}); accuracy "
        f"{result['export_accuracy']:.2%} (Keras {result['keras_accuracy']:.2%})"
    )
    if "agreement_with_mixed_precision_model" in result:
        lines.append(
            "  exported in float32; the run's mixed-precision model predicts the same class on "
            f"{result['agreement_with_mixed_precision_model']:.2%} of them"
        )
    return "\n".join(lines)


def main(arguments: list[str] | None = None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    options = parser().parse_intermixed_args(sys.argv[1:] if arguments is None else arguments)
    with exit_on_user_error():
        result = export(options.run_dir, options.fmt, options.out, options.quantize,
                        options.overrides)  # fmt: skip
    print(report(result))
