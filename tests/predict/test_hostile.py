"""``predict`` meets files it did not make: bombs, other formats, FIFOs, names with markup,
math text or bytes that are not UTF-8. Each is one line, and the batch goes on."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from emnist_bench.errors import UserError
from emnist_bench.predict import command
from emnist_bench.predict.images import (
    MAX_PIXELS,
    WORKING_SIDE,
    ImageTooLarge,
    printable,
    read_image,
    text_name,
)
from tests.predict.hostile import header_only_png, png_bomb, write
from tests.serve.test_serve import scan_png

MEASURE = """
import sys, time
from emnist_bench.errors import UserError
from emnist_bench.predict.images import read_image
from emnist_bench.predict.preprocess import to_emnist
started = time.perf_counter()
try:
    outcome = int(to_emnist(read_image(sys.argv[1])).max())
except UserError as error:
    outcome = str(error)
seconds = time.perf_counter() - started
# VmHWM is this program's peak; ru_maxrss would count the parent it was forked from.
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
print(repr((outcome, seconds, peak * 1024)))
"""


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    """A 36- and an 81-megapixel PNG of a few dozen kilobytes each, a 36-megapixel
    transparent one, and a header claiming 4 gigapixels (beyond Pillow's own limit)."""
    from PIL import ImageDraw

    folder = tmp_path_factory.mktemp("bombs")
    rgba = Image.new("RGBA", (6000, 6000), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).rectangle((2000, 1000, 4000, 5000), fill="black")
    rgba.save(folder / "rgba.png", compress_level=1)
    return {
        "rgba": folder / "rgba.png",
        "below": write(folder / "below.png", png_bomb(6000, 6000)),
        "above": write(folder / "above.png", png_bomb(9000, 9000)),
        "huge": write(folder / "huge.png", header_only_png(65_000, 65_000)),
    }


@pytest.mark.parametrize("which", ["below", "rgba", "above", "huge"])
def test_a_bomb_takes_under_10_s_and_1_gb_in_a_process_of_its_own(bombs, which):
    assert bombs[which].stat().st_size < 1_000_000
    shown = subprocess.run([sys.executable, "-c", MEASURE, str(bombs[which])],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    outcome, seconds, peak = eval(shown.stdout)
    assert seconds < 10 and peak < 2**30, (seconds, peak)
    if which in ("below", "rgba"):
        assert outcome == 255  # converted, at the working size
    else:
        assert "above the limit of 40 megapixels; pass --max-pixels N to raise it" in outcome
    print(f"{which}: {seconds:.2f} s, peak {peak / 2**20:.0f} MB")


def test_the_limit_is_read_from_the_header_and_can_be_raised(bombs):
    started = time.perf_counter()
    with pytest.raises(ImageTooLarge, match="9000 x 9000 = 81.0 megapixels"):
        read_image(bombs["above"])
    assert time.perf_counter() - started < 1
    assert max(read_image(bombs["above"], max_pixels=100_000_000).shape) == WORKING_SIDE
    with pytest.raises(ImageTooLarge, match="limit of 0.001 megapixels"):
        read_image(bombs["below"], max_pixels=1000)


def test_a_batch_goes_on_past_bad_files_and_exits_2(cnn_run, bombs, tmp_path, capsys):
    folder, _ = cnn_run
    good = scan_png(tmp_path / "good.png")
    gif = tmp_path / "drawing.png"
    Image.new("L", (40, 40), 255).save(gif, format="GIF")
    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    blank = tmp_path / "blank.jpg"
    Image.new("L", (64, 64), 255).save(blank, format="JPEG")
    truncated = write(tmp_path / "cut.png", good.read_bytes()[:200])
    inputs = [good, gif, fifo, blank, truncated, bombs["above"], tmp_path / "missing.png",
              bombs["below"]]  # fmt: skip
    sheet = tmp_path / "sheet.png"
    with pytest.raises(SystemExit) as stopped:
        command.main([str(folder), *map(str, inputs), "--json", "--sheet", str(sheet)])
    assert stopped.value.code == 2
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [line["file"] for line in lines] == [str(path) for path in inputs]
    assert ["top" in line for line in lines] == [1, 0, 0, 0, 0, 0, 0, 1]
    reasons = [line.get("error", "") for line in lines]
    assert "not a PNG or JPEG image (it is GIF)" in reasons[1]
    assert "not a regular file" in reasons[2]
    assert "no ink" in reasons[3] and "not a readable PNG or JPEG" in reasons[4]
    assert "--max-pixels" in reasons[5] and reasons[6] == "not found"
    errors = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    failed = [f"error: {line['file']}: {line['error']}" for line in lines if "error" in line]
    assert errors == failed and len(errors) == 6
    assert "6 of 8 images could not be read" in captured.err and sheet.is_file()


NASTY = ["[bold red]a.png", "$x$.png", "$\\frac{1}{$.png", "[link=x]b.png", "\x1b[31mred.png"]


def test_names_are_printed_as_text_never_as_markup_or_math(cnn_run, tmp_path, capsys):
    folder, _ = cnn_run
    pages = tmp_path / "pages"
    pages.mkdir()
    paths = [scan_png(pages / name) for name in NASTY]
    raw = os.fsencode(pages) + b"/caf\xe9.png"  # Latin-1, not UTF-8
    with open(raw, "wb") as handle:
        handle.write(paths[0].read_bytes())
    command.main([str(folder), str(pages), "--sheet", str(tmp_path / "sheet.png")])
    out = capsys.readouterr().out
    for name in [
        "[bold red]a.png",
        "$x$.png",
        "[link=x]b.png",
        "caf\ufffd.png",
        "\ufffd[31mred.png",
    ]:
        assert name in out
    assert "\x1b" not in out and (tmp_path / "sheet.png").stat().st_size > 1000


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(min_size=1, max_size=30))
@example(".")  # Path("/pages/.") is "/pages": found by a CI run of this test
def test_any_name_shows_as_itself_in_the_table(name):
    from rich.console import Console

    console = Console(width=400, record=True, file=io.StringIO())
    result = {"file": f"/pages/{name}", "top": [{"label": "A", "probability": 0.5}]}
    console.print(command.results_table([result, {"file": "/other/b.png", "error": name}]))
    text = console.export_text()
    assert printable(f"/pages/{name}") in text or "\n" in name or "/" in name


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


SMALL = _png(np.full((20, 30), 200, np.uint8))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_damage_to_a_png_is_a_user_error_or_an_image(data):
    body = bytearray(SMALL)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(body) - 1))
        body[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(8, len(body)))
    try:
        gray = read_image(bytes(body[:cut]))
    except UserError as error:
        assert "\n" not in str(error)
    else:
        assert gray.ndim == 2 and max(gray.shape) <= WORKING_SIDE


