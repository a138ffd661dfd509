"""A page on 127.0.0.1 to draw a character (mouse, pen or finger) or drop an image file, and
the run's top 3 characters for it, live; the standard library's HTTP server, no framework.

``GET /`` is the page (``static/``), ``GET /info`` the run's name and characters, and
``POST /predict`` takes the bytes of a PNG or JPEG and answers ``{"top": [{"label",
"probability"}, ...], "seen": 28 rows of 28 pixels}``: the image goes through the same
reading and conversion as ``python -m emnist_bench.predict``, so a drawing saved as a file gets
the same answer there.

Only its own page talks to it (``SECURITY.md``): a ``Host`` other than the bound address or
``localhost`` is refused (421), a ``POST`` from another origin is refused (403) unless
``--allow-origin`` names it, and it must say ``Content-Type: image/png`` or ``image/jpeg``
(415), which a cross-site form cannot. Under load the work is bounded: at most
:data:`MAX_CONNECTIONS` connections are served at once, each socket times out after
:data:`SOCKET_TIMEOUT` seconds of silence, and :data:`CONVERSIONS` images are converted at once.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from emnist_bench.errors import UserError
from emnist_bench.predict.images import MAX_PIXELS, ImageTooLarge, read_image
from emnist_bench.predict.preprocess import to_emnist
from emnist_bench.predict.saved import SavedRun, classify, top_k

STATIC = Path(__file__).resolve().parent / "static"
HOST = "127.0.0.1"
MAX_UPLOAD = 20 * 1024 * 1024
"""The largest image accepted, in bytes."""
TOP = 3
SOCKET_TIMEOUT = 10.0
"""Seconds a connection may stay silent before it is closed."""
UPLOAD_SECONDS = 60.0
"""The longest an upload may take, however it trickles in."""
MAX_CONNECTIONS = 64
"""Connections served at once; more wait in the listen queue."""
CONVERSIONS = 2
"""Images converted at once (each takes up to a few hundred MB at the pixel limit)."""
IMAGE_TYPES = ("image/png", "image/jpeg")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Resource-Policy": "same-origin",
}
CSP = "default-src 'self'; img-src 'self' blob:; base-uri 'none'; form-action 'none'; "

log = logging.getLogger(__name__)


class PredictionServer(ThreadingHTTPServer):
    """An HTTP server holding one run; predictions are made one at a time, conversions
    :data:`CONVERSIONS` at a time."""

    daemon_threads = True
    request_queue_size = 128  # the listen backlog: bursts wait instead of being reset

    def __init__(
        self,
        run: SavedRun,
        port: int = 0,
        *,
        max_pixels: int = MAX_PIXELS,
        allow_origins: tuple[str, ...] = (),
        socket_timeout: float = SOCKET_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ):
        super().__init__((HOST, port), Handler)
        self.run = run
        self.max_pixels = max_pixels
        self.socket_timeout = socket_timeout
        self.lock = threading.Lock()
        self.conversions = threading.BoundedSemaphore(CONVERSIONS)
        self.connections = threading.BoundedSemaphore(max_connections)
        port = self.server_address[1]
        self.hosts = {f"{HOST}:{port}", f"localhost:{port}"}
        if port == 80:
            self.hosts |= {HOST, "localhost"}
        own = {f"http://{host}" for host in self.hosts}
        self.allow_origins = frozenset(allow_origins)
        self.origins = own | self.allow_origins
        ancestors = " ".join(sorted(self.allow_origins)) or "'none'"
        self.csp = CSP + f"frame-ancestors {ancestors}"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"

    def process_request(self, request, client_address) -> None:
        # At most max_connections threads: the rest wait in the backlog (or are dropped after
        # a socket timeout), so idle connections cannot pile up threads.
        if not self.connections.acquire(timeout=self.socket_timeout):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.connections.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connections.release()

    def answer(self, image_bytes: bytes) -> dict[str, Any]:
        """The top characters for an image file's bytes, and the 28x28 image the model saw.

        Raises:
            ImageTooLarge: when the image has more pixels than the limit.
            UserError: when the bytes are not a PNG or JPEG, or it holds no ink.
        """
        with self.conversions:
            seen = to_emnist(read_image(image_bytes, self.max_pixels))
        with self.lock:
            probabilities = classify(self.run, seen[None])
        best = top_k(probabilities, self.run.classes, min(TOP, len(self.run.classes)))[0]
        return {"top": best, "seen": seen.tolist()}


class Handler(BaseHTTPRequestHandler):
    server: PredictionServer

    def setup(self) -> None:
        self.timeout = self.server.socket_timeout  # applied to the socket by setup()
        super().setup()

    def do_GET(self) -> None:
        if not self._host_allowed():
            return
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

    def do_OPTIONS(self) -> None:
        """A preflight: answered for the origins ``--allow-origin`` names, refused otherwise."""
        if not self._host_allowed():
            return
        if self.headers.get("Origin") not in self.server.allow_origins:
            self._send_json({"error": "cross-origin requests are refused"}, HTTPStatus.FORBIDDEN)
            return
        self.send_response(HTTPStatus.NO_CONTENT)
        self.send_header("Access-Control-Allow-Methods", "GET, POST")
        self.send_header("Access-Control-Allow-Headers", "Content-Type")
        self.send_header("Access-Control-Max-Age", "600")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        if not self._host_allowed():
            return
        if self.path.split("?", 1)[0] != "/predict":
            self._send_json({"error": f"{self.path}: not found"}, HTTPStatus.NOT_FOUND)
            return
        origin = self.headers.get("Origin")
        if origin is not None and origin not in self.server.origins:
            message = f"requests from {origin} are refused; serve --allow-origin admits one"
            self._send_json({"error": message}, HTTPStatus.FORBIDDEN)
            return
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind not in IMAGE_TYPES:
            message = "send a PNG or JPEG with Content-Type: image/png or image/jpeg"
            self._send_json({"error": message}, HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
            return
        body = self._read_body()
        if body is None:
            return
        try:
            self._send_json(self.server.answer(body))
        except ImageTooLarge as error:
            self._send_json({"error": str(error)}, HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        except UserError as error:
            self._send_json({"error": str(error)}, HTTPStatus.UNPROCESSABLE_ENTITY)

    def _read_body(self) -> bytes | None:
        """The request's body, or None after answering why it is refused."""
        limit = f"send one PNG or JPEG of at most {MAX_UPLOAD // 2**20} MB"
        lengths = self.headers.get_all("Content-Length") or []
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower() or not lengths:
            self._send_json({"error": f"{limit}, with Content-Length"}, HTTPStatus.LENGTH_REQUIRED)
            return None
        text = lengths[0].strip()
        if len(set(lengths)) > 1 or not text.isdigit() or not text.isascii():
            self._send_json({"error": f"{limit}; bad Content-Length"}, HTTPStatus.BAD_REQUEST)
            return None
        length = int(text)
        if length > MAX_UPLOAD:
            self._send_json({"error": limit}, HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            return None
        if length == 0:
            self._send_json({"error": limit}, HTTPStatus.BAD_REQUEST)
            return None
        deadline, parts, left = time.monotonic() + UPLOAD_SECONDS, [], length
        while left and time.monotonic() < deadline:
            try:
                part = self.rfile.read1(min(left, 1 << 16))
            except TimeoutError:  # the client went quiet for a socket timeout: answer, not drop
                break
            if not part:
                break
            parts.append(part)
            left -= len(part)
        if left:
            self.close_connection = True
            self._send_json({"error": "the upload stopped short"}, HTTPStatus.REQUEST_TIMEOUT)
            return None
        return b"".join(parts)

    def _host_allowed(self) -> bool:
        """Whether ``Host`` is this server's (a DNS-rebinding page sends its own); answers 421
        otherwise."""
        if (self.headers.get("Host") or "").lower() in self.server.hosts:
            return True
        message = f"this server answers only to {self.server.url}"
        self._send_json({"error": message}, HTTPStatus.MISDIRECTED_REQUEST)
        return False

    def end_headers(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.send_header("Content-Security-Policy", self.server.csp)
        origin = self.headers.get("Origin") if hasattr(self, "headers") else None
        if origin in self.server.allow_origins:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Vary", "Origin")
        super().end_headers()

    def _send_json(self, payload: dict[str, Any], status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(json.dumps(payload).encode(), "application/json", status)

    def _send(self, body: bytes, kind: str, status: HTTPStatus = HTTPStatus.OK) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        log.debug("%s " + format, self.address_string(), *args)
