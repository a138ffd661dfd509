"""``serve`` meets requests it did not expect: other sites' pages, foreign ``Host`` names,
bombs, bad ``Content-Length``, bursts and idle sockets. Each gets its answer, fast."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emnist_bench.errors import UserError
from emnist_bench.serve import command
from tests.predict.hostile import header_only_png, png_bomb
from tests.serve.test_serve import scan_png, serve_process

ALLOWED = "http://localhost:3000"


@pytest.fixture(scope="module")
def server(cnn_run):
    """The run's page on 127.0.0.1, with a short socket timeout and few connections."""
    folder, _ = cnn_run
    running = command.start(folder, port=0, allow_origins=[ALLOWED], socket_timeout=0.5,
                            max_connections=8)  # fmt: skip
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()


@pytest.fixture(scope="module")
def png(tmp_path_factory) -> bytes:
    return scan_png(tmp_path_factory.mktemp("serve") / "one.png").read_bytes()


def request(server, method: str, path: str, body: bytes | None = None, **headers):
    """(status, headers, JSON or bytes) of one request; ``Host`` is the server's own unless
    given (``host=None`` sends none)."""
    port = server.server_address[1]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    host = headers.pop("host", f"127.0.0.1:{port}")
    connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    if host is not None:
        connection.putheader("Host", host)
    named = {key.replace("_", "-"): value for key, value in headers.items()}
    if body is not None and "Content-Length" not in named:
        named["Content-Length"] = str(len(body))
    for key, value in named.items():
        connection.putheader(key, value)
    connection.endheaders(body)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    kind = response.getheader("Content-Type") or ""
    return response.status, response, json.loads(data) if kind == "application/json" else data


def test_answers_carry_the_security_headers(server):
    for method, path in (("GET", "/"), ("GET", "/info"), ("GET", "/static/nothing")):
        _, response, _ = request(server, method, path)
        assert response.getheader("X-Content-Type-Options") == "nosniff"
        assert response.getheader("Referrer-Policy") == "no-referrer"
        assert response.getheader("Cache-Control") == "no-store"
        policy = response.getheader("Content-Security-Policy")
        assert "default-src 'self'" in policy and "frame-ancestors http://localhost:3000" in policy


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1:1", None])
def test_a_foreign_host_is_refused(server, png, host):
    assert request(server, "GET", "/info", host=host)[0] == 421
    assert request(server, "POST", "/predict", png, host=host, Content_Type="image/png")[0] == 421


def test_localhost_is_its_own_name(server, png):
    port = server.server_address[1]
    assert request(server, "GET", "/info", host=f"localhost:{port}")[0] == 200


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://127.0.0.1:1"])
def test_posts_from_other_origins_are_refused(server, png, origin):
    status, response, answer = request(server, "POST", "/predict", png, Origin=origin,
                                       Content_Type="image/png")  # fmt: skip
    assert status == 403 and "--allow-origin" in answer["error"]
    assert response.getheader("Access-Control-Allow-Origin") is None
    assert request(server, "OPTIONS", "/predict", Origin=origin)[0] == 403


def test_own_and_allowed_origins_are_answered(server, png):
    port = server.server_address[1]
    for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}", ALLOWED):
        status, response, answer = request(server, "POST", "/predict", png, Origin=origin,
                                           Content_Type="image/png")  # fmt: skip
        assert status == 200 and len(answer["top"]) == 3
    assert response.getheader("Access-Control-Allow-Origin") == ALLOWED
    status, response, _ = request(server, "OPTIONS", "/predict", Origin=ALLOWED)
    assert status == 204 and "POST" in response.getheader("Access-Control-Allow-Methods")


@pytest.mark.parametrize("kind", [None, "text/plain", "application/x-www-form-urlencoded",
                                  "multipart/form-data; boundary=x", "image/gif"])  # fmt: skip
def test_only_png_and_jpeg_content_types_are_taken(server, png, kind):
    headers = {} if kind is None else {"Content_Type": kind}
    status, _, answer = request(server, "POST", "/predict", png, **headers)
    assert status == 415 and "image/png" in answer["error"]


@pytest.mark.parametrize(("length", "status"), [(None, 411), ("-5", 400), ("abc", 400),
                                                ("1e3", 400), ("0", 400), ("", 400),
                                                (str(300 * 2**20), 413)])  # fmt: skip
def test_a_bad_content_length_is_answered_in_json(server, length, status):
    headers = {"Content_Type": "image/png"}
    if length is not None:
        headers["Content-Length"] = length
    got, _, answer = request(server, "POST", "/predict", b"" if length else None, **headers)
    assert got == status and "PNG or JPEG" in answer["error"]


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet=st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=12))
def test_any_content_length_is_answered_never_a_traceback(server, length):
    status, _, answer = request(server, "POST", "/predict", b"", Content_Type="image/png",
                                **{"Content-Length": length})  # fmt: skip
    # A length the empty body never reaches is an upload that stopped short (408).
    assert status in (400, 408, 411, 413) and "error" in answer


