"""Untrusted image bytes to an upright 8-bit Pillow image: RGB, or RGBA where the source has transparency.

Nothing here knows about the model or about AWS.
"""

import io
import struct
import threading
import warnings

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from .errors import TooLarge, UndecodableImage, UnsupportedMediaType

SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "HEIF")
# A phone's JPEG with a second picture (an iPhone's HDR gain map) opens as MPO: its first
# picture is a JPEG like any other, with libjpeg's reduced decodes.
JPEG_FORMATS = ("JPEG", "MPO")
# The major brands of HEVC still images and image sequences, all of which pillow-heif decodes.
# AVIF is not HEIC, and stays unsupported.
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1")
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
# libjpeg works through every scan of a progressive JPEG over the whole image, however little
# the scan adds: 3,000 empty refinement scans (400 KB) cost a 36 MP decode 40 s of CPU. Encoders
# write about 10 (libjpeg's progression) and rarely more than a few dozen.
MAX_JPEG_SCANS = 100
# The longest side accepted, JPEG's and GIF's own limit: resampling to a side builds a table of
# weights per output row or column, and the mask of a 1x40,000,000 PNG (150 KB, within the pixel
# limit) took 2.1 GB to upsample alone.
MAX_SIDE = 65_535
_START_OF_SCAN = b"\xff\xda"  # never inside entropy-coded data, where a 0xFF byte is followed by 0x00 or a restart

# Pillow checks sizes against one global limit while it opens a file, before some formats
# allocate (a GIF whose first frame enlarges the canvas fills the frame's area; a WebP decoder
# allocates its canvas): it warns above the limit and refuses above twice it. open_image sets
# that limit to its own max_pixels, one call at a time as the limit is global. The warning is
# left unsaid: open_image's own check then refuses the image, naming both numbers.
_PILLOW_LIMIT = threading.Lock()
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
# Pillow warns of what it skips in a client's file (a broken EXIF tag: "Skipping tag 1297"),
# which the decode survives or refuses with its own error. Said, each distinct text went to
# stderr as two plain lines with the install path, and stayed in the warnings registry for the
# life of the process: a client choosing tag numbers grew both without bound.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")


def _formats_for(data: bytes) -> tuple[str, ...]:
    """The formats to try. pillow-heif is loaded only for HEIF/HEIC bytes, so most requests
    never pay its import; until it is loaded, naming HEIF would make Pillow raise KeyError."""
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        from pillow_heif import register_heif_opener

        register_heif_opener()
        return SUPPORTED_FORMATS
    return tuple(name for name in SUPPORTED_FORMATS if name != "HEIF")


def _signature_format(data: bytes, formats: tuple[str, ...]) -> str | None:
    """The supported format whose signature ``data`` starts with (Pillow's own check), if any.

    Pillow reports a header that its format's parser rejects as "cannot identify": it is an
    image that cannot be decoded (422), not a body that is no image at all (415).
    """
    for name in formats:
        accept = Image.OPEN.get(name, (None, None))[1]
        if accept is not None and accept(data[:16]) is True:
            return name
    return None


def _to_eight_bit(image: Image.Image) -> Image.Image:
    """Scale 16-bit and float greyscale to 8 bits (converting would clamp at 255)."""
    pixels = np.asarray(image, dtype=np.float32)
    if image.mode.startswith("I;16"):
        scale = 255.0 / 65535.0
    elif image.mode == "F":
        scale = 255.0 if pixels.max() <= 1.0 else 255.0 / 65535.0
    else:  # 32-bit "I" declares no range: judge it by its values
        scale = 255.0 / 65535.0 if pixels.max() > 255 else 1.0
    eight_bit = Image.fromarray(np.clip(np.rint(pixels * scale), 0, 255).astype(np.uint8))
    if "transparency" in image.info:  # a PNG tRNS grey value: scaling would merge it with its neighbours
        eight_bit.putalpha(Image.fromarray(np.where(pixels == image.info["transparency"], 0, 255).astype(np.uint8)))
    return eight_bit


