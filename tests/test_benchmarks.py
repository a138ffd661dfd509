"""The benchmark scripts' own logic: the time-accuracy frontier drawn from time_to_accuracy's
curves (benchmarks/frontier.py) and the shifted test images (benchmarks/shift_ensemble.py)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def script(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


frontier = script("frontier")
shift_ensemble = script("shift_ensemble")


def write_curves(path: Path, rows: list[tuple]) -> Path:
    lines = ["recipe,seed,epoch,training_seconds,test_accuracy"]
    lines += [",".join(map(str, row)) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_points_average_the_seeds_of_each_epoch(tmp_path):
    curves = write_curves(
        tmp_path / "curves.csv",
        [("fast", 1, 1, 60, 0.80), ("fast", 2, 1, 120, 0.84), ("fast", 1, 2, 180, 0.86)],
    )
    first, second = frontier.read_points("EPYC", curves)
    assert (first.curve, first.epoch, first.seeds) == ("EPYC fast", 1, 2)
    assert first.minutes == pytest.approx(1.5) and first.accuracy == pytest.approx(0.82)
    assert (second.seeds, second.minutes) == (1, pytest.approx(3.0))


def test_files_under_one_label_pool_their_seeds_and_never_count_a_run_twice(tmp_path):
    first = write_curves(tmp_path / "a.csv", [("best", 1, 1, 60, 0.80)])
    second = write_curves(tmp_path / "b.csv", [("best", 2, 1, 180, 0.84)])
    [point] = frontier.read_points("Xeon", first, second)
    assert (point.seeds, point.minutes, point.accuracy) == (2, 2.0, pytest.approx(0.82))
    again = write_curves(tmp_path / "c.csv", [("best", 1, 1, 66, 0.81)])
    with pytest.raises(SystemExit, match=r"best seed 1 is in both .*a\.csv and .*c\.csv"):
        frontier.read_points("Xeon", first, again)
    with pytest.raises(SystemExit, match=r"best seed 1 is in .*a\.csv twice"):
        frontier.read_points("Xeon", first, first)  # one file given twice


def test_the_frontier_keeps_only_points_nothing_beats_on_time_and_accuracy():
    point = frontier.Point
    points = [
        point("a", 1, 1.0, 0.80, 1),
        point("b", 1, 2.0, 0.79, 1),  # slower and worse than a: dropped
        point("a", 2, 3.0, 0.85, 1),
        point("b", 2, 3.0, 0.83, 1),  # as slow as a's epoch 2 and worse: dropped
        point("c", 1, 5.0, 0.85, 1),  # a tie in accuracy, slower: dropped
        point("c", 2, 9.0, 0.90, 1),
    ]
    assert [(p.curve, p.epoch) for p in frontier.frontier(points)] == [
        ("a", 1),
        ("a", 2),
        ("c", 2),
    ]


def test_a_malformed_or_missing_curve_is_a_one_line_error(tmp_path):
    with pytest.raises(SystemExit, match="expected ISA:LABEL=PATH"):
        frontier.parse_curve("AVX2=curves.csv")
    with pytest.raises(SystemExit, match="run time_to_accuracy.py first"):
        frontier.parse_curve(f"AVX2:EPYC={tmp_path / 'none.csv'}")
    curves = write_curves(tmp_path / "curves.csv", [])
    assert frontier.parse_curve(f"AVX2:EPYC laptop={curves}") == ("AVX2", "EPYC laptop", curves)


def test_a_shift_moves_the_character_a_pixel_and_fills_the_edge_with_background():
    images = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 251 + 1
    down = shift_ensemble.shifted(images, 1, 0)
    assert down.shape == images.shape
    assert (down[:, 1:] == images[:, :-1]).all() and (down[:, 0] == 0).all()
    left = shift_ensemble.shifted(images, 0, -1)
    assert (left[:, :, :-1] == images[:, :, 1:]).all() and (left[:, :, -1] == 0).all()
    assert (shift_ensemble.shifted(images, 0, 0) == images).all()


def test_a_prior_strength_moves_a_close_call_toward_the_rarer_class_and_0_changes_nothing():
    probabilities = np.array([[0.55, 0.45], [0.9, 0.1]])
    prior = np.array([0.8, 0.2])  # class 0 four times as common in training
    assert shift_ensemble.prior_shifted(probabilities, prior, 0.0).tolist() == [0, 0]
    # 0.55 / 0.45 is a smaller ratio than the prior's 4: a strength of 0.5 (a factor of 2) flips
    # the close call to the rare class and leaves the sure one.
    assert shift_ensemble.prior_shifted(probabilities, prior, 0.5).tolist() == [1, 0]
    assert shift_ensemble.prior_shifted(probabilities, prior, -0.5).tolist() == [0, 0]
