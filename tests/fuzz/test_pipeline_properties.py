"""Property-based tests (hypothesis) of degenerate images: 1-pixel-wide strips, tiny and constant
images, masks with nothing or everything settled. Whatever the size and options, the pipeline
answers a valid image of the right size or a typed 4xx error, the same bytes on one worker or
three, and the refinement steps never compute NaN or infinity, even where their windows are
larger than the image or the guide is one flat colour."""

import numpy as np
from helpers import encode, open_result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from handler import refine
from handler.errors import ServiceError
from handler.imaging import fit_within
from handler.options import Options
from handler.parallel import SERIAL, StripPool
from handler.pipeline import remove_background

THREE = StripPool(3)
# Sides around the pipeline's thresholds (refinement and colour clean-up from 641 px on, strips of
# 128 rows), paired with a side of 1-3 pixels so that each image stays small.
LONG_SIDES = st.sampled_from([127, 128, 129, 320, 321, 640, 641, 1300])
SHORT_SIDES = st.integers(1, 3)
sizes = st.one_of(
    st.tuples(st.integers(1, 24), st.integers(1, 24)),
    st.tuples(LONG_SIDES, SHORT_SIDES),
    st.tuples(SHORT_SIDES, LONG_SIDES),
)
contents = st.sampled_from(["black", "white", "grey", "red", "noise"])
options = st.builds(
    Options,
    format=st.sampled_from(["png", "webp", "jpeg"]),
    mask=st.booleans(),
    background=st.none() | st.just((20, 90, 200)),
    crop=st.booleans(),
    max_size=st.sampled_from([None, 1, 2, 5000]),
    refine=st.sampled_from([None, True, False]),
    hard=st.booleans(),
).filter(lambda o: not (o.mask and o.background) and (o.format != "jpeg" or not o.has_alpha))


def pixels(content: str, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    if content == "noise":
        return np.random.default_rng(width * 7919 + height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    colour = {"black": (0, 0, 0), "white": (255, 255, 255), "grey": (128, 128, 128), "red": (255, 0, 0)}[content]
    return np.broadcast_to(np.array(colour, np.uint8), (height, width, 3)).copy()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes, contents, st.sampled_from(["PNG", "JPEG", "WEBP"]), options)
def test_any_degenerate_image_gives_a_right_sized_image_or_a_4xx(segmenter, size, content, source_format, options):
    data = encode(Image.fromarray(pixels(content, size)), source_format)
    try:
        single = remove_background(data, options, segmenter=segmenter, max_pixels=40_000_000)
    except ServiceError as error:
        assert 400 <= error.status < 500, error
        return
    multi = remove_background(data, options, segmenter=segmenter, max_pixels=40_000_000, strips=THREE)

    image = open_result(single.data)
    assert image.size == (single.width, single.height)
    if options.crop:  # a box within the image, then fitted within max_size
        assert image.width <= size[0] and image.height <= size[1]
        assert max(image.size) <= (options.max_size or max(size))
    else:
        assert image.size == (fit_within(size, options.max_size) if options.max_size else size)
    assert multi.data == single.data


masks = st.sampled_from(["empty", "full", "half", "noise", "ramp", "step"])


def mask_of(kind: str, shape: tuple[int, int]) -> np.ndarray:
    height, width = shape
    if kind == "noise":
        return np.random.default_rng(height * 31 + width).integers(0, 256, shape, dtype=np.uint8)
    if kind == "ramp":
        return np.broadcast_to(np.linspace(0, 255, width).astype(np.uint8), shape).copy()
    if kind == "step":  # clear on the left, opaque on the right, one column of fringe between
        row = np.where(np.arange(width) < width // 2, 0, 255).astype(np.uint8)
        row[width // 2] = 128
        return np.broadcast_to(row, shape).copy()
    return np.full(shape, {"empty": 0, "full": 255, "half": 128}[kind], np.uint8)


@settings(max_examples=60, deadline=None)
@given(sizes, contents, masks)
def test_refinement_of_degenerate_images_stays_finite_and_settled(size, content, mask_kind):
    rgb = pixels(content, size)
    mask = mask_of(mask_kind, rgb.shape[:2])
    guide = refine.working_photo(Image.fromarray(rgb))
    # A division by a zero variance or a flat blur, or a window's sum gone infinite, raises here
    with np.errstate(divide="raise", invalid="raise", over="raise"):
        refined = refine.refine_mask(mask, guide, strips=SERIAL)
        coloured = refine.foreground_colours(rgb, mask, guide, strips=SERIAL)

    assert refined.shape == mask.shape and coloured.shape == rgb.shape
    settled = (mask <= refine.BAND[0]) | (mask >= refine.BAND[1])
    assert np.array_equal(refined[settled], np.where(mask[settled] > 127, 255, 0)), "a settled pixel is not 0 or 255"
    assert np.array_equal(coloured[mask == 255], rgb[mask == 255]), "an opaque pixel changed colour"
    assert np.array_equal(refine.refine_mask(mask, guide, strips=THREE), refined)
    assert np.array_equal(refine.foreground_colours(rgb, mask, guide, strips=THREE), coloured)