def _has_transparency(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def _normalise_mode(image: Image.Image) -> Image.Image:
    """RGB, or RGBA where the source has transparency: the only modes past this point."""
    if image.mode in _SIXTEEN_BIT_MODES or image.mode == "F":
        image = _to_eight_bit(image)
    if image.mode == "La":  # a TIFF's premultiplied grey: Pillow converts it to LA only, not to RGBA
        image = image.convert("LA")
    if _has_transparency(image):
        image = image if image.mode == "RGBA" else image.convert("RGBA")
        # An alpha of 255 everywhere (many exports write one) hides nothing: as RGB, the same
        # pixels get the same cut-out as without it.
        if image.getchannel("A").getextrema()[0] < 255:
            return image
    return image if image.mode == "RGB" else image.convert("RGB")


def open_image(data: bytes, *, max_pixels: int) -> Image.Image:
    """Open lazily, checking cheap facts first: that there are bytes, that the header is a
    supported format, that its pixel count is within ``max_pixels``. Nothing is decoded yet."""
    if not data:
        raise UnsupportedMediaType("the image is empty (0 bytes): it must be a JPEG, PNG, WebP, GIF, BMP, TIFF or HEIC image")
    formats = _formats_for(data)
    try:
        with _PILLOW_LIMIT:
            Image.MAX_IMAGE_PIXELS = max_pixels
            image = Image.open(io.BytesIO(data), formats=formats)
    except Image.DecompressionBombError:
        raise TooLarge(f"the image has more than {2 * max_pixels:,} pixels; the limit is {max_pixels:,}") from None
    except UnidentifiedImageError:
        if signature := _signature_format(data, formats):  # e.g. a PNG whose IHDR fails its CRC
            raise UndecodableImage(f"the bytes start like a {signature} image, but its header is corrupt") from None
        raise UnsupportedMediaType(
            "the bytes are not an image in a supported format (JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC)"
        ) from None
    except Exception:  # a header that identifies a format and then breaks its parser
        raise UndecodableImage("the image header is corrupt") from None
    if image.format in JPEG_FORMATS and (scans := data.count(_START_OF_SCAN)) > MAX_JPEG_SCANS:
        # An upper bound (a thumbnail or a profile in an APP segment may hold the marker's bytes), counted before decoding
        raise TooLarge(f"the JPEG has {scans:,} scans; the limit is {MAX_JPEG_SCANS}")
    grey_bits = data[24] if image.format == "PNG" and image.mode == "L" and data[12:16] == b"IHDR" else 8
    if grey_bits in (2, 4) and "transparency" in image.info:
        # Pillow decodes 2- and 4-bit grey scaled up to 0-255 but keeps the tRNS grey value as stored
        # (0-3, 0-15), where it matches no pixel: the pixels PNG makes transparent stayed opaque.
        # Scaled from its low bits, as libpng does: Pillow's own writer stores it scaled already.
        levels = 2**grey_bits - 1
        image.info["transparency"] = (image.info["transparency"] & levels) * (255 // levels)
    width, height = image.size
    if width * height > max_pixels:
        raise TooLarge(f"the image is {width}x{height} = {width * height:,} pixels; the limit is {max_pixels:,}")
    if max(width, height) > MAX_SIDE:
        raise TooLarge(f"the image is {width}x{height}; a side may be at most {MAX_SIDE:,} pixels")
    return image


# EXIF orientation -> the transpose that shows the picture upright (1, upright, needs none).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

_EXIF_KEYS = ("exif", "Raw profile type exif", "XML:com.adobe.xmp", "xmp")  # where Pillow finds an orientation


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation of an opened image. EXIF that Pillow cannot read to its end stops no
    decode: Pillow keeps what it read before the error, as it does for a JPEG's while opening it
    (when no JFIF density names the dpi), so every later read agrees."""
    try:
        exif = image.getexif()
    except (SyntaxError, struct.error):  # what Pillow's JPEG plugin takes for unreadable EXIF
        exif = image.getexif()
    return exif.get(ExifTags.Base.Orientation, 1)


def _load(image: Image.Image) -> Image.Image:
    """Decode an opened image (first frame of animations), upright, in RGB or RGBA."""
    try:
        image.load()
        # Turned by hand, not by ImageOps.exif_transpose: that rewrites the EXIF without its
        # orientation, which raises on a tag Pillow reads but cannot write back (a string filed
        # under a number's tag). The turned picture drops its EXIF instead, so that nothing turns
        # it twice; the cut-out carries none anyway.
        turn = _UPRIGHT.get(_orientation(image))
        if turn is not None:
            image = image.transpose(turn)
            for key in _EXIF_KEYS:
                image.info.pop(key, None)
        return _normalise_mode(image)
    except Exception:  # Pillow's decoders raise OSError, SyntaxError, ValueError, EOFError...
        raise UndecodableImage(f"the {image.format} image is truncated or corrupt and cannot be decoded") from None


def rgb_profile(image: Image.Image) -> bytes | None:
    """The image's ICC profile when it describes RGB pixels (Display P3 from iPhones, Adobe RGB
    from cameras): outputs carry it on, so viewers show the colours the photo had. A CMYK or
    grey source's profile no longer fits its pixels once they are RGB, and is left out."""
    profile = image.info.get("icc_profile")
    return profile if profile and profile[16:20] == b"RGB " else None


def decode(data: bytes, *, max_pixels: int) -> Image.Image:
    """Decode image bytes into an upright RGB or RGBA image (first frame of animations)."""
    return _load(open_image(data, max_pixels=max_pixels))


def upright_size(image: Image.Image) -> tuple[int, int]:
    """(width, height) of an opened image once decoded upright: EXIF orientations 5-8 swap the sides."""
    return (image.height, image.width) if _orientation(image) in (5, 6, 7, 8) else image.size


def decode_preview(image: Image.Image, *, min_side: int) -> Image.Image | None:
    """An opened JPEG decoded at a reduced DCT scale whose sides stay at least ``min_side``
    long, or None when the format or the size allows no reduction.

    libjpeg scales by 1/2, 1/4 or 1/8 while decoding, which costs a fraction of a full
    decode and antialiases as well as a box filter: a cheap, clean source for the model's
    320x320 input.
    """
    if image.format not in JPEG_FORMATS or min(image.size) < 2 * min_side:
        return None
    scale = min_side / min(image.size)
    image.draft(image.mode if image.mode == "CMYK" else "RGB", (round(image.width * scale), round(image.height * scale)))
    return _load(image)
