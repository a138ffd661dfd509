"""The data layer: real files in both official layouts, orientation, splits, cache, errors,
the command-line edge and the download, all offline (HTTP only to 127.0.0.1)."""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import socket
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from emnist_bench.data import load as load_module
from emnist_bench.data import load_dataset, resolve_cache_dir
from emnist_bench.data.download import download_split
from emnist_bench.data.load import ensure_files, load_mapping, load_part
from emnist_bench.data.split import validation_split
from emnist_bench.errors import ConfigError, DataError, UserError
from tests.emnist_files import (
    BALANCED_CHARACTERS,
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
    write_tiny_split,
)

SPLIT = "balanced"
REPO_ROOT = Path(__file__).resolve().parents[1]


def data_cfg(root, cache_dir, **overrides) -> dict:
    """A ``data`` config as composed by Hydra, offline (no download)."""
    cfg = {
        "root": str(root),
        "split": SPLIT,
        "val_size": 0,
        "subset": None,
        "cache_dir": str(cache_dir),
        "download": False,
        "urls": [],
        "md5": None,
    }
    return {**cfg, **overrides}


def per_class(labels: np.ndarray) -> np.ndarray:
    return np.bincount(labels, minlength=47)


# --- the real files in both layouts -----------------------------------------------------------


@pytest.mark.parametrize(
    "folder, layout, n_train, n_test",
    [("emnist-proxy", "idx", 107_934, 7_050), ("emnist-proxy-csv", "csv", 2_350, 470)],
)
def test_real_layouts_load_with_documented_counts(
    shared_data, proxy_cache, folder, layout, n_train, n_test
):
    root = shared_data / folder
    mapping = load_mapping(root, SPLIT)
    assert mapping.num_classes == 47
    assert "".join(mapping.characters) == BALANCED_CHARACTERS

    train = load_part(root, SPLIT, "train", cache_dir=proxy_cache, mapping=mapping)
    test = load_part(root, SPLIT, "test", cache_dir=proxy_cache, mapping=mapping)

    assert (train.layout, test.layout) == (layout, layout)
    assert train.images.shape == (n_train, 28, 28) and train.images.dtype == np.uint8
    assert test.images.shape == (n_test, 28, 28)
    assert train.labels.shape == (n_train,) and test.labels.shape == (n_test,)
    for labels in (train.labels, test.labels):
        assert labels.min() == 0 and labels.max() == 46
        assert np.unique(labels).size == 47
    assert (per_class(test.labels) == n_test // 47).all()
    if layout == "csv":
        assert (per_class(train.labels) == 50).all()


@pytest.mark.parametrize("folder", ["emnist-proxy", "emnist-proxy-csv"])
def test_real_images_come_out_upright(shared_data, proxy_cache, folder):
    """A '1' is tall and narrow, a '7' is heavy at the top: true upright, not transposed."""
    part = load_part(shared_data / folder, SPLIT, "train", cache_dir=proxy_cache)

    def spread(profile: np.ndarray) -> float:
        weights = profile / profile.sum()
        positions = np.arange(profile.size)
        centre = (positions * weights).sum()
        return float(np.sqrt(((positions - centre) ** 2 * weights).sum()))

    one = part.images[part.labels == 1].astype(float).mean(axis=0)
    assert spread(one.sum(axis=1)) > 1.5 * spread(one.sum(axis=0))
    seven = part.images[part.labels == 7].astype(float).mean(axis=0)
    assert seven[:14].sum() > 1.3 * seven[14:].sum()


def test_load_dataset_on_real_idx_is_stratified(idx_proxy, proxy_cache):
    data = load_dataset(data_cfg(idx_proxy, proxy_cache, val_size=10_000), seed=0)

    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (97_934, 10_000, 7_050)
    assert data.num_classes == 47 and data.classes[10] == "A" and data.layout == "idx"
    train_counts, val_counts = per_class(data.y_train), per_class(data.y_val)
    expected = (train_counts + val_counts) * 10_000 / 107_934
    assert np.abs(val_counts - expected).max() <= 1


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


# --- validation split and subset ---------------------------------------------------------------


@pytest.mark.parametrize("val_size", [470, 0.2])
def test_val_split_sizes_and_stratification(csv_proxy, proxy_cache, val_size):
    data = load_dataset(data_cfg(csv_proxy, proxy_cache, val_size=val_size), seed=0)

    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (1_880, 470, 470)
    assert (per_class(data.y_val) == 10).all()
    assert (per_class(data.y_train) == 40).all()
    assert len(data.x_train) == len(data.y_train) and len(data.x_val) == len(data.y_val)


def test_val_size_zero_keeps_everything_for_training(csv_proxy, proxy_cache):
    data = load_dataset(data_cfg(csv_proxy, proxy_cache, val_size=0), seed=0)
    assert (len(data.x_train), len(data.x_val)) == (2_350, 0)


def test_val_split_is_a_seeded_partition():
    labels = np.repeat(np.arange(47), 50)
    train, val = validation_split(labels, 0.2, seed=3)
    again_train, again_val = validation_split(labels, 0.2, seed=3)
    _, other_val = validation_split(labels, 0.2, seed=4)

    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(labels.size))
    np.testing.assert_array_equal(val, again_val)
    np.testing.assert_array_equal(train, again_train)
    assert not np.array_equal(val, other_val)


