"""Write the hostile-input corpus to tests/corpus/: request bodies plus cases.json describing each request.

    python scripts/make_corpus.py                 # regenerate tests/corpus/ (deterministic)
    python scripts/make_corpus.py --out /tmp/c    # somewhere else, e.g. to compare

Every case is one POST /remove: a body, its Content-Type, a query string, and where it applies
the same input for the CLI. The expected answers live in tests/corpus/test_corpus.py, not here:
this script only says what is sent. Bodies of several megabytes (the 9.9 MB body, oversized
JSON) are never written: ``large_bodies()`` builds them at test time. The bombs are small files
whose headers declare huge dimensions, so they are committed.
"""

import argparse
import base64
import io
import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS = REPO_ROOT / "tests" / "corpus"
MANIFEST = "cases.json"
BODIES = "bodies"
BOMB_SIDE = 60_000  # 3.6 gigapixels declared; fits every format's header (WebP's is checked separately)
WEBP_BOMB_SIDE = 16_383  # VP8 headers hold 14 bits: 268 megapixels
# Just under API Gateway's 10 MB request limit (10 MiB in this service's settings).
NEAR_LIMIT_BYTES = 9_900_000
OVER_LIMIT_BYTES = 10 * 1024 * 1024 + 1
INPUT_BUCKET = "bgremove-input"  # the bucket tests/localaws.py creates and the corpus test allows
SECRET_BUCKET = "private-bucket"  # exists in the corpus test, holds a photo, is not allowed


def _save(image: Image.Image, image_format: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **kwargs)
    return buffer.getvalue()


def photo(size: tuple[int, int] = (48, 48)) -> Image.Image:
    """The public-domain astronaut from examples/, small."""
    return Image.open(REPO_ROOT / "examples" / "astronaut.jpg").convert("RGB").resize(size, Image.Resampling.LANCZOS)


