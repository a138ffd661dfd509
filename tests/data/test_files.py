"""Reading the official layouts (emnist_bench.data.files): orientation, and one clear line for
every kind of broken file, also from the command line."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emnist_bench.data.load import load_part
from emnist_bench.errors import DataError, UserError
from tests.emnist_files import (
    IDX_IMAGES_MAGIC,
    IDX_LABELS_MAGIC,
    csv_rows,
    idx_bytes,
    idx_paths,
    letter_l,
    random_images,
    write_bytes,
    write_csv_rows,
    write_csv_split,
    write_idx_split,
    write_mapping,
)

SPLIT = "balanced"
REPO_ROOT = Path(__file__).resolve().parents[2]


# --- orientation -------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["idx-gz", "idx-raw", "csv"])
def test_asymmetric_image_reads_back_upright(tmp_path, layout):
    image = letter_l()
    assert not np.array_equal(image, image.T)
    images = np.stack([image, 255 - image])
    labels = np.array([21, 10], dtype=np.uint8)  # 'L', 'A'
    if layout == "csv":
        write_csv_split(tmp_path, SPLIT, "train", images, labels)
    else:
        write_idx_split(tmp_path, SPLIT, "train", images, labels, gz=layout == "idx-gz")
    write_mapping(tmp_path, SPLIT)

    part = load_part(tmp_path, SPLIT, "train")

    assert part.layout == layout[:3]
    np.testing.assert_array_equal(part.images, images)
    np.testing.assert_array_equal(part.labels, [21, 10])


def test_idx_and_csv_of_the_same_image_agree(tmp_path):
    images, labels = np.stack([letter_l()]), np.array([21], dtype=np.uint8)
    write_idx_split(tmp_path / "idx", SPLIT, "train", images, labels)
    write_csv_split(tmp_path / "csv", SPLIT, "train", images, labels)
    for folder in ("idx", "csv"):
        write_mapping(tmp_path / folder, SPLIT)

    from_idx = load_part(tmp_path / "idx", SPLIT, "train").images
    from_csv = load_part(tmp_path / "csv", SPLIT, "train").images

    np.testing.assert_array_equal(from_idx, from_csv)
    np.testing.assert_array_equal(from_idx[0], letter_l())


# --- broken files: one DataError naming the file and the problem -------------------------------


def _idx_part(root: Path, count: int = 3, labels=(0, 1, 2), gz: bool = True) -> tuple[Path, Path]:
    write_mapping(root, SPLIT)
    return write_idx_split(root, SPLIT, "train", random_images(count), list(labels), gz=gz)


def _csv_file(root: Path, edit=None) -> Path:
    """A 3-row CSV part; ``edit(rows)`` changes the rows in place before writing."""
    write_mapping(root, SPLIT)
    rows = csv_rows(random_images(3), [0, 1, 2])
    if edit:
        edit(rows)
    return write_csv_rows(root / f"emnist-{SPLIT}-train.csv", rows)


def _missing_folder(root):
    root.rmdir()
    return root, ["no balanced train files found"]


def _labels_missing(root):
    _, labels = _idx_part(root)
    labels.unlink()
    return root, ["no balanced train files found", "labels-idx1-ubyte"]


def _empty_gz(root):
    images, _ = _idx_part(root)
    write_bytes(images, b"", gz=True)
    return images, ["file is empty"]


def _empty_raw(root):
    images, _ = _idx_part(root, gz=False)
    images.write_bytes(b"")
    return images, ["file is empty"]


def _empty_csv(root):
    path = _csv_file(root)
    path.write_text("")
    return path, ["file is empty"]


def _truncated_gzip(root):
    images, _ = _idx_part(root)
    data = images.read_bytes()
    images.write_bytes(data[: len(data) // 2])
    return images, ["cannot be decompressed", "fetch it again"]


def _wrong_magic(root):
    images, _ = _idx_part(root)
    write_bytes(images, idx_bytes(random_images(3), IDX_LABELS_MAGIC), gz=True)
    return images, ["IDX magic is 0x00000801, expected 0x00000803"]


def _labels_with_images_magic(root):
    _, labels = _idx_part(root)
    write_bytes(labels, idx_bytes(np.zeros((3, 1, 1)), IDX_IMAGES_MAGIC), gz=True)
    return labels, ["IDX magic is 0x00000803, expected 0x00000801"]


def _header_only(root):
    images, _ = _idx_part(root)
    write_bytes(images, b"\x00\x00\x08\x03\x00\x00", gz=True)
    return images, ["too short for an IDX images header"]


def _wrong_dimensions(root):
    images, _ = _idx_part(root)
    big = np.zeros((3, 32, 32), dtype=np.uint8)
    write_bytes(images, idx_bytes(big, IDX_IMAGES_MAGIC), gz=True)
    return images, ["images are 32x32, expected 28x28"]


def _truncated_body(root):
    images, _ = _idx_part(root, gz=False)
    images.write_bytes(images.read_bytes()[:-784])
    return images, ["announces 3 images", "holds 1568", "truncated"]


def _count_mismatch(root):
    images, _ = _idx_part(root, labels=(0, 1))
    return images, ["holds 3 images", "emnist-balanced-train-labels-idx1-ubyte.gz holds 2 labels"]


def _idx_label_outside_mapping(root):
    _, labels = _idx_part(root, labels=(0, 99, 2))
    return labels, ["label 99 (item 1) is not in the mapping", "0..46"]


def _csv_extra_column_later(root):
    return _csv_file(root, lambda rows: rows[1].append(0)), ["different numbers of columns"]


def _csv_extra_column_everywhere(root):
    def edit(rows):
        for row in rows:
            row.append(0)

    return _csv_file(root, edit), ["rows have 786 columns, expected 785"]


def _csv_missing_column_later(root):
    return _csv_file(root, lambda rows: rows[1].pop()), ["row 2 has 784 columns, expected 785"]


def _csv_missing_column_everywhere(root):
    def edit(rows):
        for row in rows:
            row.pop()

    return _csv_file(root, edit), ["rows have 784 columns, expected 785"]


def _csv_not_a_number(root):
    def edit(rows):
        rows[1][9] = "x"

    return _csv_file(root, edit), ["row 2, column 10 is 'x', not a number"]


def _csv_empty_cell(root):
    def edit(rows):
        rows[1][7] = ""

    return _csv_file(root, edit), ["row 2, column 8 is empty"]


def _csv_fraction(root):
    def edit(rows):
        rows[2][5] = 1.5

    return _csv_file(root, edit), ["row 3", "not a whole number"]


def _csv_label_outside_mapping(root):
    def edit(rows):
        rows[2][0] = 47

    return _csv_file(root, edit), ["label 47 (item 2) is not in the mapping"]


def _csv_negative_label(root):
    def edit(rows):
        rows[0][0] = -1

    return _csv_file(root, edit), ["row 1 has negative label -1"]


def _csv_pixel(value):
    def build(root):
        def edit(rows):
            rows[1][100] = value

        return _csv_file(root, edit), [f"row 2 has pixel value {value} outside 0..255"]

    return build


def _mapping_missing(root):
    _idx_part(root)
    path = root / f"emnist-{SPLIT}-mapping.txt"
    path.unlink()
    return path, ["mapping file not found"]


def _mapping_bad_line(root):
    _idx_part(root)
    path = root / f"emnist-{SPLIT}-mapping.txt"
    path.write_text("0 48\nzero 49\n")
    return path, ["line 2 is 'zero 49', expected 'label ascii_code'"]


def _mapping_empty(root):
    _idx_part(root)
    path = root / f"emnist-{SPLIT}-mapping.txt"
    path.write_text("\n")
    return path, ["mapping file is empty"]


BROKEN = {
    "missing folder": _missing_folder,
    "labels file missing": _labels_missing,
    "empty gz file": _empty_gz,
    "empty raw file": _empty_raw,
    "empty csv": _empty_csv,
    "truncated gzip": _truncated_gzip,
    "wrong magic": _wrong_magic,
    "labels with images magic": _labels_with_images_magic,
    "header cut short": _header_only,
    "32x32 images": _wrong_dimensions,
    "truncated body": _truncated_body,
    "image and label counts differ": _count_mismatch,
    "idx label outside mapping": _idx_label_outside_mapping,
    "csv extra column in a later row": _csv_extra_column_later,
    "csv extra column everywhere": _csv_extra_column_everywhere,
    "csv missing column in a later row": _csv_missing_column_later,
    "csv missing column everywhere": _csv_missing_column_everywhere,
    "csv non-numeric cell": _csv_not_a_number,
    "csv empty cell": _csv_empty_cell,
    "csv fractional pixel": _csv_fraction,
    "csv label outside mapping": _csv_label_outside_mapping,
    "csv negative label": _csv_negative_label,
    "csv pixel 300": _csv_pixel(300),
    "csv pixel -1": _csv_pixel(-1),
    "mapping missing": _mapping_missing,
    "mapping bad line": _mapping_bad_line,
    "mapping empty": _mapping_empty,
}


@pytest.mark.parametrize("build", BROKEN.values(), ids=BROKEN.keys())
def test_broken_files_raise_one_line_data_error(tmp_path, build):
    root = tmp_path / "emnist"
    root.mkdir()
    path, phrases = build(root)

    with pytest.raises(DataError) as caught:
        load_part(root, SPLIT, "train")

    error = caught.value
    message = str(error)
    assert isinstance(error, UserError)
    assert Path(error.path) == path
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    for phrase in phrases:
        assert phrase in message


def test_a_bad_cell_deep_in_a_large_csv_is_one_error_without_a_pandas_warning(tmp_path):
    """pandas parses a large file in chunks and warns when one column's chunks disagree in type;
    the user should see the bad cell, not that warning first."""
    import warnings

    root = tmp_path / "emnist"
    root.mkdir()
    write_mapping(root, SPLIT)
    rows = csv_rows(np.zeros((3000, 28, 28), dtype=np.uint8), [0] * 3000)
    rows[5][1] = "abc"
    write_csv_rows(root / f"emnist-{SPLIT}-train.csv", rows)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError, match="row 6, column 2 is 'abc', not a number"):
            load_part(root, SPLIT, "train")


# --- the command line ---------------------------------------------------------------------------


@pytest.mark.skipif(
    not (REPO_ROOT / "emnist_bench" / "__main__.py").is_file(),
    reason="emnist_bench/__main__.py (the command line) is not written yet",
)
def test_cli_reports_a_broken_file_in_one_line(tmp_path):
    root = tmp_path / "broken"
    images, _ = _idx_part(root)
    write_idx_split(root, SPLIT, "test", random_images(2), [0, 1])
    images.write_bytes(b"")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [
        sys.executable, "-m", "emnist_bench",
        f"data.root={root}", "data.download=false", f"data.cache_dir={tmp_path / 'cache'}",
        f"output_dir={tmp_path / 'out'}", f"hydra.run.dir={tmp_path / 'run'}",
    ]  # fmt: skip

    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )

    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert images.name in lines[0] and "file is empty" in lines[0]


def test_idx_writer_matches_the_official_layout(tmp_path):
    """The synthetic writer itself: big-endian header, transposed body."""
    images = np.stack([letter_l()])
    images_path, labels_path = write_idx_split(tmp_path, SPLIT, "train", images, [21])
    raw = gzip.decompress(images_path.read_bytes())
    assert raw[:16] == bytes.fromhex("00000803 00000001 0000001c 0000001c")
    assert np.array_equal(np.frombuffer(raw[16:], np.uint8).reshape(28, 28), letter_l().T)
    assert gzip.decompress(labels_path.read_bytes()) == bytes.fromhex("00000801 00000001 15")
    assert idx_paths(tmp_path, SPLIT, "train") == (images_path, labels_path)
