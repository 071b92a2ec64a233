"""Every option through handler.pipeline.remove_background, on a real photo (examples/coffee.jpg)."""

import functools
import platform
import re
import struct
import subprocess
import sys

import numpy as np
import pytest
from helpers import EXAMPLES, assert_masks_close, encode, example_photo, open_result
from PIL import Image

from handler import imaging, refine
from handler.options import Options
from handler.pipeline import RESULT_CODE, module_code, remove_background, result_version, segment, shape_mask
from handler.settings import BUNDLED_MODEL

LIMIT = 40_000_000
WIDTH, HEIGHT = 600, 400
WHITE = (255, 255, 255)


@pytest.fixture(scope="module")
def coffee() -> bytes:
    return (EXAMPLES / "coffee.jpg").read_bytes()


@pytest.fixture(scope="module")
def run(segmenter, coffee):
    # Options are frozen and hashable: each distinct run happens once per module.
    @functools.cache
    def run(options: Options, data: bytes = coffee):
        return remove_background(data, options, segmenter=segmenter, max_pixels=LIMIT)

    return run


@pytest.fixture(scope="module")
def mask(run) -> np.ndarray:
    return np.asarray(open_result(run(Options(mask=True)).data))


def test_mask_is_a_greyscale_png_that_finds_the_cup(run, mask):
    result = run(Options(mask=True))

    image = open_result(result.data)
    assert (image.format, image.mode, image.size) == ("PNG", "L", (WIDTH, HEIGHT))
    assert (result.format, result.media_type, result.width, result.height) == ("png", "image/png", WIDTH, HEIGHT)
    assert result.input_pixels == WIDTH * HEIGHT
    # The cup fills the middle of the photo; the table at the corners is background.
    assert mask[150:250, 250:350].min() > 200
    assert max(mask[:20, :20].max(), mask[-20:, :20].max(), mask[:20, -20:].max(), mask[-20:, -20:].max()) < 30


def test_default_is_a_png_cutout_with_alpha(run, mask, coffee):
    result = run(Options())

    image = open_result(result.data)
    assert (image.format, image.mode, image.size) == ("PNG", "RGBA", (WIDTH, HEIGHT))
    cutout = np.asarray(image)
    alpha = cutout[..., 3]
    assert_masks_close(alpha, mask, 0.02)  # the alpha is the mask (refinement may move edges a little)
    assert not cutout[alpha == 0, :3].any(), "RGB must be 0 where alpha is 0"
    photo = np.asarray(example_photo("coffee"), dtype=np.int16)
    opaque = alpha == 255
    assert np.abs(cutout[opaque, :3] - photo[opaque]).max() <= 2, "opaque pixels keep the photo's colours"


def test_background_colour_shows_where_the_mask_is_zero(run):
    colour = (20, 200, 90)
    result = run(Options(background=colour))

    image = open_result(result.data)
    assert (image.mode, image.size) == ("RGB", (WIDTH, HEIGHT))
    alpha = np.asarray(open_result(run(Options()).data))[..., 3]
    pixels = np.asarray(image)
    assert (alpha == 0).any()
    assert np.all(pixels[alpha == 0] == colour)


@pytest.mark.parametrize(
    "options, mode",
    [(Options(format="jpeg", background=WHITE), "RGB"), (Options(format="jpeg", mask=True), "L")],
)
def test_jpeg_with_a_background_or_as_a_mask(run, options, mode):
    result = run(options)

    image = open_result(result.data)
    assert (image.format, image.mode, image.size) == ("JPEG", mode, (WIDTH, HEIGHT))
    assert result.media_type == "image/jpeg"


def test_webp_cutout_keeps_alpha(run, mask):
    result = run(Options(format="webp"))

    image = open_result(result.data)
    assert (image.format, image.mode, image.size) == ("WEBP", "RGBA", (WIDTH, HEIGHT))
    assert result.media_type == "image/webp"
    # The colours are lossy (quality 90), the alpha is not: it is the mask, every value of it
    assert np.array_equal(np.asarray(image.getchannel("A")), mask)