def _png_chunk(kind: bytes, data: bytes, *, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _replace_ihdr(png: bytes, *, width: int | None = None, height: int | None = None, bad_crc: bool = False) -> bytes:
    """The PNG with its IHDR's size changed, or its CRC broken (IHDR is always the first chunk, at byte 8)."""
    ihdr = bytearray(png[16:29])
    if width is not None:
        ihdr[0:8] = struct.pack(">II", width, height)
    crc = (zlib.crc32(b"IHDR" + ihdr) ^ 0xFFFFFFFF) if bad_crc else None
    return png[:8] + _png_chunk(b"IHDR", bytes(ihdr), crc=crc) + png[33:]


def _insert_png_chunk(png: bytes, kind: bytes, data: bytes) -> bytes:
    """The PNG with one more chunk right after IHDR."""
    return png[:33] + _png_chunk(kind, data) + png[33:]


def _jpeg_bomb() -> bytes:
    data = bytearray(_save(photo((16, 16)), "JPEG", quality=50))
    sof = data.index(b"\xff\xc0")  # baseline frame header: length(2) precision(1) height(2) width(2)
    data[sof + 5 : sof + 9] = struct.pack(">HH", BOMB_SIDE, BOMB_SIDE)
    return bytes(data)


def _webp_bomb() -> bytes:
    data = bytearray(_save(photo((16, 16)), "WEBP", quality=50))
    assert data[12:16] == b"VP8 ", "a lossy WebP without extras is a simple VP8 file"
    # After the 12-byte RIFF header, the 8-byte chunk header, the 3-byte frame tag and the start code.
    data[26:30] = struct.pack("<HH", WEBP_BOMB_SIDE, WEBP_BOMB_SIDE)
    return bytes(data)


def _gif_bomb() -> bytes:
    data = bytearray(_save(photo((16, 16)).quantize(16), "GIF"))
    data[6:10] = struct.pack("<HH", BOMB_SIDE, BOMB_SIDE)  # logical screen
    descriptor = data.index(b"\x2c")  # image descriptor: left, top, width, height
    data[descriptor + 5 : descriptor + 9] = struct.pack("<HH", BOMB_SIDE, BOMB_SIDE)
    return bytes(data)


def _gif_frame_bomb() -> bytes:
    """A 16x16 GIF whose first frame reaches BOMB_SIDE pixels past its screen and is disposed to
    the background: Pillow enlarges the canvas and fills the frame's area while it opens the file."""
    data = bytearray(_save(photo((16, 16)).quantize(16), "GIF", disposal=2))
    descriptor = data.index(b"\x21\xf9\x04") + 8  # the image descriptor follows the graphic control extension
    assert data[descriptor] == 0x2C and data[descriptor - 5] >> 2 & 7 == 2, "one frame, disposed to the background"
    data[descriptor + 5 : descriptor + 9] = struct.pack("<HH", BOMB_SIDE, BOMB_SIDE)
    return bytes(data)


def _bmp_bomb() -> bytes:
    data = bytearray(_save(photo((16, 16)), "BMP"))
    data[18:26] = struct.pack("<ii", BOMB_SIDE, BOMB_SIDE)
    return bytes(data)


def _tiff_bomb() -> bytes:
    data = bytearray(_save(photo((16, 16)), "TIFF"))
    assert data[:2] == b"II", "Pillow writes little-endian TIFF"
    ifd = struct.unpack_from("<I", data, 4)[0]
    for entry in range(struct.unpack_from("<H", data, ifd)[0]):
        offset = ifd + 2 + 12 * entry
        tag, kind = struct.unpack_from("<HH", data, offset)
        if tag in (256, 257):  # ImageWidth, ImageLength
            struct.pack_into("<H" if kind == 3 else "<I", data, offset + 8, BOMB_SIDE)
    return bytes(data)


def _heic(image: Image.Image) -> bytes:
    from pillow_heif import register_heif_opener

    register_heif_opener()
    return _save(image, "HEIF", quality=50)


def _heic_bomb() -> bytes:
    data = bytearray(_heic(photo((64, 64))))
    ispe = data.index(b"ispe")  # image spatial extents: version/flags(4) width(4) height(4)
    data[ispe + 8 : ispe + 16] = struct.pack(">II", BOMB_SIDE, BOMB_SIDE)
    return bytes(data)


def _animated(image_format: str) -> bytes:
    frames = [photo((40, 32)), ImageOps.mirror(photo((40, 32))), ImageOps.flip(photo((40, 32)))]
    if image_format == "GIF":
        frames = [frame.quantize(64) for frame in frames]
    return _save(frames[0], image_format, save_all=True, append_images=frames[1:], duration=100, loop=0)


def _palette_with_transparency() -> bytes:
    image = photo((40, 40)).quantize(32)
    image.paste(0, (0, 0, 10, 40))  # the left quarter is palette index 0, which is transparent
    return _save(image, "PNG", transparency=0)


def _sixteen_bit_png() -> bytes:
    """16 bits per channel RGB, which Pillow cannot write: the 8-bit photo scaled to 0-65535, chunk by chunk."""
    pixels = np.asarray(photo((40, 30)), dtype=">u2") * 257
    rows = b"".join(b"\x00" + row.tobytes() for row in pixels)  # filter type 0 before each row
    ihdr = struct.pack(">IIBBBBB", 40, 30, 16, 2, 0, 0, 0)  # 16 bits per channel, RGB
    return (
        b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(rows, 9)) + _png_chunk(b"IEND", b"")
    )


def _strip() -> bytes:
    """1x40000: a vertical gradient, one pixel wide."""
    column = Image.linear_gradient("L").resize((1, 40_000))
    return _save(Image.merge("RGB", (column, ImageOps.invert(column), column)), "PNG")


