"""Decoding untrusted bytes: every format by content, every colour mode, EXIF orientation,
size limits, and a typed error (never another exception) for everything that is not an image."""

import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from helpers import assert_masks_close, encode, example_photo, make_image, open_result, pipeline_mask, png16, raw_png
from PIL import ExifTags, Image

import handler.decode
from handler.errors import ServiceError, TooLarge, UndecodableImage, UnsupportedMediaType
from handler.options import Options
from handler.pipeline import remove_background

LIMIT = 40_000_000
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "HEIF")
# How a camera with each EXIF orientation (2-8) stores an upright picture (EXIF 2.32): the inverse
# of the transpose that shows it upright, which the decoder must apply.
STORED_AS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def decode(data: bytes, max_pixels: int = LIMIT) -> Image.Image:
    return handler.decode.decode(data, max_pixels=max_pixels)


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    # Not square, and a multiple of 16 on both sides so JPEG blocks line up after any transpose.
    return example_photo("astronaut").crop((32, 64, 480, 384)).resize((224, 160), Image.Resampling.LANCZOS)


@pytest.mark.parametrize("image_format", FORMATS)
def test_every_format_decodes_to_upright_rgb(photo, image_format):
    image = decode(encode(photo, image_format))

    assert image.mode == "RGB"
    assert image.size == photo.size
    # GIF quantises to 256 colours and JPEG/WebP/HEIC are lossy: close to the photo, not equal.
    difference = np.abs(np.asarray(image, dtype=np.int16) - np.asarray(photo, dtype=np.int16)).mean()
    assert difference < 8, f"{image_format} decoded {difference:.1f} levels away from the photo"


@pytest.mark.parametrize("image_format", FORMATS)
def test_format_is_recognised_by_content_not_name(tmp_path, photo, image_format):
    # A file named .jpg that holds another format: decode never looks at names, only bytes.
    path = tmp_path / "misnamed.jpg"
    path.write_bytes(encode(photo, image_format))

    assert decode(path.read_bytes()).size == photo.size


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (40, 30), colour) for colour in ((250, 0, 0), (0, 250, 0), (0, 0, 250))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)

    image = decode(data)

    assert image.size == (40, 30)
    assert tuple(np.asarray(image)[15, 20]) == (250, 0, 0)


@pytest.mark.parametrize(
    "mode, image_format, expected_mode",
    [
        ("CMYK", "JPEG", "RGB"),
        ("L", "PNG", "RGB"),
        ("L", "JPEG", "RGB"),
        ("1", "PNG", "RGB"),
        ("P", "PNG", "RGB"),
        ("P", "GIF", "RGB"),
        ("I;16", "PNG", "RGB"),
        ("I;16", "TIFF", "RGB"),
        ("LA", "PNG", "RGBA"),
        ("RGBA", "PNG", "RGBA"),
        ("RGBA", "WEBP", "RGBA"),
        ("RGBA", "TIFF", "RGBA"),
    ],
)
def test_every_colour_mode_becomes_rgb_or_rgba(mode, image_format, expected_mode):
    source = make_image(mode)

    image = decode(encode(source, image_format))

    assert image.mode == expected_mode
    assert image.size == source.size


def test_cmyk_jpeg_keeps_its_colours():
    source = make_image("RGB")

    image = decode(encode(source.convert("CMYK"), "JPEG", quality=95))

    difference = np.abs(np.asarray(image, dtype=np.int16) - np.asarray(source, dtype=np.int16)).mean()
    assert difference < 6


def test_palette_with_transparency_becomes_rgba_with_that_colour_transparent():
    source = make_image("P")
    corner_index = source.getpixel((0, 0))

    image = decode(encode(source, "PNG", transparency=corner_index))

    assert image.mode == "RGBA"
    alpha = np.asarray(image.getchannel("A"))
    expected = (np.asarray(source) != corner_index) * 255
    assert np.array_equal(alpha, expected)