def test_crop_is_smaller_and_contains_the_subject(run, mask):
    result = run(Options(crop=True, mask=True))

    cropped = np.asarray(open_result(result.data))
    assert cropped.shape[1] < WIDTH and cropped.shape[0] <= HEIGHT
    assert (result.width, result.height) == (cropped.shape[1], cropped.shape[0])
    subject = mask > imaging.CROP_THRESHOLD
    assert np.count_nonzero(cropped > imaging.CROP_THRESHOLD) == np.count_nonzero(subject)
    # Only the subject's box plus the margin: the cup's left and right edges are near the crop's.
    rows, cols = np.flatnonzero(subject.any(axis=1)), np.flatnonzero(subject.any(axis=0))
    margin = round(imaging.CROP_MARGIN * max(rows[-1] - rows[0], cols[-1] - cols[0]))
    assert cropped.shape[1] <= cols[-1] - cols[0] + 1 + 2 * margin


def test_crop_of_a_cutout_keeps_alpha(run):
    image = open_result(run(Options(crop=True)).data)

    assert image.mode == "RGBA" and image.width < WIDTH


def test_crop_of_a_photo_with_no_subject_keeps_it_whole(run):
    # A source transparent all over leaves nothing to crop to: the whole picture, not an error.
    clear = encode(Image.new("RGBA", (90, 60), (30, 60, 90, 0)), "PNG")
    image = open_result(run(Options(crop=True), clear).data)

    assert image.size == (90, 60) and image.getextrema()[3] == (0, 0)


@pytest.mark.parametrize("max_size, expected", [(300, (300, 200)), (599, (599, 399)), (600, (600, 400)), (5000, (600, 400))])
def test_max_size_fits_the_longest_side_and_never_upscales(run, max_size, expected):
    result = run(Options(max_size=max_size))

    image = open_result(result.data)
    assert image.size == expected == (result.width, result.height)
    assert image.mode == "RGBA"


def test_max_size_of_a_portrait_photo(run):
    portrait = encode(example_photo("coffee").rotate(90, expand=True), "JPEG")

    assert open_result(run(Options(max_size=150, mask=True), portrait).data).size == (100, 150)


def test_max_size_mask_is_the_full_mask_shrunk(run, mask):
    small = np.asarray(open_result(run(Options(mask=True, max_size=300)).data))

    assert_masks_close(small, Image.fromarray(mask).resize((300, 200), Image.Resampling.LANCZOS), 0.01)


@pytest.mark.parametrize("options", [Options(max_size=100), Options(max_size=100, background=(255, 255, 255))])
def test_max_size_never_shows_colours_that_alpha_hid(run, options):
    # GIVEN a red disc on pixels that are green but fully transparent: nothing green is visible
    y, x = np.mgrid[0:400, 0:400]
    pixels = np.zeros((400, 400, 4), np.uint8)
    pixels[...] = (0, 255, 0, 0)
    pixels[(x - 200) ** 2 + (y - 200) ** 2 < 100**2] = (255, 0, 0, 255)
    # WHEN it is shrunk to a quarter (regression: colour and alpha were shrunk apart, and the
    # disc's edge came out up to 59 levels green)
    result = np.asarray(open_result(run(options, encode(Image.fromarray(pixels), "PNG")).data), np.float32)
    # THEN no green shows: none composited from the cut-out, and over white the edge is red and
    # white mixed (green as much as blue)
    if result.shape[2] == 4:
        assert (result[..., 1] * result[..., 3] / 255).max() <= 2
    else:
        assert (result[..., 1] - result[..., 2]).max() <= 2


def icc_profile(colour_space: bytes = b"RGB ") -> bytes:
    """A real RGB profile (littleCMS's sRGB), its colour space field set to ``colour_space``."""
    from PIL import ImageCms

    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    profile[16:20] = colour_space
    return bytes(profile)


@pytest.mark.parametrize("source_format", ["JPEG", "PNG", "WEBP", "HEIF"])
@pytest.mark.parametrize("options", [Options(), Options(format="webp"), Options(background=(255, 255, 255), format="jpeg")])
def test_an_rgb_icc_profile_is_carried_to_the_output(run, source_format, options):
    # GIVEN a photo tagged with an RGB profile (an iPhone's Display P3, a camera's Adobe RGB)
    profile = icc_profile()
    photo = example_photo("coffee", (300, 200))
    data = encode(photo, source_format, icc_profile=profile)
    # WHEN it is cut out, THEN the output carries the same profile, so its colours mean what they did
    output = open_result(run(options, data).data)
    assert output.info.get("icc_profile") == profile