def test_val_split_is_reproducible_per_seed(csv_proxy, proxy_cache):
    cfg = data_cfg(csv_proxy, proxy_cache, val_size=470)
    first, again, other = (load_dataset(cfg, seed) for seed in (0, 0, 1))

    np.testing.assert_array_equal(first.x_val, again.x_val)
    np.testing.assert_array_equal(first.y_val, again.y_val)
    assert not np.array_equal(first.x_val, other.x_val)
    np.testing.assert_array_equal(first.x_test, other.x_test)


def test_subset_keeps_at_most_n_per_class_reproducibly(csv_proxy, proxy_cache):
    cfg = data_cfg(csv_proxy, proxy_cache, subset=20, val_size=0.25)
    first, again, other = (load_dataset(cfg, seed) for seed in (0, 0, 1))

    assert (per_class(first.y_train) + per_class(first.y_val) == 20).all()
    assert (len(first.x_train), len(first.x_val)) == (705, 235)
    np.testing.assert_array_equal(first.x_train, again.x_train)
    assert not np.array_equal(first.x_train, other.x_train)
    assert len(first.x_test) == 470  # the subset never touches the test set

    larger = load_dataset(data_cfg(csv_proxy, proxy_cache, subset=80), seed=0)
    assert (per_class(larger.y_train) == 50).all()  # fewer than N in a class: all of them


@pytest.mark.parametrize("val_size", [1.5, 1.0, -0.1, 5_000, 2_350, 10, True, "0.1"])
def test_bad_val_size_is_a_config_error(csv_proxy, proxy_cache, val_size):
    with pytest.raises(ConfigError, match=r"data\.val_size="):
        load_dataset(data_cfg(csv_proxy, proxy_cache, val_size=val_size), seed=0)


@pytest.mark.parametrize("subset", [0, -1])
def test_bad_subset_is_a_config_error(csv_proxy, proxy_cache, subset):
    with pytest.raises(ConfigError, match=rf"data\.subset={subset} must be a positive count"):
        load_dataset(data_cfg(csv_proxy, proxy_cache, subset=subset), seed=0)


# --- cache ---------------------------------------------------------------------------------------


def test_second_load_is_served_from_cache(tiny_idx, tmp_path, monkeypatch, caplog):
    root, images, labels = tiny_idx
    cache = tmp_path / "cache"
    load_part(root, SPLIT, "train", cache_dir=cache)
    cached = list(cache.glob("*.npz"))
    assert [p.name.startswith(f"emnist-{SPLIT}-train-") for p in cached] == [True]

    def refuse(files):
        raise AssertionError(f"parsed {files} again instead of reading the cache")

    monkeypatch.setattr(load_module, "read_part", refuse)
    with caplog.at_level(logging.INFO, logger="emnist_bench.data.load"):
        again = load_part(root, SPLIT, "train", cache_dir=cache)

    assert "from cache" in caplog.text
    assert again.layout == "idx"
    np.testing.assert_array_equal(again.images, images)
    np.testing.assert_array_equal(again.labels, labels)


def test_changed_source_invalidates_cache(tmp_path):
    """Same size, new content and mtime: the old cache entry must not be used."""
    labels = np.arange(47, dtype=np.uint8)
    images = random_images(47)
    images_path, _ = write_idx_split(tmp_path, SPLIT, "train", images, labels, gz=False)
    write_mapping(tmp_path, SPLIT)
    cache = tmp_path / "cache"
    load_part(tmp_path, SPLIT, "train", cache_dir=cache)
    old_size, old_mtime = images_path.stat().st_size, images_path.stat().st_mtime_ns

    write_idx_split(tmp_path, SPLIT, "train", 255 - images, labels, gz=False)
    os.utime(images_path, ns=(old_mtime + 2 * 10**9, old_mtime + 2 * 10**9))
    assert images_path.stat().st_size == old_size
    again = load_part(tmp_path, SPLIT, "train", cache_dir=cache)

    np.testing.assert_array_equal(again.images, 255 - images)
    assert len(list(cache.glob("*.npz"))) == 2


