"""benchmarks/frontier.py: the time-accuracy frontier drawn from time_to_accuracy's curves."""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "frontier.py"
spec = importlib.util.spec_from_file_location("frontier", SCRIPT)
frontier = importlib.util.module_from_spec(spec)
sys.modules["frontier"] = frontier  # dataclasses look their module up there
spec.loader.exec_module(frontier)


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
