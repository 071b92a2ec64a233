"""The reduced JPEG decode that feeds the model, and the pipeline that uses it."""

import io

import numpy as np
import pytest
from helpers import encode, example_photo, mask_mae, open_result
from PIL import Image

from handler import decode, imaging
from handler.options import Options
from handler.pipeline import PREVIEW_SIDE, remove_background
from handler.segmenter import upsample

LIMIT = 40_000_000


@pytest.fixture(scope="module")
def big_photo() -> Image.Image:
    return example_photo("chelsea", (3000, 2000))


def test_big_jpeg_preview_is_reduced_but_keeps_the_minimum_side(big_photo):
    preview = decode.decode_preview(
        decode.open_image(encode(big_photo, "JPEG", quality=90), max_pixels=LIMIT), min_side=PREVIEW_SIDE
    )
    assert preview.mode == "RGB"
    assert min(preview.size) >= PREVIEW_SIDE and preview.size == (1500, 1000)  # libjpeg's 1/2: 1/4 would be < 640


@pytest.mark.parametrize(
    ("image_format", "size"), [("PNG", (3000, 2000)), ("WEBP", (3000, 2000)), ("JPEG", (1000, 800))], ids=str
)
def test_no_preview_where_no_reduction_is_possible(big_photo, image_format, size):
    data = encode(big_photo.resize(size), image_format)
    assert decode.decode_preview(decode.open_image(data, max_pixels=LIMIT), min_side=PREVIEW_SIDE) is None


def test_preview_of_an_exif_rotated_jpeg_is_upright(big_photo):
    stored = big_photo.transpose(Image.Transpose.ROTATE_90)  # what the camera stored: 2000x3000
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    preview = decode.decode_preview(
        decode.open_image(encode(stored, "JPEG", exif=exif), max_pixels=LIMIT), min_side=PREVIEW_SIDE
    )
    assert preview.size == (1500, 1000)


def test_preview_path_gives_the_mask_of_the_full_decode(big_photo, segmenter):
    # GIVEN a big JPEG, cut out through the pipeline (which feeds the model the preview)
    data = encode(big_photo, "JPEG", quality=90)
    options = Options(mask=True, refine=False)
    via_preview = np.asarray(open_result(remove_background(data, options, segmenter=segmenter, max_pixels=LIMIT).data))
    # THEN the model saw the reduced decode: the mask is exactly the preview's, upsampled (and
    # settled, as every unrefined mask is)
    preview = decode.decode_preview(decode.open_image(data, max_pixels=LIMIT), min_side=PREVIEW_SIDE)
    assert np.array_equal(via_preview, imaging.settle(upsample(segmenter.predict_small(preview), big_photo.size)))
    # AND it matches the mask computed from the full-size decode
    full = decode.decode(data, max_pixels=LIMIT)
    direct = imaging.settle(upsample(segmenter.predict_small(full), full.size))
    assert via_preview.shape == direct.shape == (2000, 3000)
    assert mask_mae(via_preview, direct) <= 0.01  # the core's scale-invariance bound


def test_a_jpeg_with_a_second_picture_is_cut_out_as_its_first_picture_is(big_photo, segmenter):
    # GIVEN the same photo as a JPEG and as an MPO, the JPEG with a second picture appended (an
    # iPhone's gain map): Pillow opens the latter as format MPO
    jpeg = encode(big_photo, "JPEG", quality=90)
    buffer = io.BytesIO()
    big_photo.save(buffer, "MPO", quality=90, save_all=True, append_images=[big_photo.resize((300, 200))])
    assert decode.open_image(buffer.getvalue(), max_pixels=LIMIT).format == "MPO"
    # THEN both take the reduced decode: the same bytes out
    options = Options(refine=False)
    cutouts = [remove_background(data, options, segmenter=segmenter, max_pixels=LIMIT).data for data in (jpeg, buffer.getvalue())]
    assert cutouts[0] == cutouts[1]


def test_released_memory_does_not_change_the_mask(segmenter):
    photo = example_photo("coffee")
    assert np.array_equal(segmenter.predict_small(photo, release_memory=True), segmenter.predict_small(photo))