@given(st.binary(max_size=64))
def test_any_bytes_are_a_user_error_or_an_image(body):
    try:
        read_image(body)
    except UserError as error:
        assert "\n" not in str(error)


def test_non_utf8_names_become_replacement_characters():
    assert text_name(os.fsdecode(b"caf\xe9.png")) == "caf\ufffd.png"
    assert printable("a\nb\x1b") == "a\ufffdb\ufffd"
    assert MAX_PIXELS == 40_000_000


def test_a_damaged_model_or_config_is_one_line(cnn_run, tmp_path, capsys):
    import shutil

    folder, _ = cnn_run
    image = scan_png(tmp_path / "one.png")
    damages = [("model.keras", b"PK\x03\x04 not a zip"), ("config.yaml", b"a: [b"),
               ("config.yaml", b"- a list\n"), ("config.yaml", b"\xff\xfe\x00")]  # fmt: skip
    for name, damage in damages:
        run = tmp_path / f"run_{len(list(tmp_path.iterdir()))}"
        shutil.copytree(folder, run)
        (run / name).write_bytes(damage)
        with pytest.raises(SystemExit) as stopped:
            command.main([str(run), str(image), "--no-sheet"])
        err = capsys.readouterr().err.strip()
        assert stopped.value.code == 2 and len(err.splitlines()) == 1, err
        assert err.startswith(f"error: {run / name}: ")
