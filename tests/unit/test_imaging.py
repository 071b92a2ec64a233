"""The pure image steps between the mask and the encoded output."""

import numpy as np
import pytest
from helpers import example_photo, make_image, open_result
from PIL import Image

from handler import imaging
from handler.errors import TooLarge


def test_flatten_composites_rgba_onto_the_colour():
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., :3] = (200, 100, 0)
    rgba[:, :3, 3] = 255  # left half opaque, right half transparent
    rgba[0, 5, 3] = 128

    flat = np.asarray(imaging.flatten(Image.fromarray(rgba), (10, 20, 30)))

    assert flat.shape == (4, 6, 3)
    assert tuple(flat[1, 1]) == (200, 100, 0)
    assert tuple(flat[1, 4]) == (10, 20, 30)
    assert np.abs(flat[0, 5].astype(int) - (105, 60, 15)).max() <= 1


def test_flatten_returns_rgb_as_is():
    image = make_image("RGB")

    assert imaging.flatten(image) is image


def test_combine_alpha_multiplies_and_rounds():
    mask = np.array([[255, 255, 128, 0, 200]], np.uint8)
    alpha = np.array([[255, 0, 255, 255, 128]], np.uint8)

    assert imaging.combine_alpha(mask, alpha).tolist() == [[255, 0, 128, 0, 100]]


def test_harden_snaps_the_ends_and_stretches_the_middle():
    mask = np.array([0, 26, 27, 128, 229, 230, 255], np.uint8)

    hard = imaging.harden(mask)

    assert hard.dtype == np.uint8
    assert hard[:2].tolist() == [0, 0]
    assert hard[-2:].tolist() == [255, 255]
    assert 0 < hard[2] < 5 and 250 < hard[4] < 255
    assert abs(int(hard[3]) - 128) <= 2
    assert np.all(np.diff(hard.astype(int)) >= 0), "hardening must keep the order of mask values"


def test_settle_clears_the_haze_and_keeps_the_outline():
    values = np.arange(256, dtype=np.uint8)

    settled = imaging.settle(values)

    assert not settled[: imaging.CROP_THRESHOLD + 1].any(), "what the crop does not count as subject is 0"
    assert (settled[255 - imaging.CROP_THRESHOLD :] == 255).all()
    assert np.array_equal(settled >= 128, values >= 128), "the outline at 0.5 must not move"
    assert np.all(np.diff(settled.astype(int)) >= 0), "settling must keep the order of mask values"


def test_subject_box_adds_a_margin_and_ignores_faint_values():
    mask = np.zeros((200, 300), np.uint8)
    mask[50:150, 100:200] = 255
    mask[0, 0] = imaging.CROP_THRESHOLD  # at the threshold: not subject

    left, top, right, bottom = imaging.subject_box(mask)

    assert (left, top, right, bottom) == (98, 48, 202, 152)


def test_subject_box_is_clipped_to_the_image():
    mask = np.full((40, 60), 255, np.uint8)

    assert imaging.subject_box(mask) == (0, 0, 60, 40)


def test_subject_box_of_an_empty_mask_is_none():
    assert imaging.subject_box(np.full((10, 10), imaging.CROP_THRESHOLD, np.uint8)) is None


@pytest.mark.parametrize(
    "size, max_side, expected",
    [
        ((4000, 3000), 1000, (1000, 750)),
        ((3000, 4000), 1000, (750, 1000)),
        ((1000, 1000), 1000, (1000, 1000)),
        ((800, 600), 1000, (800, 600)),  # never upscales
        ((10000, 10), 100, (100, 1)),  # never collapses to zero
    ],
)
def test_fit_within(size, max_side, expected):
    assert imaging.fit_within(size, max_side) == expected


def test_cutout_zeroes_rgb_only_where_alpha_is_zero():
    rgb = np.full((2, 3, 3), 90, np.uint8)
    alpha = np.array([[0, 200, 255], [128, 0, 0]], np.uint8)

    rgba = imaging.cutout(rgb, alpha)

    assert rgba.shape == (2, 3, 4) and rgba.dtype == np.uint8
    assert np.array_equal(rgba[..., 3], alpha)
    assert np.array_equal(rgba[..., :3].max(axis=-1), np.where(alpha > 0, 90, 0))