def _giant_exif_jpeg() -> bytes:
    """A JPEG whose APP1 EXIF segment is nearly the 64 KiB maximum, with orientation 6 (rotate 90°)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010E] = "x" * 65_000  # ImageDescription
    return _save(photo((48, 32)), "JPEG", quality=85, exif=exif.tobytes())


def _giant_icc_png() -> bytes:
    """A PNG whose iCCP profile is 900 KB once inflated (under Pillow's 1 MiB cap, ~1 KB compressed)."""
    return _save(photo((40, 40)), "PNG", icc_profile=bytes(900_000))


def _icc_bomb_png() -> bytes:
    """A PNG whose iCCP profile inflates to 64 MB from ~64 KB: Pillow refuses past 1 MiB."""
    profile = b"bomb\x00\x00" + zlib.compress(bytes(64_000_000), 9)
    return _insert_png_chunk(_save(photo((40, 40)), "PNG"), b"iCCP", profile)


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def padded_png(size: int) -> bytes:
    """A small valid PNG made ``size`` bytes long by a private ancillary chunk that decoders skip."""
    png = _save(photo(), "PNG")
    padding = size - len(png) - 12
    return _insert_png_chunk(png, b"prVt", bytes(padding))


def _image_cases() -> dict[str, tuple[str, bytes]]:
    """name -> (Content-Type, body) for bodies that are files: raw, as JSON base64 and to the CLI alike."""
    jpeg = _save(photo(), "JPEG", quality=85)
    png = _save(photo(), "PNG")
    return {
        "empty": ("application/octet-stream", b""),
        "text": ("text/plain", b"hello, this is plain text and not an image\n"),
        "html": ("text/html", b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>\n"),
        "json_as_image": ("image/png", json.dumps({"image": base64.b64encode(jpeg).decode()}).encode()),
        "png_magic_only": ("image/png", b"\x89PNG\r\n\x1a\n"),
        "gif_magic_only": ("image/gif", b"GIF89a and then nothing that a GIF needs"),
        "truncated_jpeg": ("image/jpeg", _truncated(jpeg)),
        "truncated_png": ("image/png", _truncated(png)),
        "truncated_webp": ("image/webp", _truncated(_save(photo(), "WEBP", quality=80))),
        "truncated_heic": ("image/heic", _truncated(_heic(photo((64, 64))))),
        "png_bad_crc": ("image/png", _replace_ihdr(png, bad_crc=True)),
        "png_icc_bomb": ("image/png", _icc_bomb_png()),
        "bomb_png": ("image/png", _replace_ihdr(png, width=BOMB_SIDE, height=BOMB_SIDE)),
        "bomb_jpeg": ("image/jpeg", _jpeg_bomb()),
        "bomb_webp": ("image/webp", _webp_bomb()),
        "bomb_gif": ("image/gif", _gif_bomb()),
        "bomb_gif_frame": ("image/gif", _gif_frame_bomb()),
        "bomb_bmp": ("image/bmp", _bmp_bomb()),
        "bomb_tiff": ("image/tiff", _tiff_bomb()),
        "bomb_heic": ("image/heic", _heic_bomb()),
        "photo_jpeg": ("image/jpeg", jpeg),
        "one_pixel": ("image/png", _save(Image.new("RGB", (1, 1), (200, 30, 30)), "PNG")),
        "strip_1x40000": ("image/png", _strip()),
        "png_16_bit": ("image/png", _sixteen_bit_png()),
        "cmyk_jpeg": ("image/jpeg", _save(photo().convert("CMYK"), "JPEG", quality=85)),
        "palette_transparency": ("image/png", _palette_with_transparency()),
        "animated_gif": ("image/gif", _animated("GIF")),
        "animated_webp": ("image/webp", _animated("WEBP")),
        "giant_exif_jpeg": ("image/jpeg", _giant_exif_jpeg()),
        "giant_icc_png": ("image/png", _giant_icc_png()),
        "octet_stream_photo": ("application/octet-stream", jpeg),
    }


def _base64_cases(jpeg: bytes) -> dict[str, str]:
    """name -> the JSON body's "image" string, for the ways clients mangle base64."""
    text = base64.b64encode(jpeg).decode()
    assert "+" in text or "/" in text, "the URL-safe case needs a photo whose base64 uses + or /"
    wrapped = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))  # as `base64` and MIME write it
    unpadded = base64.b64encode(jpeg + b"\0" * (len(jpeg) % 3 == 0)).decode()  # a byte after the JPEG's end is ignored
    return {
        "base64_whitespace": wrapped + "\n",
        "base64_spaces_and_tabs": " \t".join(text[i : i + 100] for i in range(0, len(text), 100)),
        "base64_urlsafe": base64.urlsafe_b64encode(jpeg).decode(),
        "base64_data_url": "data:image/jpeg;base64," + text,
        "base64_missing_padding": unpadded.rstrip("="),
        "base64_padding_in_the_middle": text[:8] + "==" + text[8:],
        "base64_impossible_length": base64.b64encode(jpeg[:300]).decode() + "A",  # 401 characters: 4n+1 never decodes
        "base64_not_base64": "this is *not* base64!",
        "base64_non_ascii": "aGVsbG8" + "\u00e9" * 4,
        "base64_empty": "",
    }


