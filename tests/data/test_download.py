"""The download (emnist_bench.data.download), offline: HTTP only to a server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import numpy as np
import pytest

from emnist_bench.data.download import download_split
from emnist_bench.data.load import ensure_files, load_part
from emnist_bench.errors import DataError
from tests.emnist_files import write_mapping, write_tiny_split

SPLIT = "balanced"


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
    assert list(root.iterdir()) == []  # neither gzip.zip nor a temporary file


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