def display_p3_profile() -> bytes:
    """Display P3, as iPhones tag their photos: littleCMS's sRGB with P3's primaries (D50-adapted
    colorants, which sum to its white point); the same sRGB tone curve."""
    profile = bytearray(icc_profile())
    colorants = {b"rXYZ": (0.5151, 0.2412, -0.0011), b"gXYZ": (0.2920, 0.6922, 0.0419), b"bXYZ": (0.1571, 0.0666, 0.7841)}
    for entry in range(struct.unpack(">I", profile[128:132])[0]):
        signature, offset, _ = struct.unpack(">4sII", profile[132 + 12 * entry : 144 + 12 * entry])
        if signature in colorants:
            profile[offset + 8 : offset + 20] = struct.pack(">3i", *(round(value * 65536) for value in colorants[signature]))
    return bytes(profile)


def srgb_in_display_p3(colour: tuple[int, int, int]) -> np.ndarray:
    """An sRGB colour as Display P3 stores it, by the colour-space arithmetic: decode the tone curve,
    sRGB's primaries to XYZ, XYZ to P3's primaries, encode the tone curve (the two share it)."""
    srgb = np.array([[0.4360, 0.3851, 0.1431], [0.2225, 0.7169, 0.0606], [0.0139, 0.0971, 0.7139]])
    p3 = np.array([[0.5151, 0.2920, 0.1571], [0.2412, 0.6922, 0.0666], [-0.0011, 0.0419, 0.7841]])
    encoded = np.array(colour) / 255
    linear = np.where(encoded <= 0.04045, encoded / 12.92, ((encoded + 0.055) / 1.055) ** 2.4)
    linear = np.clip(np.linalg.solve(p3, srgb @ linear), 0, 1)
    return 255 * np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


@pytest.mark.parametrize("image_format", ["png", "jpeg", "webp"])
def test_a_background_colour_shows_as_named_on_a_photo_with_another_profile(run, image_format):
    # GIVEN a photo tagged Display P3, and a background named as the web names colours (sRGB)
    profile = display_p3_profile()
    data = encode(example_photo("coffee", (300, 200)), "PNG", icc_profile=profile)
    colour = (64, 128, 192)
    # WHEN it is composited onto that colour
    output = open_result(run(Options(background=colour, format=image_format), data).data)
    mask = np.asarray(open_result(run(Options(mask=True), data).data))
    # THEN the output keeps the photo's profile, and its background holds the colour in that
    # profile's terms, so that viewers show #4080c0 (stored as is, it showed as #2082c5: not
    # the colour of the shop's page around it)
    assert output.info.get("icc_profile") == profile
    background = np.asarray(output, np.float64)[mask == 0]
    tolerance = 1 if image_format == "png" else 3  # JPEG and WebP are lossy
    assert np.abs(np.median(background, axis=0) - srgb_in_display_p3(colour)).max() <= tolerance


def test_a_background_on_a_profile_that_cannot_be_read_is_the_colour_as_named(run):
    # GIVEN a photo whose RGB profile is garbage past its colour-space field (viewers ignore it)
    profile = bytes(16) + b"RGB " + bytes(108)
    data = encode(example_photo("coffee", (300, 200)), "PNG", icc_profile=profile)
    # WHEN it is composited onto a colour, THEN it is that colour, as an untagged photo gets it
    output = np.asarray(open_result(run(Options(background=(64, 128, 192)), data).data))
    mask = np.asarray(open_result(run(Options(mask=True), data).data))
    assert (output[mask == 0] == (64, 128, 192)).all()


def test_profiles_that_no_longer_fit_the_pixels_are_left_out(run):
    # A CMYK JPEG's profile describes CMYK, not the RGB the cut-out has; a mask is no colour at all
    cmyk = encode(example_photo("coffee", (300, 200)).convert("CMYK"), "JPEG", icc_profile=icc_profile(b"CMYK"))
    rgb = encode(example_photo("coffee", (300, 200)), "PNG", icc_profile=icc_profile())
    untagged = encode(example_photo("coffee", (300, 200)), "PNG")
    assert "icc_profile" not in open_result(run(Options(), cmyk).data).info
    assert "icc_profile" not in open_result(run(Options(mask=True), rgb).data).info
    assert b"iCCP" not in run(Options(), untagged).data


def test_crop_then_max_size(run):
    image = open_result(run(Options(crop=True, max_size=128)).data)

    assert max(image.size) == 128


