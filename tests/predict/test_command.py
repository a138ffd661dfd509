"""``python -m emnist_bench.predict`` on a trained run: tables, JSON lines, the contact sheet,
and labels that come from the run folder, never guessed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from emnist_bench.data import load_test
from emnist_bench.errors import UserError
from emnist_bench.predict import command
from emnist_bench.predict.saved import classify, open_run
from tests.predict.scans import write_scans


@pytest.fixture(scope="module")
def scans(cnn_run, tmp_path_factory):
    """Six test images of the run's split written as scans, with their upright originals."""
    from omegaconf import OmegaConf

    folder, _ = cnn_run
    cfg = OmegaConf.load(folder / "config.yaml")
    test, _ = load_test(cfg.data)
    images = test.images[:6]
    return write_scans(images, tmp_path_factory.mktemp("scans")), images


def test_the_run_folder_keeps_its_classes_before_metrics(cnn_run):
    folder, _ = cnn_run
    saved = json.loads((folder / "classes.json").read_text())
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(folder / "config.yaml")
    _, mapping = load_test(cfg.data)
    assert saved["characters"] == list(mapping.characters) and saved["split"] == "balanced"
    assert saved["labels"] == list(mapping.labels)
    assert (folder / "classes.json").stat().st_mtime_ns <= (
        folder / "metrics.json"
    ).stat().st_mtime_ns


def test_predict_prints_top3_and_writes_the_contact_sheet(cnn_run, scans, tmp_path, capsys):
    folder, _ = cnn_run
    paths, _ = scans
    sheet = tmp_path / "sheet.png"
    command.main([str(folder), str(paths[0].parent), "--sheet", str(sheet)])
    out = capsys.readouterr().out
    assert "top characters" in out and "#3" in out and paths[0].name in out
    assert f"contact sheet: {sheet}" in out
    from matplotlib.image import imread

    pixels = imread(sheet)
    assert pixels.shape[0] > 200 and pixels.std() > 0.05


def test_json_lines_give_the_models_top3_on_the_converted_images(cnn_run, scans, capsys):
    folder, _ = cnn_run
    paths, originals = scans
    command.main([str(folder), *map(str, paths), "--json", "--no-sheet"])
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [line["file"] for line in lines] == [str(path) for path in paths]
    run = open_run(folder)
    results, seen = command.predict_files(folder, paths)
    expected = classify(run, seen)
    for line, row in zip(lines, expected, strict=True):
        assert [item["label"] for item in line["top"]] == [
            run.classes[i] for i in np.argsort(-row)[:3]
        ]
        probabilities = [item["probability"] for item in line["top"]]
        assert probabilities == sorted(probabilities, reverse=True)
        assert probabilities[0] == pytest.approx(row.max(), abs=1e-5)
    assert seen.shape == (len(paths), 28, 28) and not (folder / command.SHEET).exists()
    assert "contact sheet" not in captured.err


def test_an_older_run_falls_back_to_the_mapping_and_never_guesses(cnn_run, scans, tmp_path):
    folder, _ = cnn_run
    paths, _ = scans
    old = tmp_path / "old_run"
    old.mkdir()
    for name in ("config.yaml", "model.keras"):
        shutil.copy(folder / name, old / name)
    results, _ = command.predict_files(old, paths[:1])  # the mapping in the run's data.root
    direct, _ = command.predict_files(folder, paths[:1])
    assert results == direct
    (old / "config.yaml").write_text(
        (old / "config.yaml").read_text().replace("root: ", f"root: {tmp_path / 'gone'}  # ", 1)
    )
    with pytest.raises(UserError, match="copy emnist-balanced-mapping.txt .* into"):
        command.predict_files(old, paths[:1])


def test_errors_are_one_line_and_exit_2(cnn_run, tmp_path):
    folder, _ = cnn_run
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.new("L", (64, 64), 255).save(blank)
    for arguments in ([str(tmp_path), str(blank)], [str(folder), str(blank)],
                      [str(folder), str(tmp_path / "missing.png")]):  # fmt: skip
        with pytest.raises(SystemExit) as stopped:
            command.main(arguments)
        assert stopped.value.code == 2


def test_help_is_fast_and_loads_no_tensorflow():
    code = (
        "import sys; from emnist_bench.predict import command; command.parser().format_help(); "
        "from emnist_bench.export import command; command.parser().format_help(); "
        "from emnist_bench.serve import command; command.parser().format_help(); "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert shown.stdout.split() == ["False", "False"], shown.stderr
    helped = subprocess.run([sys.executable, "-m", "emnist_bench.predict", "--help"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert helped.returncode == 0 and "IMAGE_OR_FOLDER" in helped.stdout