def test_faint_pixels_keep_only_the_colour_their_alpha_can_show():
    # GIVEN every colour at every alpha
    colour, alpha = np.meshgrid(np.arange(256, dtype=np.uint8), np.arange(256, dtype=np.uint8))
    rgb = np.repeat(colour[..., np.newaxis], 3, axis=2)

    rgba = imaging.cutout(rgb, alpha)

    # THEN composited over black or white, nothing moves by more than half a level
    for background in (0.0, 255.0):
        weight = alpha / 255.0
        before = weight * colour + (1 - weight) * background
        after = weight * rgba[..., 0] + (1 - weight) * background
        assert np.abs(after - before)[alpha > 0].max() <= 0.5
    # AND alpha 128 and up keeps every colour exactly, while faint pixels take fewer values:
    # multiples of one power of two per alpha, at most 255 // alpha (255 where rounding overflows),
    # and at alpha 1 a single middle value for every colour but white
    assert np.array_equal(rgba[128:, :, :3], rgb[128:])
    for level in range(2, 128):
        values = np.unique(rgba[level, :, 0])
        step = int(np.gcd.reduce(values[values < 255]))
        assert step & (step - 1) == 0 and step <= 255 // level and step * 2 > 255 // level
    assert np.unique(rgba[1, :255, 0]).tolist() == [127] and rgba[1, 255, 0] == 255
    assert len(np.unique(rgba[10, :, 0])) == 17


def test_on_background_weights_by_alpha():
    rgb = np.full((1, 3, 3), (0, 0, 200), np.uint8)
    alpha = np.array([[0, 255, 128]], np.uint8)

    out = imaging.on_background(rgb, alpha, (255, 255, 255))

    assert out.shape == (1, 3, 3)
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert tuple(out[0, 1]) == (0, 0, 200)
    assert np.abs(out[0, 2].astype(int) - (127, 127, 227)).max() <= 1


@pytest.mark.parametrize(
    "image_format, channels",
    [("png", 1), ("png", 3), ("png", 4), ("webp", 1), ("webp", 3), ("webp", 4), ("jpeg", 1), ("jpeg", 3)],
)
def test_encode_round_trips(image_format, channels):
    pixels = np.asarray(make_image({1: "L", 3: "RGB", 4: "RGBA"}[channels]))

    image = open_result(imaging.encode(pixels, image_format))

    assert image.format == {"png": "PNG", "webp": "WEBP", "jpeg": "JPEG"}[image_format]
    assert image.size == (pixels.shape[1], pixels.shape[0])
    decoded = np.asarray(image, dtype=np.int16)
    if image_format == "webp" and channels == 1:  # WebP has no greyscale: a mask comes back as equal R, G, B
        assert np.array_equal(decoded[..., 0], decoded[..., 2])
        decoded = decoded[..., 1]
    assert decoded.shape == pixels.shape
    tolerance = 0 if image_format == "png" else 12  # lossy formats: close on average
    assert np.abs(decoded - pixels).mean() <= tolerance


@pytest.mark.parametrize(
    ("image_format", "shape", "words"),
    [
        ("webp", (1, 16384), "WEBP holds at most 16383 pixels a side, the output is 16384x1"),
        ("jpeg", (65501, 1), "JPEG holds at most 65500 pixels a side, the output is 1x65501"),
    ],
)
def test_webp_or_jpeg_longer_than_its_limit_is_too_large(image_format, shape, words):
    # libjpeg's own refusal was an OSError: a 500 from the API
    with pytest.raises(TooLarge, match=words):
        imaging.encode(np.zeros(shape, np.uint8), image_format)
    imaging.encode(np.zeros((1, imaging.MAX_SIDES[image_format]), np.uint8), image_format)  # the limit itself is fine


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_to_array_copies_the_pixels_strip_by_strip(mode):
    image = example_photo("chelsea", (301, 517)).convert(mode)  # 517 rows: strips of 128 and a short last one

    pixels = imaging.to_array(image)

    assert np.array_equal(pixels.reshape(np.asarray(image).shape), np.asarray(image))
    assert pixels.flags.writeable