def test_grey_tiff_with_premultiplied_alpha_becomes_rgba():
    # Regression: Pillow opens it as La, which it converts to LA only: it was refused as corrupt.
    unassociated = encode(Image.frombytes("LA", (3, 1), bytes([10, 0, 100, 128, 200, 255])), "TIFF")
    extra_samples = struct.pack("<HHI", 338, 3, 1)  # one SHORT: 2 is unassociated alpha, 1 premultiplied
    data = unassociated.replace(extra_samples + b"\x02\x00", extra_samples + b"\x01\x00")
    assert data != unassociated

    image = decode(data)

    assert image.mode == "RGBA"
    assert np.asarray(image)[0, :, 3].tolist() == [0, 128, 255]
    assert np.asarray(image)[0, 1:, :3].tolist() == [[199, 199, 199], [200, 200, 200]]  # 100 at alpha 128, unmixed


def test_sixteen_bit_grey_is_scaled_not_clamped():
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (8, 1))

    grey = np.asarray(decode(png16(ramp)))[..., 0]

    assert np.abs(grey.astype(int) - np.arange(256)).max() <= 1


def test_dark_sixteen_bit_grey_stays_dark():
    # Regression: the scale was guessed from the brightest pixel, so a 16-bit image whose
    # values were all below 256 was taken for 8-bit and came out 257 times too bright.
    dark = np.tile(np.arange(0, 256, dtype=np.uint16), (8, 1))

    grey = np.asarray(decode(png16(dark)))[..., 0]

    assert grey.max() <= 1


def test_sixteen_bit_grey_with_a_transparent_value_becomes_rgba():
    # Regression: scaling to 8 bits built a new image and dropped the tRNS grey value.
    grey = np.tile(np.arange(0, 65536, 257, dtype=np.uint16), (4, 1))

    image = decode(png16(grey, transparent=257 * 10))

    assert image.mode == "RGBA"
    alpha = np.asarray(image.getchannel("A"))
    assert np.array_equal(alpha, np.where(grey == 257 * 10, 0, 255))


