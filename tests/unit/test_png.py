"""The fast PNG writer: every file it writes decodes, with Pillow, to exactly the pixels given."""

import io

import numpy as np
import pytest
from PIL import Image

from handler import png
from handler.png import encode_png, filter_rows
from tests.helpers import example_photo

MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def decoded(data: bytes) -> tuple[str, np.ndarray]:
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "PNG"
    return image.mode, np.asarray(image)


def shaped(pixels: np.ndarray, channels: int) -> np.ndarray:
    return pixels[..., 0] if channels == 1 else pixels[..., :channels]


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


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_rows_are_up_filtered(channels):
    # Each filtered row is the filter type 2 ("Up") and the row minus the one above, modulo 256.
    pixels = shaped(np.random.default_rng(7).integers(0, 256, (5, 6, 4), dtype=np.uint8), channels)
    filtered = filter_rows(pixels)
    rows = pixels.reshape(5, -1)
    assert filtered[:, 0].tolist() == [2] * 5
    assert np.array_equal(filtered[0, 1:], rows[0])
    assert np.array_equal(filtered[1:, 1:], (rows[1:].astype(np.int16) - rows[:-1]) % 256)


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


@pytest.mark.parametrize("level", [1, 12])
def test_any_libdeflate_level_round_trips(level):
    pixels = np.asarray(example_photo("chelsea"))

    assert np.array_equal(decoded(encode_png(pixels, level=level))[1], pixels)


def test_large_images_are_compressed_harder():
    # A 6 MP cut-out-like image: an upscaled photo with grain, so the levels differ
    photo = example_photo("chelsea").resize((3000, 2000))
    grain = np.random.default_rng(0).integers(0, 4, (2000, 3000, 3), dtype=np.uint8)
    pixels = np.asarray(photo) | grain

    data = encode_png(pixels)

    assert data == encode_png(pixels, level=png.LARGE_IMAGE_LEVEL)
    assert len(data) < len(encode_png(pixels, level=png.FAST_LEVEL))
    assert np.array_equal(decoded(data)[1], pixels)


def test_non_uint8_pixels_are_refused():
    with pytest.raises(ValueError, match="uint8, not uint16"):
        encode_png(np.zeros((4, 4), np.uint16))
