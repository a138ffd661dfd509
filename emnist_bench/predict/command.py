"""``python -m emnist_bench.predict RUN_DIR IMAGE_OR_FOLDER [...]``: a run's model on one's own
handwriting.

Each PNG or JPEG (a folder stands for the PNG and JPEG files in it) is converted as EMNIST
converted its characters (:mod:`emnist_bench.predict.preprocess`), the run's model predicts,
and the top characters with their probabilities are printed: a table, or with ``--json`` one
JSON object per line and image, ``{"file": ..., "top": [{"label": "A", "probability": 0.91},
...]}``. A contact sheet (each input, what the model saw, the prediction) is written to
``RUN_DIR/contact_sheet.png`` unless ``--sheet`` names another file or ``--no-sheet``.

A file that cannot be read (not a PNG or JPEG, above ``--max-pixels``, blank) does not stop the
others: its row says why (``"error"`` in JSON), a line on stderr says it too, and the command
exits with code 2 after the others are predicted and saved.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from emnist_bench.errors import UserError, exit_on_user_error
from emnist_bench.predict.images import MAX_PIXELS, printable, text_name

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
    parse.add_argument(
        "--max-pixels", type=int, default=MAX_PIXELS,
        help=f"refuse images with more pixels than this ({MAX_PIXELS:,})",
    )  # fmt: skip
    return parse


def predict_files(
    run_dir: Path | str,
    inputs: list[Path | str],
    *,
    top: int = 3,
    sheet: Path | str | None = None,
    max_pixels: int = MAX_PIXELS,
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Predicts every image in ``inputs`` with the run's model; a file that cannot be read
    gets its reason instead and does not stop the others.

    Args:
        run_dir: The run folder.
        inputs: Image files and folders of them.
        top: How many characters to give per image.
        sheet: Where to write the contact sheet (of the images predicted); None writes none.
        max_pixels: Images with more pixels than this are refused (from their header).

    Returns:
        One ``{"file", "top"}`` or ``{"file", "error"}`` dict per image, in order, and the
        images the model saw (N, 28, 28) uint8, N the number predicted.

    Raises:
        UserError: when the run or an option is unusable.
    """
    from emnist_bench.predict.images import image_files
    from emnist_bench.predict.saved import classify, open_run, top_k

    if top < 1:
        raise UserError(f"--top must be at least 1, got {top}")
    if max_pixels < 1:
        raise UserError(f"--max-pixels must be at least 1, got {max_pixels}")
    run = open_run(run_dir)
    from emnist_bench.predict.sheet import MAX_ITEMS, write_contact_sheet

    converted = [_convert(path, max_pixels, keep=bool(sheet)) for path in image_files(inputs)]
    good = [item for item in converted if "seen" in item]
    seen = np.stack([item["seen"] for item in good]) if good else np.zeros((0, 28, 28), np.uint8)
    tops = top_k(classify(run, seen), run.classes, min(top, len(run.classes))) if good else []
    answers = iter(tops)
    results = [
        {"file": item["file"], "top": next(answers)}
        if "seen" in item
        else {"file": item["file"], "error": item["error"]}
        for item in converted
    ]
    if sheet and good:
        names = [printable(Path(item["file"]).name) for item in good]
        thumbnails = [item["thumbnail"] for item in good[:MAX_ITEMS]]
        write_contact_sheet(Path(sheet), names, thumbnails, seen, tops)
    return results, seen


def _convert(path: Path, max_pixels: int, keep: bool) -> dict[str, Any]:
    """``{"file", "seen"[, "thumbnail"]}`` for a file, or ``{"file", "error"}``: its reason."""
    from emnist_bench.predict.images import read_image
    from emnist_bench.predict.preprocess import to_emnist

    name = text_name(path)
    try:
        gray = read_image(path, max_pixels)
        item = {"file": name, "seen": to_emnist(gray)}
    except UserError as error:
        reason = str(error).removeprefix(f"{name}: ")
        if path.is_dir():
            reason = "no PNG or JPEG files in this folder"
        return {"file": name, "error": reason}
    if keep:
        from emnist_bench.predict.sheet import thumbnail

        item["thumbnail"] = thumbnail(gray)  # the sheet keeps this, not the whole image
    return item


def results_table(results: list[dict[str, Any]]):
    """A rich table: one row per image, its top characters with their probabilities or why it
    could not be read (files in one folder are named in the title and shown by name). Names are
    shown as text, never read as markup."""
    from rich.table import Table
    from rich.text import Text

    paths = [Path(result["file"]) for result in results]
    folders = {path.parent for path in paths}
    one_folder = len(folders) == 1
    title = "top characters" + (f" in {next(iter(folders))}" if one_folder else "")
    table = Table(title=Text(printable(title)))
    table.add_column("file", overflow="fold")
    ranks = max((len(result.get("top", ())) for result in results), default=0)
    for rank in range(ranks):
        table.add_column(f"#{rank + 1}", justify="right")
    for path, result in zip(paths, results, strict=True):
        # The name as given: Path would turn "/pages/." into "/pages".
        name = Text(printable(path.name if one_folder else str(result["file"])))
        if "error" in result:
            table.add_row(name, Text(printable(result["error"]), style="red"))
            continue
        cells = [
            Text.assemble((item["label"], "bold"), f" {item['probability']:6.1%}")
            for item in result["top"]
        ]
        table.add_row(name, *cells)
    return table


def main(arguments: list[str] | None = None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    options = parser().parse_intermixed_args(sys.argv[1:] if arguments is None else arguments)
    sheet = None if options.no_sheet else (options.sheet or options.run_dir / SHEET)
    with exit_on_user_error():
        results, seen = predict_files(
            options.run_dir, options.inputs, top=options.top, sheet=sheet,
            max_pixels=options.max_pixels,
        )  # fmt: skip
    if options.json:
        for result in results:
            print(json.dumps(result, ensure_ascii=False))
    else:
        from rich.console import Console

        Console().print(results_table(results))
    if sheet and len(seen):
        print(
            f"contact sheet: {printable(text_name(sheet))}",
            file=sys.stderr if options.json else sys.stdout,
        )
    failed = [result for result in results if "error" in result]
    for result in failed:
        print(printable(f"error: {result['file']}: {result['error']}"), file=sys.stderr)
    if failed:
        print(f"{len(failed)} of {len(results)} images could not be read", file=sys.stderr)
        raise SystemExit(2)