def test_unreadable_cache_file_is_parsed_again(tiny_idx, tmp_path, caplog):
    root, images, _ = tiny_idx
    cache = tmp_path / "cache"
    load_part(root, SPLIT, "train", cache_dir=cache)
    [cached] = cache.glob("*.npz")
    cached.write_bytes(b"not an npz")

    with caplog.at_level(logging.WARNING, logger="emnist_bench.data.load"):
        again = load_part(root, SPLIT, "train", cache_dir=cache)

    np.testing.assert_array_equal(again.images, images)
    assert "unreadable" in caplog.text


def test_unusable_cache_folder_does_not_stop_loading(tiny_idx, tmp_path, caplog):
    root, images, _ = tiny_idx
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("a file where the cache folder should be")

    with caplog.at_level(logging.WARNING, logger="emnist_bench.data.load"):
        part = load_part(root, SPLIT, "train", cache_dir=not_a_folder)

    np.testing.assert_array_equal(part.images, images)
    assert "going on without it" in caplog.text


def test_resolve_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert resolve_cache_dir({"cache_dir": None}) == tmp_path / "emnist_bench"
    assert resolve_cache_dir({"cache_dir": False}) is None
    assert resolve_cache_dir({"cache_dir": str(tmp_path / "c")}) == tmp_path / "c"


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


