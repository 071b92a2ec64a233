"""The U²-NetP segmenter: model input, normalisation, mask size, and scale invariance."""

import numpy as np
import pytest
from helpers import assert_masks_close, encode, example_photo, pipeline_mask
from PIL import Image

from handler.parallel import StripPool
from handler.segmenter import INPUT_SIZE, MEAN, STD, model_input, normalise


def test_model_input_is_a_normalised_320_square_tensor():
    tensor = model_input(Image.new("RGB", (1000, 30), (255, 0, 51)))

    assert tensor.shape == (1, 3, INPUT_SIZE, INPUT_SIZE)
    assert tensor.dtype == np.float32
    assert tensor.flags.c_contiguous
    # Divided by the image's maximum (255), then ImageNet mean and std per channel.
    expected = (np.array([1.0, 0.0, 0.2], np.float32) - MEAN) / STD
    assert np.allclose(tensor[0, :, 160, 160], expected, atol=1e-3)


def test_model_input_follows_the_recipe_on_a_real_photo():
    photo = example_photo("chelsea")
    small = np.asarray(photo.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.LANCZOS, reducing_gap=2.0), np.float64)

    # The recipe's four steps, in float64: divide by the maximum, subtract the mean, divide by the std.
    expected = ((small / small.max() - MEAN) / STD).transpose(2, 0, 1)[np.newaxis]

    assert np.abs(model_input(photo) - expected).max() < 1e-5


@pytest.mark.parametrize("size", [(512, 512), (1920, 1080), (3024, 4032)])
def test_model_input_in_two_halves_is_the_same_on_two_cores_and_one_resizes_rows(size):
    # 512 px: LANCZOS alone; 1920x1080 and 12 MP: a box reduce first (by 3x1 and 4x6). At these
    # sizes Pillow takes its passes in the same order for a half as for the whole.
    photo = example_photo("coffee", size)
    whole = np.asarray(photo.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.LANCZOS, reducing_gap=2.0), np.float32)
    expected = ((whole / whole.max() - MEAN) / STD).transpose(2, 0, 1)[np.newaxis]

    one_core, two_cores = model_input(photo), model_input(photo, strips=StripPool(2))

    assert np.array_equal(one_core, two_cores)
    assert np.abs(two_cores - expected).max() < 1e-5


def test_model_input_of_a_black_image_does_not_divide_by_zero():
    tensor = model_input(Image.new("RGB", (50, 50)))

    assert np.isfinite(tensor).all()
    assert np.allclose(tensor[0, :, 0, 0], -MEAN / STD)


def test_normalise_stretches_to_zero_and_one():
    prediction = np.array([[0.2, 0.3], [0.4, 0.6]], np.float32)

    assert np.allclose(normalise(prediction), [[0.0, 0.25], [0.5, 1.0]])


@pytest.mark.parametrize("value", [0.0, 0.7, 1.0])
def test_normalise_keeps_a_flat_map_instead_of_dividing_by_zero(value):
    flat = normalise(np.full((4, 4), value, np.float32))

    assert np.isfinite(flat).all()
    assert np.allclose(flat, value)


def bilinear(small: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A reference upscale of an HxW map to ``size`` (width, height): linear along each axis between
    pixel centres, edges held, in float (an upscale only: a downscale would need a wider filter)."""
    (height, width), (new_width, new_height) = small.shape, size
    xs = (np.arange(new_width) + 0.5) * width / new_width - 0.5
    ys = (np.arange(new_height) + 0.5) * height / new_height - 0.5
    rows = np.stack([np.interp(xs, np.arange(width), row) for row in small])
    return np.stack([np.interp(ys, np.arange(height), column) for column in rows.T], axis=1)


@pytest.mark.parametrize("size", [(1, 1), (7, 3), (320, 320), (641, 200), (200, 641), (960, 720)])
def test_mask_is_uint8_at_the_source_size(segmenter, size):
    photo = example_photo("chelsea", size)
    mask = segmenter.predict(photo)

    assert mask.dtype == np.uint8
    assert mask.shape == (size[1], size[0])
    if min(size) >= INPUT_SIZE:  # AND upscaled, it is the model's 320x320 map interpolated bilinearly
        expected = bilinear(np.rint(segmenter.predict_small(photo) * 255), size)
        assert np.abs(mask - expected).max() <= 1


def test_a_featureless_image_gives_a_valid_mask(segmenter):
    mask = segmenter.predict(Image.new("RGB", (64, 48), (128, 128, 128)))

    assert mask.shape == (48, 64) and mask.dtype == np.uint8


def test_prediction_is_deterministic(segmenter):
    photo = example_photo("chelsea")

    assert np.array_equal(segmenter.predict(photo), segmenter.predict(photo))


def test_small_map_is_in_zero_one_with_both_ends(segmenter):
    small = segmenter.predict_small(example_photo("astronaut"))

    assert small.shape == (INPUT_SIZE, INPUT_SIZE)
    assert small.min() == 0.0 and small.max() == 1.0


def test_mask_does_not_change_with_resolution(segmenter):
    # GIVEN a 400x300 photo and the same photo upscaled 10x to a 12 MP JPEG, with pixel-level
    # grain like a phone sensor's: an antialiased downscale averages it away, a point-sampled
    # one picks it up (MAE 0.14 here with NEAREST, against 0.0014 for the real path).
    region = example_photo("astronaut").crop((56, 20, 456, 320))
    small_jpeg = encode(region, "JPEG", quality=95)
    upscaled = np.asarray(region.resize((4000, 3000), Image.Resampling.BICUBIC), dtype=np.int16)
    grain = np.random.default_rng(0).integers(-40, 41, size=upscaled.shape, dtype=np.int16)
    big_jpeg = encode(Image.fromarray(np.clip(upscaled + grain, 0, 255).astype(np.uint8)), "JPEG", quality=90)

    # WHEN both go through the pipeline
    small, big = pipeline_mask(small_jpeg, segmenter), pipeline_mask(big_jpeg, segmenter)

    # THEN the big mask, shrunk back, is the small one (an aliased downscale would flip it)
    assert big.shape == (3000, 4000)
    assert_masks_close(Image.fromarray(big).resize((400, 300), Image.Resampling.BOX), small, 0.01)
