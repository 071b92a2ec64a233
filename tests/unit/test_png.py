"""The fast PNG writer: every file it writes decodes, with Pillow, to exactly the pixels given."""

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from handler import png
from handler.parallel import StripPool
from handler.png import encode_png, filter_rows
from tests.helpers import example_photo

MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
UP, AVERAGE = 2, 3  # PNG filter types


def decoded(data: bytes) -> tuple[str, np.ndarray]:
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "PNG"
    return image.mode, np.asarray(image)


def shaped(pixels: np.ndarray, channels: int) -> np.ndarray:
    return pixels[..., 0] if channels == 1 else pixels[..., :channels]


def phone_photo(size: tuple[int, int], *, lossless: bool) -> np.ndarray:
    """An upscaled example with grain, as a camera's PNG or through JPEG as a phone saves it."""
    photo = np.asarray(example_photo("chelsea").resize(size), dtype=np.int16)
    grainy = Image.fromarray(np.clip(photo + np.random.default_rng(0).normal(0, 4, photo.shape), 0, 255).astype(np.uint8))
    if lossless:
        return np.asarray(grainy)
    jpeg = io.BytesIO()
    grainy.save(jpeg, format="JPEG", quality=92)
    return np.asarray(Image.open(jpeg))


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize(
    "height, width",
    [(1, 1), (1, 37), (37, 1), (7, 13), (32, 5), (33, 9), (95, 31)],
)
def test_random_noise_round_trips_exactly(channels, height, width):
    pixels = shaped(np.random.default_rng(height * 100 + width).integers(0, 256, (height, width, 4), dtype=np.uint8), channels)

    mode, back = decoded(encode_png(pixels))

    assert mode == MODES[channels]
    assert back.shape == pixels.shape and np.array_equal(back, pixels)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("value", [0, 128, 255])
def test_flat_images_round_trip_and_shrink_to_almost_nothing(channels, value):
    pixels = shaped(np.full((300, 400, 4), value, np.uint8), channels)

    data = encode_png(pixels)

    assert np.array_equal(decoded(data)[1], pixels)
    assert len(data) < 2_000, f"a flat {pixels.shape} image took {len(data)} bytes"


def filtered(pixels: np.ndarray, kind: int) -> np.ndarray:
    height, channels = pixels.shape[0], 1 if pixels.ndim == 2 else pixels.shape[2]
    scanlines = pixels.reshape(height, -1)
    out = np.empty((height, scanlines.shape[1] + 1), np.uint8)
    filter_rows(scanlines, channels, slice(0, height), out, kind=kind)
    return out


