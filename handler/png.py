"""A fast PNG writer for 8-bit numpy images: one filter pass in numpy, one libdeflate call.

Pillow's encoder tries filters row by row and deflates at level 6, which takes seconds on
a 12 MP cut-out; filtering the whole array at once and compressing with libdeflate gives
a file as small in a fraction of the time.
"""

import struct
import zlib

import deflate
import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> grey, grey+alpha, RGB, RGBA
_FILTER_UP = 2


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def encode_png(pixels: np.ndarray, *, level: int = 4) -> bytes:
    """Encode an HxW or HxWxC (C = 1 to 4) uint8 array as a PNG.

    :param level: libdeflate compression level, 1 (fastest) to 12 (smallest).
    """
    if pixels.dtype != np.uint8:
        raise ValueError(f"pixels must be uint8, not {pixels.dtype}")
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    rows = pixels.reshape(height, width * channels)
    filtered = np.empty((height, width * channels + 1), dtype=np.uint8)
    filtered[:, 0] = _FILTER_UP
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # modulo 256, as PNG defines it
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOUR_TYPES[channels], 0, 0, 0)
    return b"".join(
        (
            SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", deflate.zlib_compress(filtered, level)),
            _chunk(b"IEND", b""),
        )
    )