@pytest.mark.parametrize("bit_depth", [2, 4])
@pytest.mark.parametrize("scaled", [False, True], ids=["as PNG stores it", "scaled, as Pillow writes it"])
def test_low_bit_depth_grey_with_a_transparent_value_becomes_rgba(bit_depth, scaled):
    # Regression: Pillow scales 2- and 4-bit grey to 0-255 but not the tRNS value, so no pixel was transparent.
    levels = 2**bit_depth - 1
    values = np.arange(16) % (levels + 1)
    row = (values.reshape(-1, 8 // bit_depth) << np.arange(8 - bit_depth, -1, -bit_depth)).sum(axis=1).astype(np.uint8)
    idat = zlib.compress((b"\0" + row.tobytes()) * 2)  # two rows, filter type 0
    key = 255 // levels if scaled else 1  # the grey value 1

    image = decode(raw_png(16, 2, bit_depth=bit_depth, colour_type=0, idat=idat, transparent=key))

    assert image.mode == "RGBA"
    pixels = np.asarray(image)
    assert pixels[0, :, 0].tolist() == (values * (255 // levels)).tolist()
    assert pixels[..., 3].tolist() == 2 * [np.where(values == 1, 0, 255).tolist()]


def test_sixteen_bit_rgb_keeps_its_colours(photo):
    pixels = np.asarray(photo, dtype=np.uint16) * 257

    image = decode(png16(pixels))

    assert image.mode == "RGB"
    assert np.abs(np.asarray(image, dtype=np.int16) - np.asarray(photo, dtype=np.int16)).max() <= 1


@pytest.mark.parametrize("channels", ["grey", "rgb"])
def test_sixteen_bit_png_mask_matches_its_eight_bit_twin(segmenter, photo, channels):
    eight = photo.convert("L") if channels == "grey" else photo
    sixteen = np.asarray(eight, dtype=np.uint16) * 256 + 127  # the low byte carries information too

    assert_masks_close(pipeline_mask(png16(sixteen), segmenter), pipeline_mask(encode(eight, "PNG"), segmenter), 0.01)


def test_rgba_transparent_pixels_stay_transparent_in_the_cutout(segmenter, photo):
    source = photo.convert("RGBA")
    alpha = np.full((photo.height, photo.width), 255, np.uint8)
    alpha[:, : photo.width // 3] = 0
    source.putalpha(Image.fromarray(alpha))

    result = remove_background(encode(source, "PNG"), Options(), segmenter=segmenter, max_pixels=LIMIT)

    cutout = np.asarray(open_result(result.data))
    assert cutout.shape == (photo.height, photo.width, 4)
    assert not cutout[:, : photo.width // 3].any(), "transparent source pixels must stay transparent (and RGB 0)"


def _stored_with_orientation(photo: Image.Image, orientation: int, image_format: str = "JPEG") -> bytes:
    """An image whose pixels are stored the way a camera with this orientation stores them.

    pillow-heif takes the orientation from ``info`` (an ``exif`` argument loses it) and writes
    it as the container's rotate and mirror boxes, as iPhones do; the others write the EXIF tag.
    """
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = photo.transpose(STORED_AS[orientation])
    if image_format == "HEIF":
        stored.info["exif"] = exif.tobytes()
        return encode(stored, image_format, quality=95)
    return encode(stored, image_format, quality=95, exif=exif)


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP", "TIFF", "HEIF"])
@pytest.mark.parametrize("orientation", sorted(STORED_AS))
def test_exif_orientation_is_applied(photo, orientation, image_format):
    upright = decode(encode(photo, image_format, quality=95))

    image = decode(_stored_with_orientation(photo, orientation, image_format))

    assert image.size == photo.size
    difference = np.abs(np.asarray(image, dtype=np.int16) - np.asarray(upright, dtype=np.int16)).mean()
    assert difference < 2, f"orientation {orientation}: {difference:.1f} levels away from the upright photo"


@pytest.fixture(scope="module")
def upright_mask(segmenter, photo) -> np.ndarray:
    return pipeline_mask(encode(photo, "JPEG", quality=95), segmenter)


@pytest.mark.parametrize("orientation", sorted(STORED_AS))
def test_exif_orientation_mask_lines_up_with_the_upright_photo(segmenter, photo, upright_mask, orientation):
    upright = upright_mask

    mask = pipeline_mask(_stored_with_orientation(photo, orientation), segmenter)

    assert mask.shape == upright.shape
    assert_masks_close(mask, upright, 0.01)


@pytest.mark.parametrize("orientation", sorted(STORED_AS))
def test_exif_orientation_is_applied_once(photo, orientation):
    # The orientation tag is dropped once applied: re-saving with the decoded image's EXIF
    # and decoding again must not turn the photo a second time.
    once = decode(_stored_with_orientation(photo, orientation))

    twice = decode(encode(once, "JPEG", quality=95, exif=once.getexif()))

    assert twice.size == once.size
    assert np.abs(np.asarray(twice, dtype=np.int16) - np.asarray(once, dtype=np.int16)).mean() < 2


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP", "HEIF"])
def test_unreadable_exif_does_not_stop_the_decode(segmenter, photo, image_format):
    # Regression: EXIF that is no TIFF structure made the orientation's read raise, so a sound
    # image was refused as corrupt (422), and a JPEG whose JFIF names its dpi (Pillow then leaves
    # the EXIF unread while opening it) raised out of the pipeline's upright_size: a 500.
    data = encode(photo, image_format, exif=b"Exif\x00\x00not a TIFF header", dpi=(300, 300))

    result = remove_background(data, Options(mask=True), segmenter=segmenter, max_pixels=LIMIT)

    assert (result.width, result.height) == photo.size


def test_decompression_bomb_in_a_tiny_png_is_too_large():
    # 20000x20000 declared in the header, no pixel data: rejected from the header alone, by
    # Pillow's own check (at twice the limit) as it opens the file.
    data = raw_png(20000, 20000, bit_depth=8, colour_type=0, idat=zlib.compress(b""))
    assert len(data) < 100

    with pytest.raises(TooLarge, match="has more than 80,000,000 pixels; the limit is 40,000,000"):
        decode(data)


def _scans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each SOS segment of a JPEG: its header and its entropy-coded data."""
    scans, at = [], 2
    while data[at + 1] != 0xD9:  # EOI
        end = at + 2 + int.from_bytes(data[at + 2 : at + 4], "big")
        if data[at + 1] == 0xDA:  # entropy-coded data runs to the next marker that is no stuffing or restart
            while data[end + 1] == 0 or 0xD0 <= data[end + 1] <= 0xD7 or data[end] != 0xFF:
                end += 1
            scans.append((at, end))
        at = end
    return scans


def test_a_jpeg_of_thousands_of_scans_is_refused_before_decoding():
    # GIVEN a 6000x6000 progressive JPEG (36 MP, under the limit) whose last scan, a refinement
    # that adds nothing, is repeated 3,000 times: under 400 KB, and libjpeg works through every
    # scan over the whole image, 40 s of CPU where the JPEG alone takes a second
    data = encode(Image.new("RGB", (6000, 6000), (128, 128, 128)), "JPEG", progressive=True, quality=50)
    start, end = _scans(data)[-1]
    bomb = data[:end] + data[start:end] * 3000 + data[end:]
    assert len(bomb) < 400_000

    # WHEN it is opened THEN it is refused from its markers, before any decoding
    with pytest.raises(TooLarge, match="the JPEG has 3,010 scans; the limit is 100"):
        handler.decode.open_image(bomb, max_pixels=LIMIT)
    # AND an ordinary progressive JPEG (libjpeg's 10 scans) still decodes
    assert len(_scans(data)) == 10
    assert decode(data).size == (6000, 6000)


def test_big_one_bit_png_is_too_large():
    data = encode(Image.new("1", (7000, 7000)), "PNG")

    with pytest.raises(TooLarge, match="7000x7000 = 49,000,000 pixels; the limit is 40,000,000"):
        decode(data)


@pytest.mark.parametrize("size", [(1, 65_536), (65_536, 1), (40, 1_000_000)])
def test_an_image_longer_than_65535_pixels_a_side_is_too_large_before_decoding(size):
    # A few KB of PNG within the pixel limit: upsampling the mask to 40,000,000 rows alone took 2.1 GB.
    data = encode(Image.new("L", size), "PNG")

    with pytest.raises(TooLarge, match=f"{size[0]}x{size[1]}; a side may be at most 65,535 pixels"):
        handler.decode.open_image(data, max_pixels=40_000_000)


def test_an_image_65535_pixels_long_is_cut_out():
    assert decode(encode(Image.new("L", (2, 65_535), 200), "PNG")).size == (2, 65_535)


def test_a_gif_frame_far_past_its_screen_is_refused_before_pillow_fills_it(repo_root):
    # GIVEN the corpus's 280-byte GIF: a 16x16 screen whose first frame, 60000x60000, is disposed
    # to the background, so that opening it enlarges the canvas and fills the frame's area
    bomb = repo_root / "tests" / "corpus" / "bodies" / "bomb_gif_frame.bin"
    measure = (
        "import resource, sys\n"
        "from handler.errors import TooLarge\n"
        "from handler.decode import decode\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    decode(open(sys.argv[1], 'rb').read(), max_pixels=40_000_000)\n"
        "except TooLarge as error:\n"
        "    print(error.message)\n"
        # ru_maxrss counts KiB on Linux, bytes on macOS
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // (2**20 if sys.platform == 'darwin' else 2**10))\n"
    )
    # WHEN a fresh process decodes it
    run = subprocess.run([sys.executable, "-c", measure, str(bomb)], cwd=repo_root, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    message, grown_mb = run.stdout.splitlines()
    # THEN it is too large, and the process's peak memory hardly moved (3.4 GB when Pillow filled it)
    assert message == "the image has more than 80,000,000 pixels; the limit is 40,000,000"
    assert int(grown_mb) < 50


@pytest.mark.parametrize("max_pixels, accepted", [(224 * 160, True), (224 * 160 - 1, False)])
def test_max_pixels_is_the_limit(photo, max_pixels, accepted):
    data = encode(photo, "PNG")
    if accepted:
        assert decode(data, max_pixels=max_pixels).size == photo.size
    else:
        with pytest.raises(TooLarge, match=f"35,840 pixels; the limit is {max_pixels:,}"):
            decode(data, max_pixels=max_pixels)


def test_a_limit_above_pillows_default_is_the_one_applied():
    # Pillow's own check refuses more than twice its default of 89,478,485 pixels; it follows ours.
    side = 20000
    data = raw_png(side, side, bit_depth=8, colour_type=0, idat=zlib.compress(b""))

    with pytest.raises(TooLarge, match=f"{side * side:,} pixels; the limit is {side * side - 1:,}"):
        decode(data, max_pixels=side * side - 1)


def _zero_width(image_format: str) -> bytes:
    """A 3x3 image whose header says it is 0 pixels wide."""
    if image_format == "PNG":
        return raw_png(0, 3, bit_depth=8, colour_type=0, idat=zlib.compress(b""))
    data = bytearray(encode(Image.new("RGB", (3, 3), (9, 9, 9)), image_format))
    if image_format == "BMP":
        data[18:22] = struct.pack("<i", 0)
    else:  # JPEG: the width in the baseline frame header
        start = data.find(b"\xff\xc0")
        data[start + 7 : start + 9] = b"\0\0"
    return bytes(data)


@pytest.mark.parametrize("image_format", ["PNG", "BMP", "JPEG"])
def test_zero_width_image_is_undecodable(image_format):
    # Pillow refuses a side of 0 while it opens the header, so open_image never sees one.
    with pytest.raises(UndecodableImage, match=f"start like a {image_format} image, but its header is corrupt"):
        decode(_zero_width(image_format))


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP", "GIF", "TIFF", "HEIF"])
@pytest.mark.parametrize("kept", [0.5, 0.9])
def test_truncated_image_is_undecodable(photo, image_format, kept):
    data = encode(photo, image_format)

    with pytest.raises(UndecodableImage) as raised:
        decode(data[: int(len(data) * kept)])

    assert raised.value.status == 422


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, this is plain text and not an image\n",
        b"<!doctype html><html><head><title>x</title></head><body>not an image</body></html>",
        b'{"image": "aGVsbG8=", "format": "png"}',
        b"\x00" * 64,
    ],
    ids=["empty", "text", "html", "json", "zeros"],
)
def test_not_an_image_is_unsupported_media_type(data):
    with pytest.raises(UnsupportedMediaType) as raised:
        decode(data)

    assert raised.value.status == 415


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
def test_a_rotated_photo_with_exif_pillow_cannot_write_back_is_decoded_upright(image_format):
    # GIVEN a photo stored on its side (orientation 6) whose EXIF files a string under a tag
    # Pillow writes as a number: it reads, but Pillow's exif_transpose raised rewriting it (422)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Model] = "Model"
    raw = exif.tobytes()  # big-endian, as Pillow writes it
    raw = raw.replace(struct.pack(">HH", ExifTags.Base.Model, 2), struct.pack(">HH", ExifTags.Base.Thresholding, 2))
    assert dict(Image.open(io.BytesIO(encode(Image.new("RGB", (4, 2)), "PNG", exif=raw))).getexif())[263] == "Model"
    stored = Image.new("RGB", (40, 20), (200, 30, 30))
    stored.paste((30, 30, 200), (0, 0, 20, 20))  # blue on the left as stored: on top once upright
    # THEN it decodes upright: 90 degrees clockwise
    image = decode(encode(stored, image_format, exif=raw))
    assert image.size == (20, 40)
    assert image.getpixel((10, 5))[2] > 150 and image.getpixel((10, 35))[0] > 150


@pytest.mark.parametrize("brand", [b"hevm", b"hevs"])
def test_heif_sequence_brands_decode(brand):
    # HEIC under an image sequence's major brand: pillow-heif reads it, and it used to be
    # answered 415 because the brand was not recognised as HEIF.
    heic = encode(make_image("RGB"), "HEIF")
    assert heic[8:12] == b"heic"
    assert decode(heic[:8] + brand + heic[12:]).size == make_image("RGB").size


@pytest.mark.parametrize("image_format", ["AVIF", "PPM", "ICO", "TGA", "PCX"])
def test_images_in_other_formats_are_unsupported_media_type(image_format):
    # Pillow reads these, but only the documented formats are accepted.
    with pytest.raises(UnsupportedMediaType, match="JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC"):
        decode(encode(make_image("RGB"), image_format))


def test_not_an_image_is_unsupported_media_type_before_heif_is_ever_loaded(repo_root):
    # Regression: decode() named HEIF among Pillow's formats before pillow-heif was loaded, and
    # Pillow raised KeyError('HEIF') for anything no other format claimed: in a fresh process
    # (a cold Lambda) plain text got 422 "header is corrupt" instead of 415. This test process
    # has long loaded pillow-heif, so ask a fresh interpreter.
    script = (
        "import sys\nfrom handler.errors import UnsupportedMediaType\nfrom handler.decode import decode\n"
        "try:\n    decode(b'plain text, not an image', max_pixels=1000)\n"
        "except UnsupportedMediaType:\n    print('pillow_heif' in sys.modules)\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], cwd=repo_root, capture_output=True, text=True, timeout=60)

    assert completed.stdout.strip() == "False", completed.stderr


def test_pillows_warnings_about_a_clients_file_neither_reach_stderr_nor_pile_up(repo_root):
    # A JPEG whose EXIF names a tag with more bytes than the file holds: Pillow skips the tag
    # and warns with its number, which the client chooses. In a fresh interpreter (pytest
    # resets warning filters per test), as a warm Lambda runs the handler.
    script = """
import struct, sys
from PIL import Image, TiffImagePlugin
from handler.decode import decode
sys.path.insert(0, "tests")
from helpers import encode, example_photo
photo = encode(example_photo("astronaut", (64, 64)), "JPEG")
for tag in range(1000, 1050):
    ifd = struct.pack("<2sH I H HHII I", b"II", 42, 8, 1, tag, 7, 10_000, 26, 0)
    app1 = b"Exif\\0\\0" + ifd + b"x" * 8
    data = photo[:2] + b"\\xff\\xe1" + struct.pack(">H", len(app1) + 2) + app1 + photo[2:]
    assert decode(data, max_pixels=10_000).size == (64, 64)
print(len(getattr(TiffImagePlugin, "__warningregistry__", {})))
"""
    completed = subprocess.run([sys.executable, "-c", script], cwd=repo_root, capture_output=True, text=True, timeout=60)

    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    assert int(completed.stdout) < 5


@pytest.mark.parametrize("image_format", FORMATS)
def test_corrupt_bytes_only_ever_raise_typed_errors(photo, image_format):
    # Flip bytes all over a valid file: whatever happens, it is a ServiceError or an image.
    data = bytearray(encode(photo, image_format))
    rng = np.random.default_rng(len(data))
    for position in rng.integers(0, len(data), size=40):
        damaged = bytearray(data)
        damaged[position : position + 4] = rng.integers(0, 256, size=4, dtype=np.uint8).tobytes()
        try:
            image = decode(bytes(damaged))
        except ServiceError:
            continue
        assert image.mode in ("RGB", "RGBA")