def unfiltered(rows: np.ndarray, bpp: int) -> np.ndarray:
    """The PNG specification's reconstruction, pixel by pixel in plain Python: the reference."""
    height, width = rows.shape[0], rows.shape[1] - 1
    out = np.zeros((height, width), np.int64)
    for y in range(height):
        kind = rows[y, 0]
        for x in range(width):
            a = int(out[y, x - bpp]) if x >= bpp else 0
            b = int(out[y - 1, x]) if y else 0
            c = int(out[y - 1, x - bpp]) if x >= bpp and y else 0
            p = a + b - c
            paeth = a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else b if abs(p - b) <= abs(p - c) else c
            predictor = (0, a, b, (a + b) // 2, paeth)[kind]
            out[y, x] = (int(rows[y, x + 1]) + predictor) % 256
    return out.astype(np.uint8)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_rows_are_up_filtered(channels):
    # Each filtered row is the filter type 2 ("Up") and the row minus the one above, modulo 256.
    pixels = shaped(np.random.default_rng(7).integers(0, 256, (5, 6, 4), dtype=np.uint8), channels)
    rows = pixels.reshape(5, -1)
    up = filtered(pixels, UP)
    assert up[:, 0].tolist() == [2] * 5
    assert np.array_equal(up[0, 1:], rows[0])
    assert np.array_equal(up[1:, 1:], (rows[1:].astype(np.int16) - rows[:-1]) % 256)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("kind", [png.ADAPTIVE, AVERAGE])
def test_the_chosen_filters_reconstruct_random_pixels(channels, kind):
    pixels = shaped(np.random.default_rng(channels).integers(0, 256, (9, 11, 4), dtype=np.uint8), channels)

    rows = filtered(pixels, kind)

    assert np.array_equal(unfiltered(rows, channels), pixels.reshape(9, -1))


def test_average_filtered_rows_reconstruct_strip_by_strip():
    # The rows of a strip are filtered against the row above the strip, as one pass would
    pixels = np.random.default_rng(4).integers(0, 256, (12, 7, 3), dtype=np.uint8)
    scanlines = pixels.reshape(12, -1)
    out = np.empty((12, scanlines.shape[1] + 1), np.uint8)
    for rows in (slice(0, 5), slice(5, 12)):
        filter_rows(scanlines, 3, rows, out[rows], kind=AVERAGE)

    assert np.array_equal(out, filtered(pixels, AVERAGE))
    assert out[:, 0].tolist() == [AVERAGE] * 12
    assert np.array_equal(unfiltered(out, 3), scanlines)


def test_the_filter_choice_is_the_minimum_sum_of_absolute_differences():
    # GIVEN rows that suit different filters: flat (None), a horizontal ramp (Sub), a copy of
    # the row above (Up), the row above plus a constant, a noisy ramp
    ramp = np.arange(40) * 3
    noise = np.random.default_rng(5).integers(0, 9, 40)
    pixels = np.stack([np.zeros(40), ramp, ramp, ramp + 90, (ramp + noise) // 2]).astype(np.uint8)

    rows = filtered(pixels, png.ADAPTIVE)

    # THEN each row's filter is, of None, Sub, Up and Paeth (Pillow's set: no Average), one
    # whose residuals, read as signed bytes, sum the least
    for y, kind in enumerate(rows[:, 0]):
        costs = {}
        for candidate in (0, 1, 2, 4):
            residual = (pixels[y].astype(int) - predictions(pixels, y, candidate)) % 256
            costs[candidate] = int(np.minimum(residual, 256 - residual).sum())
        assert costs[kind] == min(costs.values()), (y, kind, costs)
    assert rows[:3, 0].tolist() == [0, 1, 2]


def predictions(pixels: np.ndarray, y: int, kind: int) -> np.ndarray:
    """The predictor of each byte of row y (one byte a pixel) under filter ``kind``."""
    row, above = pixels[y].astype(int), pixels[y - 1].astype(int) if y else np.zeros(pixels.shape[1], int)
    out = []
    for x in range(pixels.shape[1]):
        a, b, c = (row[x - 1] if x else 0), above[x], (above[x - 1] if x else 0)
        p = a + b - c
        paeth = a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else b if abs(p - b) <= abs(p - c) else c
        out.append((0, a, b, (a + b) // 2, paeth)[kind])
    return np.array(out)


def test_the_chosen_filters_reconstruct_a_real_cutout():
    photo = np.asarray(example_photo("astronaut").resize((120, 90)))
    alpha = np.zeros(photo.shape[:2], np.uint8)
    alpha[20:70, 30:100] = np.linspace(40, 255, 70, dtype=np.uint8)
    rgba = np.dstack([photo, alpha])

    rows = filtered(rgba, png.ADAPTIVE)

    assert len(set(rows[:, 0].tolist())) > 1, "a real photo should not get one filter everywhere"
    assert np.array_equal(unfiltered(rows, 4), rgba.reshape(90, -1))


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("adaptive_size", [(700, 900), (1500, 800)])  # under and over ADAPTIVE_MAX_PIXELS
def test_a_png_of_many_strips_decodes_with_pillow_and_with_zlib(channels, adaptive_size):
    # GIVEN a real photo big enough for many strips, each deflated on its own
    width, height = adaptive_size
    pixels = shaped(np.asarray(example_photo("chelsea").convert("RGBA").resize((width, height))), channels)
    assert height > png.STRIP_BYTES // (width * channels + 1) * 3

    data = encode_png(pixels)

    # THEN Pillow decodes it to the same pixels, and zlib reads the IDAT as one stream whose
    # adler32 checks out, with the filtered scanlines in it
    assert np.array_equal(decoded(data)[1], pixels)
    length = int.from_bytes(data[33:37], "big")
    assert data[37:41] == b"IDAT"
    scanlines = zlib.decompress(data[41 : 41 + length])
    assert len(scanlines) == height * (width * channels + 1)
    rows = np.frombuffer(scanlines, np.uint8).reshape(height, -1)
    assert np.array_equal(unfiltered(rows[:3], channels), pixels.reshape(height, -1)[:3])


@pytest.mark.parametrize("lossless", [False, True])  # the two codings of big images
def test_the_bytes_do_not_depend_on_the_number_of_workers(lossless):
    pixels = phone_photo((1400, 900), lossless=lossless)

    assert encode_png(pixels, strips=StripPool(3)) == encode_png(pixels)


def test_a_photo_with_noise_and_a_transparent_region_round_trips_and_beats_pillow_level_1():
    photo = np.asarray(example_photo("coffee"), dtype=np.int16)
    noisy = np.clip(photo + np.random.default_rng(3).normal(0, 4, photo.shape), 0, 255).astype(np.uint8)
    alpha = np.zeros(noisy.shape[:2], np.uint8)
    alpha[50:350, 100:500] = 255
    alpha[40:50, 100:500] = np.linspace(0, 255, 10, dtype=np.uint8)[:, None]
    rgba = np.dstack([noisy * (alpha[..., None] > 0), alpha])
    pillow = io.BytesIO()
    Image.fromarray(rgba).save(pillow, format="PNG", compress_level=1)

    data = encode_png(rgba)

    assert np.array_equal(decoded(data)[1], rgba)
    assert len(data) < len(pillow.getvalue())


@pytest.mark.parametrize("level", [1, 9])
def test_any_level_round_trips(level):
    pixels = np.asarray(example_photo("chelsea"))

    assert np.array_equal(decoded(encode_png(pixels, level=level))[1], pixels)


def test_large_images_get_their_own_level():
    # A 6 MP cut-out-like image: an upscaled photo with grain, so the levels differ
    pixels = phone_photo((3000, 2000), lossless=False)

    data = encode_png(pixels)

    assert data == encode_png(pixels, level=png.LEVELS[-1][1])
    assert data != encode_png(pixels, level=png.LEVELS[0][1])
    assert np.array_equal(decoded(data)[1], pixels)


@pytest.mark.parametrize("lossless, kind", [(False, UP), (True, AVERAGE)])
def test_a_big_image_gets_the_coding_that_compresses_it_smaller(monkeypatch, lossless, kind):
    # GIVEN a 1.3 MP photo with grain that went through JPEG, or that did not
    pixels = np.dstack([phone_photo((1400, 900), lossless=lossless), np.full((900, 1400), 255, np.uint8)])

    data = encode_png(pixels)

    # THEN every row has the filter of the coding that the sample strips chose ("Up" with
    # string matching after JPEG, "Average" with runs only for untouched grain), the pixels
    # decode as given, and the whole file is smaller than with the other coding
    rows = np.frombuffer(zlib.decompress(data[41 : 41 + int.from_bytes(data[33:37], "big")]), np.uint8)
    assert set(rows.reshape(900, -1)[:, 0].tolist()) == {kind}
    assert np.array_equal(decoded(data)[1], pixels)
    other = png.AVERAGE_RUNS if kind == UP else png.UP_MATCHED
    monkeypatch.setattr(png, "_trial", lambda *args: other)
    assert len(data) < len(encode_png(pixels))


def test_non_uint8_pixels_are_refused():
    with pytest.raises(ValueError, match="uint8, not uint16"):
        encode_png(np.zeros((4, 4), np.uint16))
