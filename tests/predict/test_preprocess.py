"""EMNIST's conversion of an image (Cohen et al. 2017) applied to pages of any size and polarity."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from emnist_bench.errors import UserError
from emnist_bench.predict.images import image_files, read_image
from emnist_bench.predict.preprocess import IMAGE_SIDE, MARGIN, ink_strength, to_emnist
from tests.predict.scans import render_scan

SEVEN = [(40, 24), (184, 24), (96, 200)]  # a "7" on a 224x224 grid, 2 x 8 pixels from the top


def emnist_like(points=SEVEN, width: int = 22) -> np.ndarray:
    """A character drawn 8x large, centred with its longer side 24 of 28 pixels, then shrunk
    to 28x28: upright, bright ink on black, as EMNIST stores characters."""
    big = Image.new("L", (224, 224), 0)
    ImageDraw.Draw(big).line(points, fill=255, width=width, joint="curve")
    left, top, right, bottom = big.getbbox()
    scale = 192 / max(right - left, bottom - top)
    ink = big.crop((left, top, right, bottom))
    ink = ink.resize(
        (round(ink.width * scale), round(ink.height * scale)), Image.Resampling.LANCZOS
    )
    framed = Image.new("L", (224, 224), 0)
    framed.paste(ink, ((224 - ink.width) // 2, (224 - ink.height) // 2))
    small = np.asarray(framed.resize((28, 28), Image.Resampling.BICUBIC), dtype=np.float64)
    return np.round(np.clip(small, 0, None) * 255 / small.max()).astype(np.uint8)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.astype(float).ravel(), b.astype(float).ravel())[0, 1])


def extent(image: np.ndarray, threshold: int = 32) -> tuple[int, int]:
    rows, cols = np.nonzero(image > threshold)
    return int(np.ptp(rows)) + 1, int(np.ptp(cols)) + 1


def test_a_scan_of_an_emnist_character_converts_back_to_it():
    original = emnist_like()
    page = render_scan(original, np.random.default_rng(0))
    assert page.shape[0] > 250 and page.mean() > 150  # large, dark ink on light paper
    converted = to_emnist(page)
    assert converted.shape == (IMAGE_SIDE, IMAGE_SIDE) and converted.dtype == np.uint8
    assert converted.max() == 255
    assert correlation(converted, original) > 0.93


def test_output_is_framed_as_emnist_frames_characters():
    converted = to_emnist(render_scan(emnist_like(), np.random.default_rng(1)))
    height, width = extent(converted)
    assert max(height, width) in range(IMAGE_SIDE - 2 * MARGIN - 1, IMAGE_SIDE - 2 * MARGIN + 2)
    assert converted[0].max() == converted[-1].max() == 0  # paper is exactly 0, as in EMNIST
    assert converted[:, 0].max() == converted[:, -1].max() == 0


def test_both_polarities_size_and_margin_give_the_same_image():
    original = emnist_like()
    rng = np.random.default_rng(2)
    dark_on_light = to_emnist(render_scan(original, rng))
    light_on_dark = to_emnist(255 - render_scan(original, rng))
    larger = to_emnist(render_scan(original, rng, scale=20))
    assert correlation(dark_on_light, light_on_dark) > 0.97
    assert correlation(dark_on_light, larger) > 0.97


def test_aspect_ratio_is_kept_and_the_character_centred():
    bar = np.full((600, 400), 240.0)
    bar[100:500, 180:230] = 20  # a tall bar: 400 high, 50 wide
    converted = to_emnist(bar)
    height, width = extent(converted, threshold=128)
    assert height >= 22 and width <= 5
    columns = np.nonzero(converted.max(axis=0) > 128)[0]
    assert abs((columns.min() + columns.max()) / 2 - 13.5) <= 1


def test_a_speck_of_dirt_does_not_move_the_character():
    page = render_scan(emnist_like(), np.random.default_rng(3))
    clean = to_emnist(page)
    dirty = page.copy()
    dirty[2:5, 2:5] = 0  # a dot far from the character
    assert correlation(to_emnist(dirty), clean) > 0.99


def test_a_blank_page_is_refused():
    with pytest.raises(UserError, match="no ink"):
        to_emnist(np.full((100, 100), 200.0))


def test_paper_noise_is_not_ink():
    rng = np.random.default_rng(4)
    page = np.clip(230 + rng.normal(0, 3, (200, 200)), 0, 255)
    page[50:150, 90:110] = 30
    strength = ink_strength(page)
    assert (strength[:40] == 0).mean() > 0.99 and strength[60:140, 95:105].min() > 150


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("ink", [(0, 0, 0, 255), (255, 255, 255, 255)])
def test_strokes_on_a_transparent_background_are_kept(ink):
    image = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    ImageDraw.Draw(image).line(SEVEN, fill=ink, width=16)
    converted = to_emnist(read_image(_png(image)))
    expected = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(expected).line(SEVEN, fill=0, width=16)
    assert correlation(converted, to_emnist(np.asarray(expected, dtype=float))) > 0.99


def test_jpeg_and_png_files_are_read(tmp_path):
    page = Image.fromarray(render_scan(emnist_like(), np.random.default_rng(5)))
    page.save(tmp_path / "a.jpg", quality=85)
    page.save(tmp_path / "b.png")
    converted = [to_emnist(read_image(tmp_path / name)) for name in ("a.jpg", "b.png")]
    assert correlation(*converted) > 0.98


def test_unreadable_and_missing_files_are_user_errors(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(UserError, match="not a PNG or JPEG"):
        read_image(tmp_path / "notes.png")
    with pytest.raises(UserError, match="not found"):
        read_image(tmp_path / "missing.png")


def test_folders_expand_to_their_images_in_order(tmp_path):
    folder = tmp_path / "pages"
    folder.mkdir()
    for name in ("b.PNG", "a.jpeg", "c.jpg", "readme.txt"):
        (folder / name).write_bytes(b"")
    single = tmp_path / "z.png"
    single.write_bytes(b"")
    assert [p.name for p in image_files([folder, single])] == ["a.jpeg", "b.PNG", "c.jpg", "z.png"]
    (tmp_path / "empty").mkdir()  # stays, and reading it says why
    assert image_files([tmp_path / "empty", tmp_path / "nothing"]) == [
        tmp_path / "empty",
        tmp_path / "nothing",
    ]


@pytest.mark.parametrize("kind", ["JPEG", "PNG"])
def test_a_photo_is_turned_the_way_it_was_held_after_shrinking(kind):
    exif = Image.Exif()
    exif[0x0112] = 6  # held turned: a 4,000 x 2,000 photo shows 2,000 wide, 4,000 high
    buffer = io.BytesIO()
    Image.new("L", (4000, 2000), 255).save(buffer, kind, exif=exif.tobytes())
    assert read_image(buffer.getvalue()).shape == (1024, 512)