def test_hard_makes_the_mask_crisper_without_moving_it(run, mask):
    hard = np.asarray(open_result(run(Options(mask=True, hard=True)).data))

    def soft(values):
        return np.count_nonzero((values > 0) & (values < 255))

    assert soft(hard) < soft(mask)
    assert_masks_close(hard, mask, 0.03)
    assert np.mean((hard > 127) != (mask > 127)) < 0.002, "hardening must not move the subject's outline"


def test_an_unrefined_mask_loses_the_models_haze_but_not_its_outline(run, mask, segmenter):
    # GIVEN the model's own mask of the photo, upsampled: a haze of alpha 1-8 lies over the table
    photo = example_photo("coffee")
    model = segmenter.predict(photo)
    haze = (model > 0) & (model <= imaging.CROP_THRESHOLD)
    assert np.count_nonzero(haze) > 1000
    # THEN the pipeline's mask (refinement is off at this size) has none of it, and what was as
    # near 255 is 255
    assert not mask[haze].any()
    assert (mask[model >= 255 - imaging.CROP_THRESHOLD] == 255).all()
    # AND the same outline, and the cut-out's alpha is that mask
    assert np.array_equal(mask >= 128, model >= 128)
    cutout = run(Options())
    assert np.array_equal(np.asarray(open_result(cutout.data))[..., 3], mask)
    # AND the haze's colours no longer cost the PNG
    hazy = imaging.encode(imaging.cutout(np.asarray(photo), model), "png")
    print(f"PNG without the haze: {len(cutout.data) / len(hazy):.3f} of the PNG with it")
    assert len(cutout.data) < len(hazy)


def test_a_refined_mask_is_settled_too(segmenter):
    # GIVEN a photo big enough to be refined, and its refined mask as refinement alone gives it
    data = encode(example_photo("coffee", (1200, 800)), "JPEG", quality=90)
    _, seen, mask = segment(data, segmenter=segmenter, max_pixels=LIMIT)
    refined = refine.refine_mask(mask, refine.working_photo(seen))
    assert np.any((refined > 0) & (refined <= imaging.CROP_THRESHOLD)), "refinement left some haze to settle"
    # THEN the pipeline's mask is that one settled: no haze left, the same outline
    result = np.asarray(open_result(remove_background(data, Options(mask=True), segmenter=segmenter, max_pixels=LIMIT).data))
    assert np.array_equal(result, imaging.settle(refined))
    assert np.array_equal(result >= 128, refined >= 128)
    # AND it is shape_mask's, so eval and the contact sheet measure what the pipeline ships
    assert np.array_equal(result, shape_mask(mask, refine.working_photo(seen)))


def test_same_input_gives_the_same_output(segmenter, coffee, run):
    again = remove_background(coffee, Options(), segmenter=segmenter, max_pixels=LIMIT)

    assert again.data == run(Options()).data


