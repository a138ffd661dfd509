"""A page on 127.0.0.1 to draw a character (mouse, pen or finger) or drop an image file, and
the run's top 3 characters for it, live; the standard library's HTTP server, no framework.

``GET /`` is the page (``static/``), ``GET /info`` the run's name and characters, and
``POST /predict`` takes the bytes of a PNG or JPEG and answers ``{"top": [{"label",
"probability"}, ...], "seen": 28 rows of 28 pixels}``: the image goes through the same
conversion and model as ``python -m emnist_bench.predict``, so a drawing saved as a file gets
the same answer there.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from emnist_bench.errors import UserError
from emnist_bench.predict.images import read_image
from emnist_bench.predict.preprocess import to_emnist
from emnist_bench.predict.saved import SavedRun, classify, top_k

STATIC = Path(__file__).resolve().parent / "static"
HOST = "127.0.0.1"
MAX_UPLOAD = 20 * 1024 * 1024
"""The largest image accepted, in bytes."""
TOP = 3

log = logging.getLogger(__name__)


class PredictionServer(ThreadingHTTPServer):
    """An HTTP server holding one run; predictions are made one at a time."""

    daemon_threads = True

    def __init__(self, run: SavedRun, port: int = 0):
        super().__init__((HOST, port), Handler)
        self.run = run
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"

    def answer(self, image_bytes: bytes) -> dict[str, Any]:
        """The top characters for an image file's bytes, and the 28x28 image the model saw.

        Raises:
            UserError: when the bytes are not an image, or it holds no ink.
        """
        seen = to_emnist(read_image(image_bytes))
        with self.lock:
            probabilities = classify(self.run, seen[None])
        best = top_k(probabilities, self.run.classes, min(TOP, len(self.run.classes)))[0]
        return {"top": best, "seen": seen.tolist()}


class Handler(BaseHTTPRequestHandler):
    server: PredictionServer

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/info":
            run = self.server.run
            self._send_json({"run": run.folder.resolve().name, "classes": list(run.classes)})
            return
        name = "index.html" if path == "/" else path.removeprefix("/static/")
        files = {item.name: item for item in STATIC.iterdir() if item.is_file()}
        if path != "/" and not path.startswith("/static/") or name not in files:
            self._send_json({"error": f"{path}: not found"}, HTTPStatus.NOT_FOUND)
            return
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        self._send(files[name].read_bytes(), f"{kind}; charset=utf-8")

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != "/predict":
            self._send_json({"error": f"{self.path}: not found"}, HTTPStatus.NOT_FOUND)
            return
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_UPLOAD:
            message = f"send one PNG or JPEG of at most {MAX_UPLOAD // 2**20} MB"
            self._send_json({"error": message}, HTTPStatus.BAD_REQUEST)
            return
        try:
            self._send_json(self.server.answer(self.rfile.read(length)))
        except UserError as error:
            self._send_json({"error": str(error)}, HTTPStatus.UNPROCESSABLE_ENTITY)

    def _send_json(self, payload: dict[str, Any], status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(json.dumps(payload).encode(), "application/json", status)

    def _send(self, body: bytes, kind: str, status: HTTPStatus = HTTPStatus.OK) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        log.debug("%s " + format, self.address_string(), *args)