# --- download (local HTTP server on 127.0.0.1 only) ---------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    """Serves ``routes``: path -> (body, cut); ``cut`` announces twice the bytes it sends."""

    routes: dict = {}

    def do_GET(self):  # noqa: N802 (the name http.server calls)
        if self.path not in self.routes:
            self.send_error(404)
            return
        body, cut = self.routes[self.path]
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(2 * len(body) if cut else len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    """A local HTTP server: ``server.routes`` to fill, ``server.url(path)`` to address."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    handler = type("Handler", (_Handler,), {"routes": {}})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield SimpleNamespace(
        routes=handler.routes, url=lambda path: f"http://127.0.0.1:{httpd.server_port}{path}"
    )
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def closed_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/gzip.zip"


BALANCED_FILES = {
    f"emnist-{SPLIT}-{part}-{kind}-ubyte.gz"
    for part in ("train", "test")
    for kind in ("images-idx3", "labels-idx1")
} | {f"emnist-{SPLIT}-mapping.txt"}


@pytest.fixture
def archive(tmp_path):
    """A small NIST-style ``gzip.zip``: the balanced split plus a digits mapping."""
    staging = tmp_path / "staging"
    images, labels = write_tiny_split(staging, per_class=1)
    write_mapping(staging, "digits", 10)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("gzip/", "")
        for path in sorted(staging.iterdir()):
            bundle.write(path, f"gzip/{path.name}")
    body = buffer.getvalue()
    return SimpleNamespace(
        body=body, md5=hashlib.md5(body).hexdigest(), images=images, labels=labels
    )


def test_download_extracts_only_the_split(server, archive, tmp_path):
    server.routes["/gzip.zip"] = (archive.body, False)
    root = tmp_path / "emnist"

    extracted = download_split(root, SPLIT, urls=[server.url("/gzip.zip")], md5=archive.md5)

    assert {p.name for p in extracted} == BALANCED_FILES
    assert {p.name for p in root.iterdir()} == BALANCED_FILES | {"gzip.zip"}
    part = load_part(root, SPLIT, "train")
    np.testing.assert_array_equal(part.images, archive.images)
    np.testing.assert_array_equal(part.labels, archive.labels)


def test_verified_archive_is_not_fetched_again(server, archive, tmp_path, closed_url):
    server.routes["/gzip.zip"] = (archive.body, False)
    root = tmp_path / "emnist"
    download_split(root, SPLIT, urls=[server.url("/gzip.zip")], md5=archive.md5)
    (root / f"emnist-{SPLIT}-test-labels-idx1-ubyte.gz").unlink()

    download_split(root, SPLIT, urls=[closed_url], md5=archive.md5)

    assert {p.name for p in root.iterdir()} == BALANCED_FILES | {"gzip.zip"}


def test_ensure_files_downloads_what_is_missing(server, archive, tmp_path):
    server.routes["/gzip.zip"] = (archive.body, False)
    root = tmp_path / "emnist"

    ensure_files(
        root, SPLIT, ("train", "test"), download=True, urls=[server.url("/gzip.zip")], md5=None
    )

    test = load_part(root, SPLIT, "test")
    np.testing.assert_array_equal(test.labels, np.arange(47))


@pytest.mark.parametrize("first", ["404", "refused"])
def test_download_falls_back_to_the_next_url(server, archive, tmp_path, closed_url, first):
    server.routes["/gzip.zip"] = (archive.body, False)
    root = tmp_path / "emnist"
    first_url = server.url("/missing/gzip.zip") if first == "404" else closed_url

    download_split(root, SPLIT, urls=[first_url, server.url("/gzip.zip")], md5=archive.md5)

    assert load_part(root, SPLIT, "train").images.shape == (47, 28, 28)


@pytest.mark.parametrize(
    "cut, md5, phrase",
    [
        (False, "0" * 32, "does not match expected 00000000"),
        (True, None, "connection closed after"),
    ],
    ids=["md5 mismatch", "cut off"],
)
def test_failed_download_leaves_nothing_behind(server, archive, tmp_path, cut, md5, phrase):
    server.routes["/gzip.zip"] = (archive.body, cut)
    root = tmp_path / "emnist"

    with pytest.raises(DataError) as caught:
        download_split(root, SPLIT, urls=[server.url("/gzip.zip")], md5=md5)

    assert phrase in str(caught.value)
    assert list(root.iterdir()) == []  # neither gzip.zip nor any *.part


@pytest.mark.parametrize(
    "body, phrase",
    [
        (b"<html>a login page</html>", "is not a valid zip archive"),
        (None, "the archive holds no emnist-balanced-* files"),
    ],
    ids=["not a zip", "no such split"],
)
def test_bad_archive_is_a_data_error(server, tmp_path, body, phrase):
    if body is None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as bundle:
            bundle.writestr("gzip/emnist-digits-mapping.txt", "0 48\n")
        body = buffer.getvalue()
    server.routes["/gzip.zip"] = (body, False)
    root = tmp_path / "emnist"

    with pytest.raises(DataError, match="gzip.zip: ") as caught:
        download_split(root, SPLIT, urls=[server.url("/gzip.zip")], md5=None)

    assert phrase in str(caught.value)
    assert not list(root.glob("emnist-*"))


def test_no_download_and_no_files_says_where_to_put_them(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()

    with pytest.raises(DataError) as caught:
        ensure_files(root, SPLIT, ("train", "test"), download=False, urls=[], md5=None)

    message = str(caught.value)
    assert message.startswith(f"{root}: ") and "\n" not in message
    for phrase in (
        "data.download=false",
        "Kaggle CSVs",
        "emnist-balanced-train.csv",
        "emnist-balanced-mapping.txt",
        "emnist-balanced-*-ubyte.gz",
    ):
        assert phrase in message


def test_unreachable_url_gives_one_offline_line(tmp_path, closed_url):
    root = tmp_path / "emnist"

    with pytest.raises(DataError) as caught:
        ensure_files(root, SPLIT, ("train",), download=True, urls=[closed_url], md5=None)

    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{root}: could not download EMNIST: {closed_url} (")
    assert "Offline? Put the Kaggle CSVs" in message
    assert [p.name for p in root.iterdir()] == []


@pytest.mark.parametrize("url", ["biometrics.nist.gov/gzip.zip", "ftp+x://127.0.0.1/gzip.zip"])
def test_malformed_url_is_a_data_error(tmp_path, url):
    with pytest.raises(DataError, match="could not download EMNIST"):
        download_split(tmp_path / "emnist", SPLIT, urls=[url], md5=None)


def test_server_that_does_not_speak_http_is_a_data_error(tmp_path):
    """A garbage reply (e.g. a captive portal or a wrong port) must not escape as a traceback."""
    listener = socket.create_server(("127.0.0.1", 0))

    def reply_garbage():
        connection, _ = listener.accept()
        with connection:
            connection.recv(4096)
            connection.sendall(b"\x00\x01 not http at all\r\n\r\n")

    thread = threading.Thread(target=reply_garbage, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/gzip.zip"
        with pytest.raises(DataError, match="could not download EMNIST") as caught:
            download_split(tmp_path / "emnist", SPLIT, urls=[url], md5=None, timeout=5)
        assert "\n" not in str(caught.value)
    finally:
        thread.join(timeout=5)
        listener.close()


def test_idx_writer_matches_the_official_layout(tmp_path):
    """The synthetic writer itself: big-endian header, transposed body."""
    images = np.stack([letter_l()])
    images_path, labels_path = write_idx_split(tmp_path, SPLIT, "train", images, [21])
    raw = gzip.decompress(images_path.read_bytes())
    assert raw[:16] == bytes.fromhex("00000803 00000001 0000001c 0000001c")
    assert np.array_equal(np.frombuffer(raw[16:], np.uint8).reshape(28, 28), letter_l().T)
    assert gzip.decompress(labels_path.read_bytes()) == bytes.fromhex("00000801 00000001 15")
    assert idx_paths(tmp_path, SPLIT, "train") == (images_path, labels_path)