def test_a_body_shorter_than_its_content_length_is_answered_408(server):
    # The client sends the headers and goes quiet: the server answers once its socket times
    # out, rather than dropping the connection without a word.
    status, _, answer = request(server, "POST", "/predict", b"", Content_Type="image/png",
                                **{"Content-Length": "1"})  # fmt: skip
    assert status == 408 and answer["error"] == "the upload stopped short"


@pytest.mark.parametrize(("width", "height", "status"), [(6000, 6000, 200), (9000, 9000, 413),
                                                         (65000, 65000, 413)])  # fmt: skip
def test_bombs_are_answered_fast(server, width, height, status):
    body = png_bomb(width, height) if width < 10_000 else header_only_png(width, height)
    started = time.perf_counter()
    got, _, answer = request(server, "POST", "/predict", body, Content_Type="image/png")
    assert got == status and time.perf_counter() - started < 10
    if status == 413:
        assert "above the limit of 40 megapixels; pass --max-pixels N" in answer["error"]


def test_fifty_concurrent_posts_are_all_answered(server, png):
    def one(_):
        return request(server, "POST", "/predict", png, Content_Type="image/png")[0]

    with ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(one, range(50)))
    assert statuses == [200] * 50


def test_idle_sockets_time_out_and_do_not_pile_up_threads(server, png):
    before = threading.active_count()
    idle = [socket.create_connection(server.server_address, timeout=5) for _ in range(20)]
    try:
        time.sleep(0.3)
        assert threading.active_count() - before <= 8  # max_connections
        started = time.monotonic()
        for sock in idle:  # the server closes each after its silence: recv gives b""
            sock.settimeout(10)
            assert sock.recv(1024) == b""
        assert time.monotonic() - started < 8
    finally:
        for sock in idle:
            sock.close()
    assert request(server, "POST", "/predict", png, Content_Type="image/png")[0] == 200
    time.sleep(1)
    assert threading.active_count() <= before + 1


def test_two_thousand_idle_sockets_make_no_more_threads_than_the_cap(server, png):
    before = threading.active_count()
    idle = []
    try:
        for _ in range(2000):  # connect without waiting: most wait in the backlog or for SYN
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.connect_ex(server.server_address)
            idle.append(sock)
        time.sleep(1.0)
        assert threading.active_count() - before <= 8  # max_connections
    finally:
        for sock in idle:
            sock.close()
    started = time.monotonic()
    assert request(server, "POST", "/predict", png, Content_Type="image/png")[0] == 200
    assert time.monotonic() - started < 30


def test_options_are_checked_before_the_model_loads(tmp_path):
    with pytest.raises(UserError, match="--port must be 0-65535"):
        command.start(tmp_path, port=99999)
    with pytest.raises(UserError, match="--allow-origin"):
        command.start(tmp_path, port=0, allow_origins=["http://a.example/path"])
    with pytest.raises(UserError, match="--max-pixels must be at least 1"):
        command.start(tmp_path, port=0, max_pixels=0)


def test_a_port_in_use_and_out_of_range_are_one_line(cnn_run, server, capsys):
    folder, _ = cnn_run
    for port in (str(server.server_address[1]), "99999", "-1"):
        with pytest.raises(SystemExit) as stopped:
            command.main([str(folder), "--port", port])
        err = capsys.readouterr().err.strip()
        assert stopped.value.code == 2 and len(err.splitlines()) == 1 and "--port" in err


def _peak_rss(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM), in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    (line,) = [line for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(line.split()[1]) * 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_bombs_cost_a_running_server_under_1_gb_and_10_s_each(cnn_run, png):
    folder, _ = cnn_run
    with serve_process(folder) as (process, url):
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        server = SimpleNamespace(server_address=("127.0.0.1", port))
        assert request(server, "POST", "/predict", png, Content_Type="image/png")[0] == 200
        baseline = _peak_rss(process.pid)  # the model loaded and one image answered
        for width, status in ((6000, 200), (9000, 413), (65_000, 413)):
            body = png_bomb(width, width) if width < 10_000 else header_only_png(width, width)
            started = time.perf_counter()
            got = request(server, "POST", "/predict", body, Content_Type="image/png")[0]
            seconds = time.perf_counter() - started
            grown = _peak_rss(process.pid) - baseline
            print(f"{width} x {width}: {got} in {seconds:.2f} s, peak +{grown / 2**20:.0f} MB")
            assert got == status and seconds < 10 and grown < 2**30
