"""A fast PNG writer for 8-bit numpy images: the "Up" row filter in numpy, one libdeflate call.

Pillow's encoder chooses a filter row by row in C and deflates with zlib at level 6, which
takes seconds on a 12 MP cut-out. Filtering the whole array at once with "Up" (each byte
minus the one above it) and compressing with libdeflate takes a fraction of that. Measured
on noisy 12 MP cut-outs, "Up" compresses as well as per-row adaptive filtering or better
(adaptive won by about 2% on one smooth photo and lost by 3% on a noisy one, at 250 ms of
extra work), and libdeflate's level 1 is within 4% of its level 6 at a fifth of the time.
Big images get level 4: at 12 MP it saves 2-4% for about 0.15 s of a one-second request,
where at 1920x1080 the same step would add 6% to the request for 0.5 MB less.
"""

import struct
import zlib

import deflate
import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
FAST_LEVEL = 1
LARGE_IMAGE_LEVEL = 4
LARGE_IMAGE_PIXELS = 6_000_000
_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> grey, grey+alpha, RGB, RGBA
_FILTER_UP = 2


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def filter_rows(pixels: np.ndarray) -> np.ndarray:
    """The "Up"-filtered scanlines of an HxW or HxWxC uint8 array: H rows of 1 + W*C bytes."""
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1)
    filtered = np.empty((height, rows.shape[1] + 1), dtype=np.uint8)
    filtered[:, 0] = _FILTER_UP
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # modulo 256, as PNG defines it
    return filtered


def encode_png(pixels: np.ndarray, *, level: int | None = None) -> bytes:
    """Encode an HxW or HxWxC (C = 1 to 4) uint8 array as a PNG.

    :param level: libdeflate compression level, 1 (fastest) to 12 (smallest); by default
        FAST_LEVEL, or LARGE_IMAGE_LEVEL from LARGE_IMAGE_PIXELS up.
    """
    if pixels.dtype != np.uint8:
        raise ValueError(f"pixels must be uint8, not {pixels.dtype}")
    height, width = pixels.shape[:2]
    if level is None:
        level = LARGE_IMAGE_LEVEL if height * width >= LARGE_IMAGE_PIXELS else FAST_LEVEL
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOUR_TYPES[channels], 0, 0, 0)
    idat = deflate.zlib_compress(filter_rows(pixels), level)
    return b"".join((SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", idat), _chunk(b"IEND", b"")))
