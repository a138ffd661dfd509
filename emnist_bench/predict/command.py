"""``python -m emnist_bench.predict RUN_DIR IMAGE_OR_FOLDER [...]``: a run's model on one's own
handwriting.

Each PNG or JPEG (a folder stands for the PNG and JPEG files in it) is converted as EMNIST
converted its characters (:mod:`emnist_bench.predict.preprocess`), the run's model predicts,
and the top characters with their probabilities are printed: a table, or with ``--json`` one
JSON object per line and image, ``{"file": ..., "top": [{"label": "A", "probability": 0.91},
...]}``. A contact sheet (each input, what the model saw, the prediction) is written to
``RUN_DIR/contact_sheet.png`` unless ``--sheet`` names another file or ``--no-sheet``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from emnist_bench.errors import UserError, exit_on_user_error

SHEET = "contact_sheet.png"


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(
        prog="python -m emnist_bench.predict",
        description="Predict the characters in PNG/JPEG images of handwriting with a run's model.",
    )
    parse.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="the output folder of a run")
    parse.add_argument(
        "inputs", metavar="IMAGE_OR_FOLDER", nargs="+", type=Path,
        help="PNG or JPEG files, or folders of them; dark ink on light paper or the reverse",
    )  # fmt: skip
    parse.add_argument("--top", type=int, default=3, help="characters shown per image (3)")
    parse.add_argument("--json", action="store_true", help="one JSON object per line and image")
    parse.add_argument(
        "--sheet", type=Path, default=None, help=f"contact sheet PNG (default RUN_DIR/{SHEET})"
    )
    parse.add_argument("--no-sheet", action="store_true", help="write no contact sheet")
    return parse


def predict_files(
    run_dir: Path | str,
    inputs: list[Path | str],
    *,
    top: int = 3,
    sheet: Path | str | None = None,
) -> tuple[list[dict[str, Any]], Any]:
    """Predicts every image in ``inputs`` with the run's model.

    Args:
        run_dir: The run folder.
        inputs: Image files and folders of them.
        top: How many characters to give per image.
        sheet: Where to write the contact sheet; None writes none.

    Returns:
        One ``{"file", "top"}`` dict per image, in order, and the images the model saw
        (N, 28, 28) uint8.

    Raises:
        UserError: when the run, a file or an image is unusable.
    """
    from emnist_bench.predict import preprocess
    from emnist_bench.predict.saved import classify, open_run, top_k

    if top < 1:
        raise UserError(f"--top must be at least 1, got {top}")
    paths = preprocess.image_files(list(inputs))
    run = open_run(run_dir)
    from emnist_bench.predict.sheet import MAX_ITEMS, write_contact_sheet

    originals, seen = preprocess.convert_files(paths, keep=MAX_ITEMS if sheet else 0)
    tops = top_k(classify(run, seen), run.classes, min(top, len(run.classes)))
    results = [{"file": str(path), "top": best} for path, best in zip(paths, tops, strict=True)]
    if sheet:
        names = [path.name for path in paths]
        write_contact_sheet(Path(sheet), names, originals, seen, tops)
    return results, seen


def results_table(results: list[dict[str, Any]]):
    """A rich table: one row per image, its top characters with their probabilities (files in
    one folder are named in the title and shown by name)."""
    from rich.table import Table

    paths = [Path(result["file"]) for result in results]
    folders = {path.parent for path in paths}
    one_folder = len(folders) == 1
    table = Table(title="top characters" + (f" in {next(iter(folders))}" if one_folder else ""))
    table.add_column("file", overflow="fold")
    for rank in range(len(results[0]["top"]) if results else 0):
        table.add_column(f"#{rank + 1}", justify="right")
    for path, result in zip(paths, results, strict=True):
        cells = [f"[bold]{item['label']}[/] {item['probability']:6.1%}" for item in result["top"]]
        table.add_row(path.name if one_folder else str(path), *cells)
    return table


def main(arguments: list[str] | None = None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    options = parser().parse_args(sys.argv[1:] if arguments is None else arguments)
    sheet = None if options.no_sheet else (options.sheet or options.run_dir / SHEET)
    with exit_on_user_error():
        results, _ = predict_files(options.run_dir, options.inputs, top=options.top, sheet=sheet)
    if options.json:
        for result in results:
            print(json.dumps(result, ensure_ascii=False))
    else:
        from rich.console import Console

        Console().print(results_table(results))
    if sheet:
        print(f"contact sheet: {sheet}", file=sys.stderr if options.json else sys.stdout)