def _json_cases(jpeg: bytes) -> dict[str, bytes]:
    """name -> a JSON body (sent as application/json), byte for byte."""
    image = base64.b64encode(jpeg).decode()

    def document(**options) -> bytes:
        return json.dumps({"image": image, **options}).encode()

    def spliced(tail: str) -> bytes:  # text that json.dumps cannot write: duplicate keys, NaN, deep nesting
        return ('{"image": "' + image + '", ' + tail + "}").encode()

    return {
        "json_truncated": document()[:-10],
        "json_not_utf8": b'{"image": "\xff\xfe"}',
        "json_utf16": json.dumps({"image": image}).encode("utf-16"),
        "json_array": json.dumps([image]).encode(),
        "json_string": json.dumps(image).encode(),
        "json_null": b"null",
        "json_no_source": json.dumps({"format": "png"}).encode(),
        "json_two_sources": document(s3={"bucket": INPUT_BUCKET, "key": "uploads/photo.jpg"}),
        "json_image_not_a_string": json.dumps({"image": [1, 2, 3]}).encode(),
        "json_deeply_nested": spliced('"format": ' + "[" * 20_000 + "]" * 20_000),
        "json_nested_option": document(format=json.loads("[" * 50 + "]" * 50)),
        "json_huge_option_value": document(background="#" + "f" * 100_000),
        "json_nan_max_size": spliced('"max_size": NaN'),
        "json_float_max_size": document(max_size=64.5),
        "json_bool_max_size": document(max_size=True),
        "json_unknown_option": document(colour="red"),
        "json_duplicate_option": spliced('"format": "png", "format": "webp"'),
        "json_duplicate_image": spliced('"image": "' + image + '"'),
        "json_options_ok": document(format="webp", max_size=32, crop=True, hard="yes"),
        "json_null_option": document(format=None),
    }


def _option_cases() -> dict[str, tuple[list[tuple[str, str]], list[str] | None]]:
    """name -> (query string pairs for a raw photo body, the same on the CLI or None where it has no spelling)."""
    return {
        "option_background_ggg": ([("background", "#GGG")], ["--background", "#GGG"]),
        "option_background_gggggg": ([("background", "#GGGGGG")], ["--background", "#GGGGGG"]),
        "option_background_short_hex": ([("background", "#fff")], ["--background", "#fff"]),
        "option_background_name": ([("background", "red")], ["--background", "red"]),
        "option_background_ok": (
            [("background", "#00ff00"), ("format", "jpeg")],
            ["--background", "#00ff00", "--format", "jpeg"],
        ),
        "option_max_size_zero": ([("max_size", "0")], ["--max-size", "0"]),
        "option_max_size_negative": ([("max_size", "-1")], ["--max-size", "-1"]),
        "option_max_size_billion": ([("max_size", "1000000000")], ["--max-size", "1000000000"]),
        "option_max_size_limit": ([("max_size", "100000")], ["--max-size", "100000"]),
        "option_max_size_exponent": ([("max_size", "1e3")], ["--max-size", "1e3"]),
        "option_max_size_underscore": ([("max_size", "1_000")], ["--max-size", "1_000"]),
        "option_max_size_unicode_digits": ([("max_size", "\uff16\uff14")], None),  # fullwidth "64"
        "option_max_size_empty": ([("max_size", "")], ["--max-size", ""]),
        "option_max_size_ok": ([("max_size", "20")], ["--max-size", "20"]),
        "option_unknown": ([("colour", "red")], ["--colour", "red"]),
        "option_duplicate": ([("format", "png"), ("format", "webp")], None),
        "option_format_gif": ([("format", "gif")], ["--format", "gif"]),
        "option_format_jpeg_with_alpha": ([("format", "jpeg")], ["--format", "jpeg"]),
        "option_mask_maybe": ([("mask", "maybe")], None),
        "option_mask_and_background": ([("mask", "true"), ("background", "#ffffff")], ["--mask", "--background", "#ffffff"]),
        "option_store": ([("store", "true")], None),
    }


