"""``python -m emnist_bench.serve``: the page on 127.0.0.1, its prediction endpoint, and strokes
drawn in headless Chromium answered as ``predict`` answers the same strokes saved as a PNG."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from emnist_bench.predict.command import predict_files
from emnist_bench.serve import command
from emnist_bench.serve.web import STATIC
from tests.chromium import CHROMIUM, FLAGS
from tests.predict.scans import render_scan

# A "7" and a "T" as strokes on the 280-pixel pad: lists of (x, y) points, one list per stroke.
SEVEN = [[(60, 50), (220, 50), (120, 240)]]
TEE = [[(50, 50), (230, 50)], [(140, 50), (140, 240)]]


@pytest.fixture(scope="module")
def server(cnn_run):
    """The run's page served on 127.0.0.1 from a thread of this process."""
    folder, _ = cnn_run
    running = command.start(folder, port=0)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()


def post(url: str, body: bytes, kind: str = "image/png") -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": kind})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def scan_png(path: Path, seed: int = 0) -> Path:
    from PIL import Image

    image = np.zeros((28, 28), np.uint8)
    image[4:24, 12:16] = 255  # a "1"
    Image.fromarray(render_scan(image, np.random.default_rng(seed))).save(path)
    return path


@contextmanager
def serve_process(folder: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """``python -m emnist_bench.serve FOLDER --port 0`` as a process of its own: (it, its URL),
    read from the line it prints once it listens; terminated on leaving."""
    process = subprocess.Popen(
        [sys.executable, "-m", "emnist_bench.serve", str(folder), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        yield process, process.stdout.readline().split(" on ", 1)[1].split()[0]
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_command_answers_on_127_0_0_1(cnn_run, tmp_path):
    folder, _ = cnn_run
    with serve_process(folder) as (_, url):
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=30) as page:
            assert b'id="pad"' in page.read()
        image = scan_png(tmp_path / "one.png")
        status, answer = post(url + "predict", image.read_bytes())
        expected, _ = predict_files(folder, [image])
        assert status == 200 and answer["top"] == expected[0]["top"]


def test_page_files_info_and_errors(server, cnn_run):
    with urllib.request.urlopen(server.url + "info", timeout=30) as response:
        info = json.loads(response.read())
    assert info["run"] == cnn_run[0].name and len(info["classes"]) == 47
    for name in ("draw.js", "style.css"):
        with urllib.request.urlopen(server.url + "static/" + name, timeout=30) as response:
            assert response.read() == (STATIC / name).read_bytes()
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(server.url + "static/../server.py", timeout=30)
    assert missing.value.code == 404
    assert post(server.url + "predict", b"not an image")[0] == 422
    assert post(server.url + "predict", b"")[0] == 400


def test_the_page_ships_with_the_package():
    import tomllib

    shipped = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    patterns = shipped["tool"]["setuptools"]["package-data"]["emnist_bench.serve"]
    assert (
        {p.name for p in STATIC.iterdir()}
        == {p.name for pattern in patterns for p in STATIC.parent.glob(pattern)}
        >= {"index.html", "draw.js", "style.css"}
    )


def _strokes_by_mouse(page, strokes, box) -> None:
    for stroke in strokes:
        (x, y), *rest = stroke
        page.mouse.move(box["x"] + x, box["y"] + y)
        page.mouse.down()
        for x, y in rest:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=12)
        page.mouse.up()


def _strokes_by_finger(client, strokes, box) -> None:
    def touch(kind, points):
        client.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    for stroke in strokes:
        points = [(box["x"] + x, box["y"] + y) for x, y in stroke]
        touch("touchStart", [{"x": points[0][0], "y": points[0][1]}])
        for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
            for step in np.linspace(0, 1, 12)[1:]:
                point = {"x": x0 + (x1 - x0) * step, "y": y0 + (y1 - y0) * step}
                touch("touchMove", [point])
        touch("touchEnd", [])


def _shown_answer(page) -> list[dict]:
    page.wait_for_function(
        "() => { const r = document.getElementById('result');"
        " return r.dataset.sent !== '0' && r.dataset.shown === r.dataset.sent; }",
        timeout=30_000,
    )
    items = page.eval_on_selector_all(
        "#top li", "items => items.map(i => [i.dataset.label, Number(i.dataset.probability)])"
    )
    return [{"label": label, "probability": probability} for label, probability in items]


def _same_answer(shown: list[dict], expected: list[dict]) -> None:
    assert [item["label"] for item in shown] == [item["label"] for item in expected]
    for got, want in zip(shown, expected, strict=True):
        assert got["probability"] == pytest.approx(want["probability"], abs=1e-4)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (.ci/run installs it)")
def test_strokes_drawn_in_chromium_get_the_answer_predict_gives(server, cnn_run, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (the dev extra)")
    folder, _ = cnn_run
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True,
            args=FLAGS, has_touch=True,
        )  # fmt: skip
        try:
            page = browser.new_page()
            page.goto(server.url)
            box = page.locator("#pad").bounding_box()
            drawings = []
            for name, draw in (("mouse", _strokes_by_mouse), ("finger", _strokes_by_finger)):
                page.click("#clear")
                strokes = SEVEN if name == "mouse" else TEE
                target = page if name == "mouse" else browser.new_cdp_session(page)
                draw(target, strokes, box)
                shown = _shown_answer(page)
                encoded = page.evaluate("() => document.getElementById('pad').toDataURL()")
                drawing = tmp_path / f"{name}.png"
                drawing.write_bytes(base64.b64decode(encoded.split(",", 1)[1]))
                expected, seen = predict_files(folder, [drawing])
                _same_answer(shown, expected[0]["top"])
                drawings.append(seen[0])
            assert not np.array_equal(*drawings)  # the two drawings differ
            scan = scan_png(tmp_path / "dropped.png", seed=1)
            page.set_input_files("#file", str(scan))
            _same_answer(_shown_answer(page), predict_files(folder, [scan])[0][0]["top"])
        finally:
            browser.close()
