"""The strip pool, and the promise that rests on it: the multi-core path gives the same bytes as the single-core one."""

import threading

import numpy as np
import pytest
from helpers import encode, example_photo
from PIL import Image

from handler.options import Options
from handler.parallel import MAX_STRIP_PIXELS, MIN_STRIP_PIXELS, SERIAL, StripPool, row_strips
from handler.pipeline import remove_background


@pytest.mark.parametrize("height, rows", [(1, 256), (256, 256), (257, 256), (1000, 7)])
def test_row_strips_cover_every_row_once_in_order(height, rows):
    strips = row_strips(height, rows)

    covered = [row for strip in strips for row in range(strip.start, strip.stop)]
    assert covered == list(range(height))
    assert all(strip.stop - strip.start <= rows for strip in strips)


def test_the_pool_runs_strips_at_the_same_time_and_keeps_their_order():
    # Two strips that can only finish together: proof that two threads run them at once.
    both_started = threading.Barrier(2, timeout=10)

    def work(strip: slice) -> int:
        if strip.start < 2:
            both_started.wait()
        return strip.start

    assert StripPool(2).over_rows(work, 10, 1) == list(range(10))


def test_one_worker_runs_in_the_calling_thread():
    assert SERIAL.map(lambda _: threading.current_thread(), range(3)) == [threading.current_thread()] * 3


def test_a_pool_needs_a_worker():
    with pytest.raises(ValueError, match="at least 1, not 0"):
        StripPool(0)


@pytest.fixture(scope="module")
def big_photo() -> bytes:
    """A 1600x1200 JPEG with grain: refined, recoloured and written in many strips."""
    photo = np.asarray(example_photo("coffee").resize((1600, 1200)), dtype=np.int16)
    grain = np.random.default_rng(11).normal(0, 3, photo.shape)
    return encode(Image.fromarray(np.clip(photo + grain, 0, 255).astype(np.uint8)), "JPEG", quality=92)


@pytest.mark.parametrize(
    "options",
    [Options(), Options(crop=True), Options(background=(20, 90, 200), format="jpeg"), Options(mask=True, hard=True)],
    ids=["cutout", "crop", "background", "mask"],
)
def test_the_multi_core_path_gives_the_same_bytes_as_the_single_core_one(segmenter, big_photo, options):
    single = remove_background(big_photo, options, segmenter=segmenter, max_pixels=10**8)
    multi = remove_background(big_photo, options, segmenter=segmenter, max_pixels=10**8, strips=StripPool(3))

    assert multi.data == single.data
    assert multi.stage_seconds.keys() == single.stage_seconds.keys()


@pytest.mark.parametrize("orientation", [1, 6, 8])
def test_a_big_jpeg_decoded_beside_its_mask_upsampling_lines_up_at_any_orientation(segmenter, orientation):
    # GIVEN a big JPEG stored sideways with an EXIF orientation: its mask is upsampled to the
    # upright size (read from the header) while the full-size decode runs
    stored = example_photo("chelsea", (1500, 2000))
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(stored, "JPEG", exif=exif, quality=90)
    options = Options(mask=True, refine=False)

    single = remove_background(data, options, segmenter=segmenter, max_pixels=10**8)
    multi = remove_background(data, options, segmenter=segmenter, max_pixels=10**8, strips=StripPool(2))

    assert multi.data == single.data
    assert (multi.width, multi.height) == ((1500, 2000) if orientation == 1 else (2000, 1500))


class CountingPool(StripPool):
    """A one-worker pool that remembers how many items each call handed out, and the rows of each strip."""

    def __init__(self):
        super().__init__(1)
        self.handed_out: list[int] = []
        self.strip_heights: list[int] = []

    def map(self, function, items):
        items = list(items)
        self.handed_out.append(len(items))
        self.strip_heights += [item.stop - item.start for item in items if isinstance(item, slice)]
        return super().map(function, items)


def test_a_one_pixel_wide_image_is_not_cut_into_a_strip_per_128_pixels(segmenter):
    # GIVEN a 1x65,535 PNG (the longest side accepted), refined and recoloured by default (regression: every full-resolution
    # step cut it into 128-row strips, 1,563 of 128 pixels each, whose hand-offs cost more than
    # their work: a 1x40,000,000 PNG of a few KB took 51 s where a 40 MP photo takes about 1 s)
    pixels = np.full((65_535, 1, 3), 90, np.uint8)
    pixels[20_000:45_000] = (240, 200, 40)
    pool = CountingPool()
    data = encode(Image.fromarray(pixels), "PNG")

    result = remove_background(data, Options(), segmenter=segmenter, max_pixels=10**8, strips=pool)

    # THEN it is cut out in full, and no step hands out strips of fewer than MIN_STRIP_PIXELS
    assert (result.width, result.height) == (1, 65_535) and "refinement" in result.stage_seconds
    assert max(pool.handed_out) <= -(-65_535 // MIN_STRIP_PIXELS)


def test_a_panorama_wider_than_a_photo_is_cut_into_strips_of_fewer_rows(segmenter):
    # GIVEN a 40,000x300 panorama (regression: 128-row strips of a 65,535-pixel-wide image held
    # 8 MP each, and their temporaries, two at a time, took a 40 MP panorama to a 1.2 GB peak
    # where a 40 MP photo peaks under 600 MB)
    pixels = np.full((300, 40_000, 3), 90, np.uint8)
    pixels[100:200, 10_000:30_000] = (240, 200, 40)
    pool = CountingPool()
    data = encode(Image.fromarray(pixels), "PNG")

    result = remove_background(data, Options(), segmenter=segmenter, max_pixels=10**8, strips=pool)

    # THEN it is cut out in full, refined, and no strip holds more than MAX_STRIP_PIXELS
    assert (result.width, result.height) == (40_000, 300) and "refinement" in result.stage_seconds
    assert pool.strip_heights and max(pool.strip_heights) * 40_000 <= MAX_STRIP_PIXELS