def _s3_cases() -> dict[str, tuple[dict, list[tuple[str, str]]]]:
    """name -> (the JSON body, objects [bucket, key] that hold the photo beforehand)."""

    def ref(key, bucket=INPUT_BUCKET, **options) -> dict:
        return {"s3": {"bucket": bucket, "key": key}, **options}

    return {
        "s3_ok": (ref("uploads/photo.jpg"), [(INPUT_BUCKET, "uploads/photo.jpg")]),
        "s3_unicode_key": (ref("uploads/фото 写真 ☃.jpg"), [(INPUT_BUCKET, "uploads/фото 写真 ☃.jpg")]),
        "s3_plus_key": (ref("uploads/a+b c.jpg"), [(INPUT_BUCKET, "uploads/a+b c.jpg")]),
        # '+' is a literal plus in the API (only S3 event notifications use it for a space).
        "s3_plus_is_not_a_space": (ref("uploads/a+b+c.jpg"), [(INPUT_BUCKET, "uploads/a b c.jpg")]),
        "s3_missing_object": (ref("uploads/nothing-here.jpg"), []),
        # The secret bucket holds x.jpg; keys are literal inside the allowed bucket, where nothing is.
        "s3_dotdot_key": (ref(f"../{SECRET_BUCKET}/x.jpg"), [(SECRET_BUCKET, "x.jpg")]),
        "s3_encoded_dotdot_key": (ref(f"%2e%2e/{SECRET_BUCKET}/x.jpg"), [(SECRET_BUCKET, "x.jpg")]),
        "s3_dotdot_literal_object": (ref("uploads/../../x.jpg"), [(INPUT_BUCKET, "uploads/../../x.jpg")]),
        "s3_dotdot_store": (ref("uploads/../../x.jpg", store=True), [(INPUT_BUCKET, "uploads/../../x.jpg")]),
        "s3_bucket_not_allowed": (ref("x.jpg", bucket=SECRET_BUCKET), [(SECRET_BUCKET, "x.jpg")]),
        "s3_bucket_prefix_of_allowed": (ref("x.jpg", bucket=INPUT_BUCKET[:-1]), []),
        "s3_bucket_arn": (ref("uploads/photo.jpg", bucket=f"arn:aws:s3:::{INPUT_BUCKET}"), [(INPUT_BUCKET, "uploads/photo.jpg")]),
        "s3_bucket_with_path": (ref("x.jpg", bucket=f"{INPUT_BUCKET}/../{SECRET_BUCKET}"), [(SECRET_BUCKET, "x.jpg")]),
        "s3_not_an_object": ({"s3": f"s3://{INPUT_BUCKET}/uploads/photo.jpg"}, []),
        "s3_missing_key": ({"s3": {"bucket": INPUT_BUCKET}}, []),
        "s3_empty_key": (ref(""), []),
        "s3_extra_field": ({"s3": {"bucket": INPUT_BUCKET, "key": "uploads/photo.jpg", "version": "1"}}, []),
        "s3_key_not_a_string": (ref(7), []),
    }


def build() -> tuple[list[dict], dict[str, bytes]]:
    """(the manifest's cases, file name -> bytes of every committed body)."""
    jpeg = _save(photo(), "JPEG", quality=85)
    cases, files = [], {"photo.jpg": jpeg}
    for name, (content_type, body) in _image_cases().items():
        files[f"{name}.bin"] = body
        cases.append({"name": name, "kind": "image", "body": f"{name}.bin", "content_type": content_type})
    for name, text in _base64_cases(jpeg).items():
        files[f"{name}.json"] = json.dumps({"image": text}).encode()
        cases.append({"name": name, "kind": "json", "body": f"{name}.json", "content_type": "application/json"})
    for name, body in _json_cases(jpeg).items():
        files[f"{name}.json"] = body
        cases.append({"name": name, "kind": "json", "body": f"{name}.json", "content_type": "application/json"})
    for name, (query, cli) in _option_cases().items():
        cases.append(
            {"name": name, "kind": "options", "body": "photo.jpg", "content_type": "image/jpeg", "query": query, "cli": cli}
        )
    for name, (document, objects) in _s3_cases().items():
        files[f"{name}.json"] = json.dumps(document, ensure_ascii=False).encode()
        cases.append({"name": name, "kind": "s3", "body": f"{name}.json", "content_type": "application/json", "objects": objects})
    for name in large_bodies():
        cases.append({"name": name, "kind": "large", "body": None, "content_type": large_content_type(name)})
    return cases, files


def large_content_type(name: str) -> str:
    return "application/json" if name.startswith("json") else "image/png"


def large_bodies() -> dict[str, bytes]:
    """Bodies too big for git, built at test time: around the 10 MiB limit, raw and as JSON."""
    near = padded_png(NEAR_LIMIT_BYTES)
    return {
        "body_9_9_mb": near,
        "body_over_limit": padded_png(OVER_LIMIT_BYTES),
        "json_9_9_mb": json.dumps({"image": base64.b64encode(near).decode()}).encode(),
        "json_oversized": json.dumps({"image": base64.b64encode(bytes(11 * 1024 * 1024)).decode()}).encode(),
    }


def write(out: Path) -> None:
    """Replace ``out``'s manifest and bodies with freshly generated ones."""
    cases, files = build()
    bodies = out / BODIES
    bodies.mkdir(parents=True, exist_ok=True)
    for stale in bodies.iterdir():
        if stale.name not in files:
            stale.unlink()
    for name, data in files.items():
        (bodies / name).write_bytes(data)
    (out / MANIFEST).write_text(json.dumps(cases, indent=1, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=CORPUS, help="folder to write (default tests/corpus)")
    args = parser.parse_args(argv)
    write(args.out)
    total = sum(path.stat().st_size for path in (args.out / BODIES).iterdir())
    print(f"wrote {len(build()[0])} cases, {total:,} bytes of bodies, to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
