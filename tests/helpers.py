"""Shared image helpers: make test images in any mode, encode them, compare masks."""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example_photo(name: str = "astronaut", size: tuple[int, int] | None = None) -> Image.Image:
    """One of the public-domain photos in examples/, as RGB, optionally resized."""
    image = Image.open(EXAMPLES / f"{name}.jpg").convert("RGB")
    return image.resize(size, Image.Resampling.LANCZOS) if size else image


def make_image(mode: str, size: tuple[int, int] = (96, 64)) -> Image.Image:
    """A small image in ``mode``: a bright disc (the subject) on a darker gradient.

    Modes with alpha get a transparent left quarter; P is quantised from RGB; I;16 is
    greyscale scaled to the full 16-bit range.
    """
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    disc = (x - width / 2) ** 2 + (y - height / 2) ** 2 < (min(width, height) / 3) ** 2
    rgb = np.stack([x * 200 // width, y * 200 // height, np.full_like(x, 60)], axis=-1).astype(np.uint8)
    rgb[disc] = (250, 220, 40)
    alpha = np.where(x < width // 4, 0, 255).astype(np.uint8)
    rgba = Image.fromarray(np.dstack([rgb, alpha]))
    if mode == "I;16":
        grey = np.asarray(rgba.convert("L"), dtype=np.uint16) * 257
        return Image.fromarray(grey)
    if mode == "P":
        return rgba.convert("RGB").quantize(64)
    if mode in ("RGBA", "LA"):
        return rgba.convert(mode)
    return rgba.convert("RGB").convert(mode)


def encode(image: Image.Image, image_format: str, **kwargs) -> bytes:
    """The image saved by Pillow in ``image_format`` (HEIF needs pillow-heif's opener)."""
    if image_format.upper() in ("HEIF", "HEIC"):
        from pillow_heif import register_heif_opener

        register_heif_opener()
        image_format = "HEIF"
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **kwargs)
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(width: int, height: int, *, bit_depth: int, colour_type: int, idat: bytes, transparent: int | None = None) -> bytes:
    """A PNG written chunk by chunk: for what Pillow cannot save (16-bit RGB, lying headers).

    :param transparent: a grey value to mark transparent with a tRNS chunk (greyscale only).
    """
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    trns = b"" if transparent is None else _chunk(b"tRNS", struct.pack(">H", transparent))  # goes before the image data
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + trns + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def png16(pixels: np.ndarray, *, transparent: int | None = None) -> bytes:
    """A 16-bit greyscale (HxW) or RGB (HxWx3) PNG of a uint16 array.

    :param transparent: a grey value to mark transparent with a tRNS chunk (greyscale only).
    """
    height, width = pixels.shape[:2]
    rows = pixels.astype(">u2").reshape(height, -1).view(np.uint8)
    filtered = np.hstack([np.zeros((height, 1), np.uint8), rows])  # filter type 0 on every row
    colour_type = 2 if pixels.ndim == 3 else 0
    idat = zlib.compress(filtered.tobytes())
    return raw_png(width, height, bit_depth=16, colour_type=colour_type, idat=idat, transparent=transparent)


def open_result(data: bytes) -> Image.Image:
    """Decode an output image and check it was fully readable."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def cli_output(photo: bytes, arguments: list[str], folder: Path) -> bytes:
    """What `python -m handler` writes for the photo's bytes with these arguments."""
    from handler.cli import main

    source, output = folder / "photo.jpg", folder / "cutout.out"
    source.write_bytes(photo)
    assert main([str(source), "-o", str(output), *arguments]) == 0
    return output.read_bytes()


def pipeline_mask(data: bytes, segmenter, max_pixels: int = 40_000_000) -> np.ndarray:
    """The mask the real pipeline returns for encoded image bytes (``Options(mask=True)``)."""
    from handler.options import Options
    from handler.pipeline import remove_background

    result = remove_background(data, Options(mask=True), segmenter=segmenter, max_pixels=max_pixels)
    return np.asarray(open_result(result.data))


def mask_mae(a, b) -> float:
    """Mean absolute difference of two masks (arrays or images) in 0..1 units."""
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    assert a.shape == b.shape, f"mask shapes differ: {a.shape} vs {b.shape}"
    return float(np.abs(a - b).mean() / 255.0)


def assert_masks_close(a, b, max_mae: float) -> None:
    """Masks of the same shape whose mean absolute difference is at most ``max_mae`` (0..1)."""
    difference = mask_mae(a, b)
    assert difference <= max_mae, f"mask MAE {difference:.4f} exceeds {max_mae}"


# Identifying text a phone photo carries, each in one kind of metadata: no output may hold any of it.
PHONE_MARKS = {
    "EXIF camera": b"PrivCam Model 7",
    "EXIF serial number": b"SN-0123456789",
    "EXIF MakerNote": b"MAKERNOTE-FACE-IDS",
    "EXIF capture time": b"2024:05:06 07:08:09",
    "XMP": b"XMP-OWNER-JANE-DOE",
    "IPTC": b"IPTC-BYLINE-JANE-DOE",
    "PNG text": b"PNG-TEXT-HOME-ADDRESS",
}
_XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:exif="http://ns.adobe.com/exif/1.0/"'
    b' dc:creator="XMP-OWNER-JANE-DOE" exif:GPSLatitude="51,30.2083N" exif:GPSLongitude="0,7.665W"/>'
    b"</rdf:RDF></x:xmpmeta>"
)


def _exif_with_thumbnail(thumbnail: bytes) -> bytes:
    """An APP1 EXIF block as a phone writes it: camera, serial number, capture time, a MakerNote,
    GPS coordinates, and in IFD1 a JPEG thumbnail (Pillow writes no IFD1: it is appended here)."""
    from PIL import ExifTags

    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PrivCam"
    exif[ExifTags.Base.Model] = PHONE_MARKS["EXIF camera"].decode()
    details = exif.get_ifd(ExifTags.IFD.Exif)
    details[ExifTags.Base.BodySerialNumber] = PHONE_MARKS["EXIF serial number"].decode()
    details[ExifTags.Base.DateTimeOriginal] = PHONE_MARKS["EXIF capture time"].decode()
    details[ExifTags.Base.MakerNote] = PHONE_MARKS["EXIF MakerNote"]
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps.update({1: "N", 2: (51.0, 30.0, 12.5), 3: "W", 4: (0.0, 7.0, 39.9)})
    tiff = bytearray(exif.tobytes()[6:])  # without "Exif\0\0": offsets count from the TIFF header
    assert tiff[:2] == b"MM"  # big-endian, as iPhones write it
    entries = struct.unpack_from(">H", tiff, 8)[0]
    ifd1 = len(tiff) + len(tiff) % 2
    struct.pack_into(">I", tiff, 10 + 12 * entries, ifd1)  # IFD0's link to the next IFD
    tiff += bytes(ifd1 - len(tiff))
    start = ifd1 + 2 + 2 * 12 + 4
    tiff += struct.pack(">H", 2) + struct.pack(">HHII", 0x0201, 4, 1, start) + struct.pack(">HHII", 0x0202, 4, 1, len(thumbnail))
    tiff += struct.pack(">I", 0) + thumbnail
    return b"Exif\x00\x00" + bytes(tiff)


def _iptc_segment() -> bytes:
    """A JPEG APP13 segment (Photoshop 3.0, 8BIM 0x0404) holding an IPTC by-line (2:80)."""
    record = b"\x1c\x02\x50" + struct.pack(">H", len(PHONE_MARKS["IPTC"])) + PHONE_MARKS["IPTC"]
    resource = b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(record)) + record
    payload = b"Photoshop 3.0\x00" + resource
    return b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload


