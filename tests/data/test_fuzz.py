"""Fuzzing the readers of the official layouts (Hypothesis): whatever bytes a user's file holds,
the IDX, CSV and mapping readers give arrays (or a mapping) or the one clean data error,
:class:`~emnist_bench.errors.DataError`, nothing else."""

from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from emnist_bench.data.files import (
    IDX_IMAGES_MAGIC,
    IDX_LABELS_MAGIC,
    read_csv,
    read_idx,
    read_mapping,
)
from emnist_bench.errors import DataError
from tests.emnist_files import idx_bytes, random_images

# A modest set of examples by default, the same on every run (tests/conftest.py); for a long
# random search: EMNIST_BENCH_HYPOTHESIS=explore EMNIST_BENCH_FUZZ_EXAMPLES=2000.
EXAMPLES = os.environ.get("EMNIST_BENCH_FUZZ_EXAMPLES")
FUZZ = settings(
    max_examples=int(EXAMPLES or 60),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
VALID_IMAGES = idx_bytes(random_images(2), IDX_IMAGES_MAGIC)
VALID_LABELS = idx_bytes(np.array([0, 46], dtype=np.uint8), IDX_LABELS_MAGIC)


def read_bytes_with(reader, data: bytes, name: str):
    """Writes ``data`` to a file called ``name`` and reads it back with ``reader``."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        try:
            return reader(path)
        except DataError as error:
            assert str(path) in str(error)  # the error names the file
            return error


def mutated(valid: bytes):
    """Bytes near a valid file: cut short, or with a few bytes overwritten."""
    cut = st.integers(0, len(valid)).map(lambda n: valid[:n])
    flips = st.lists(
        st.tuples(st.integers(0, len(valid) - 1), st.integers(0, 255)), min_size=1, max_size=4
    )

    def flip(changes):
        data = bytearray(valid)
        for position, value in changes:
            data[position] = value
        return bytes(data)

    return cut | flips.map(flip)


@pytest.mark.parametrize("magic", [IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC])
@FUZZ
@given(data=st.binary(max_size=2_000) | mutated(VALID_IMAGES) | mutated(VALID_LABELS))
@example(data=b"\x00\x00\x08\x03\xff\xff\xff\xff\x00\x00\x00\x1c\x00\x00\x00\x1c")
def test_idx_reader_gives_arrays_or_a_data_error(magic, data):
    result = read_bytes_with(lambda path: read_idx(path, magic), data, "emnist-idx-ubyte")
    if not isinstance(result, DataError):
        assert isinstance(result, np.ndarray) and result.dtype == np.uint8
        assert result.ndim == (3 if magic == IDX_IMAGES_MAGIC else 1)


@FUZZ
@given(data=st.binary(max_size=500) | mutated(gzip.compress(VALID_LABELS)))
def test_gzipped_idx_reader_gives_arrays_or_a_data_error(data):
    result = read_bytes_with(
        lambda path: read_idx(path, IDX_LABELS_MAGIC), data, "emnist-idx-ubyte.gz"
    )
    assert isinstance(result, DataError | np.ndarray)


def csv_text(rows: int = 2) -> bytes:
    """A valid Kaggle-layout CSV of ``rows`` rows."""
    pixels = ",".join(["0"] * 783 + ["255"])
    return "".join(f"{row % 47},{pixels}\n" for row in range(rows)).encode()


CSV_CELLS = st.sampled_from(["0", "255", "46", "-1", "256", "1.5", "x", "", "nan", "inf", "1e400"])


@settings(FUZZ, max_examples=int(EXAMPLES or 30))  # pandas is the slow reader
@given(
    data=st.binary(max_size=3_000)
    | mutated(csv_text())
    | st.lists(CSV_CELLS, min_size=785, max_size=785).map(lambda cells: ",".join(cells).encode())
)
@example(data=b"")
@example(data=b"\x00" * 10)
@example(data=csv_text().replace(b",255\n", b",255,\n", 1))
def test_csv_reader_gives_arrays_or_a_data_error(data):
    result = read_bytes_with(read_csv, data, "emnist-balanced-train.csv")
    if not isinstance(result, DataError):
        images, labels = result
        assert images.dtype == np.uint8 and images.shape[1:] == (28, 28)
        assert labels.shape == images.shape[:1] and (labels >= 0).all()


def mapping_text() -> bytes:
    return "".join(f"{label} {48 + label}\n" for label in range(47)).encode()


@FUZZ
@given(
    data=st.binary(max_size=1_000)
    | mutated(mapping_text())
    | st.text(alphabet="0123456789 -\n\t", max_size=200).map(str.encode)
)
@example(data=b"99999999999999999999 65\n")
def test_mapping_reader_gives_a_mapping_or_a_data_error(data):
    result = read_bytes_with(read_mapping, data, "emnist-balanced-mapping.txt")
    if not isinstance(result, DataError):
        assert 0 < result.num_classes == len(result.characters) <= 256
        assert all(0 <= label <= 255 for label in result.labels)
        # Labels map to class indices without surprises.
        indices = result.to_indices(np.array(result.labels), Path("labels"))
        assert indices.tolist() == list(range(result.num_classes))