def test_semi_transparent_sources_keep_their_own_colours(segmenter):
    # GIVEN a photo made half transparent (regression: the cut-out took the colours the model saw,
    # composited onto white, so every semi-transparent pixel came out lighter)
    photo = np.asarray(example_photo("coffee", (160, 120)))
    source = Image.fromarray(np.dstack([photo, np.full(photo.shape[:2], 128, np.uint8)]))
    # WHEN it is cut out
    result = open_result(remove_background(encode(source, "PNG"), Options(), segmenter=segmenter, max_pixels=10**7).data)
    # THEN where anything is visible, the colours are the source's own: exactly at alpha 128,
    # and to the precision their alpha can show below it (cutout's rounding to a power of two up to 255 // alpha)
    pixels = np.asarray(result)
    alpha = pixels[..., 3]
    assert alpha.max() == 128 and (alpha == 128).sum() > 1000
    assert np.array_equal(pixels[..., :3][alpha == 128], photo[alpha == 128])
    faint = (alpha > 0) & (alpha < 128)
    error = np.abs(pixels[..., :3].astype(np.int16) - photo)[faint].max(axis=-1)
    assert np.all(error <= (255 // alpha[faint]) // 2)


def test_colours_hidden_under_a_sources_transparency_do_not_shape_its_edges(segmenter):
    # GIVEN a transparent PNG over twice the model's size (refined by default) with the coffee
    # photo opaque in its middle, once with black and once with noise under the transparent border
    photo = np.asarray(example_photo("coffee", (900, 600)))
    opaque = np.zeros(photo.shape[:2], bool)
    opaque[100:500, 150:750] = True
    noise = np.random.default_rng(0).integers(0, 256, photo.shape, dtype=np.uint8)
    results = []
    for hidden in (np.zeros_like(photo), noise):
        source = np.dstack([np.where(opaque[..., None], photo, hidden), np.where(opaque, 255, 0).astype(np.uint8)])
        data = encode(Image.fromarray(source, "RGBA"), "PNG")
        results.append(remove_background(data, Options(refine=True), segmenter=segmenter, max_pixels=LIMIT).data)
    # THEN the cut-outs are the same: refinement is guided by what the model saw, the photo over white
    # (regression: guided by the hidden colours, the noise pulled alpha inside the opaque part down)
    assert results[0] == results[1]


@pytest.mark.parametrize("options", [Options(), Options(background=(0, 0, 255), format="jpeg")], ids=["cutout", "background"])
def test_an_alpha_channel_that_hides_nothing_changes_nothing(segmenter, options):
    # GIVEN a photo over twice the model's size (its fringe's colours cleaned by default), once as an
    # RGB PNG and once as an RGBA PNG whose alpha is 255 everywhere, as many exports write them
    photo = example_photo("coffee", (900, 600))
    rgb, rgba = (encode(photo.convert(mode), "PNG") for mode in ("RGB", "RGBA"))
    # WHEN both are cut out
    results = [remove_background(data, options, segmenter=segmenter, max_pixels=LIMIT) for data in (rgb, rgba)]
    # THEN the same pixels give the same output (regression: the opaque RGBA one counted as a
    # transparent source, whose colours are kept, so its fringe kept the old background)
    assert results[1].data == results[0].data


def test_the_result_version_follows_the_model_bytes(tmp_path):
    # GIVEN two model files with other bytes, and a copy of one of them at another path
    first, second, copy = tmp_path / "a.onnx", tmp_path / "b.onnx", tmp_path / "c.onnx"
    first.write_bytes(b"model one")
    second.write_bytes(b"model two")
    copy.write_bytes(b"model one")
    # THEN the bytes, not the path, decide the version
    assert result_version(first) == result_version(copy) != result_version(second)
    assert re.fullmatch("[0-9a-f]{16}", result_version(BUNDLED_MODEL))


def test_a_modules_code_changes_with_its_code_not_with_its_comments(tmp_path):
    # GIVEN a module, the same with other comments and layout, and the same with one constant changed
    original, recommented, changed = (tmp_path / name for name in ("a.py", "b.py", "c.py"))
    original.write_text('"""Levels."""\n\nLEVEL = 5  # measured\n')
    recommented.write_text('"""Levels."""\n# re-measured on hires\n\nLEVEL = 5\n')
    changed.write_text('"""Levels."""\n\nLEVEL = 6  # measured\n')
    # THEN only the change to the code changes what the result version reads of it
    assert module_code(original) == module_code(recommented) != module_code(changed)


def test_another_processor_architecture_gives_another_result_version(monkeypatch):
    # GIVEN the version of the bundled model's results here, and the same with the processor read as the other one
    here = result_version.__wrapped__(BUNDLED_MODEL)  # not the process's cached value
    other = "aarch64" if platform.machine() != "aarch64" else "x86_64"
    monkeypatch.setattr(platform, "machine", lambda: other)
    # THEN a stack switched to the other architecture makes its stored results again
    assert result_version.__wrapped__(BUNDLED_MODEL) != here


def test_the_result_version_covers_every_module_that_decides_a_results_bytes():
    # GIVEN the handler modules the pipeline loads, in a fresh interpreter
    listing = "import handler.pipeline, sys; print(*(name for name in sys.modules if name.startswith('handler.')))"
    loaded = subprocess.run(
        [sys.executable, "-c", listing],
        capture_output=True,
        text=True,
        check=True,
        cwd=EXAMPLES.parent,
    ).stdout.split()
    # THEN each is in the version's code, or cannot change a result: errors only name failures, and
    # the strip pool gives the same bytes with any number of workers (tests/unit/test_parallel.py)
    assert {name.removeprefix("handler.") + ".py" for name in loaded} == {*RESULT_CODE, "parallel.py", "errors.py"}