def phone_photo(image_format: str, *, size: tuple[int, int] = (240, 160), icc_profile: bytes | None = None) -> bytes:
    """A photo (examples/astronaut.jpg) in ``image_format`` carrying what a phone's does and no
    cut-out should: EXIF with GPS, serial number, capture time, MakerNote and (JPEG) a thumbnail
    of the whole uncut photo; XMP; IPTC (JPEG); text chunks (PNG); and ``icc_profile``."""
    photo = example_photo("astronaut", size)
    thumbnail = encode(photo.resize((80, 54)), "JPEG", quality=80)
    exif = _exif_with_thumbnail(thumbnail)
    tagged = {"icc_profile": icc_profile} if icc_profile else {}
    if image_format == "JPEG":
        data = encode(photo, "JPEG", exif=exif, xmp=_XMP, quality=90, **tagged)
        return data[:2] + _iptc_segment() + data[2:]
    if image_format == "PNG":
        from PIL import PngImagePlugin

        text = PngImagePlugin.PngInfo()
        text.add_text("Comment", PHONE_MARKS["PNG text"].decode())
        text.add_text("Description", PHONE_MARKS["PNG text"].decode(), zip=True)
        text.add_itxt("XML:com.adobe.xmp", _XMP.decode())
        return encode(photo, "PNG", pnginfo=text, exif=exif, **tagged)
    return encode(photo, image_format, exif=exif, xmp=_XMP, **tagged)
