"""Benchmark photos made from the repo's own examples, so `make bench` runs on a fresh clone.

The examples are small and smooth; upscaled as they are they would be far easier to
compress than a phone photo. Each large photo therefore gets sensor-like noise (a
luminance grain shared by the three channels plus a weaker chroma grain, slightly
blurred the way demosaicing correlates neighbours) before it is saved as a phone would.
"""

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HIRES = Path(__file__).resolve().parent.parent.parent / "shared" / "testdata" / "hires" / "images"
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".heic", ".tif", ".tiff", ".bmp")
LUMA_NOISE = 4.0  # standard deviation in 8-bit levels: a phone at ISO ~400 after its own denoising
CHROMA_NOISE = 2.0
PHONE_JPEG_QUALITY = 92


def _cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale ``image`` to cover ``size`` and crop the centre."""
    scale = max(size[0] / image.width, size[1] / image.height)
    scaled = image.resize((round(image.width * scale + 0.5), round(image.height * scale + 0.5)), Image.Resampling.BICUBIC)
    left, top = (scaled.width - size[0]) // 2, (scaled.height - size[1]) // 2
    return scaled.crop((left, top, left + size[0], top + size[1]))


def _with_sensor_noise(image: Image.Image, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    height, width = image.height, image.width
    grain = rng.normal(0.0, LUMA_NOISE, (height, width, 1)) + rng.normal(0.0, CHROMA_NOISE, (height, width, 3))
    # A 3x3 blur at 1/3 weight: neighbouring photosites share part of their noise after demosaicing.
    grain_image = Image.fromarray(np.clip(grain * 8 + 128, 0, 255).astype(np.uint8))
    blurred = (np.asarray(grain_image.filter(ImageFilter.BoxBlur(1)), dtype=np.float32) - 128) / 8
    grain = (2 * grain + blurred) / 3
    pixels = np.asarray(image, dtype=np.float32) + grain
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))


def make_photos(folder: Path, extra: Path | None = HIRES) -> dict[str, Path]:
    """Write the benchmark photos into ``folder`` (once) and return {name: path}.

    small: an example as is (512x512 JPEG); hd: 1920x1080 JPEG; 12mp: 4032x3024 JPEG;
    12mp-png: the same 12 MP photo as a PNG. Then every photo in ``extra`` (by default the
    high-resolution research photos of ../shared/testdata), when it is a folder.
    """
    folder.mkdir(parents=True, exist_ok=True)
    photos = {
        "small": EXAMPLES / "astronaut.jpg",
        "hd": folder / "hd.jpg",
        "12mp": folder / "12mp.jpg",
        "12mp-png": folder / "12mp.png",
    }
    if not photos["hd"].exists():
        hd = _with_sensor_noise(_cover(Image.open(EXAMPLES / "coffee.jpg").convert("RGB"), (1920, 1080)), seed=1)
        hd.save(photos["hd"], quality=PHONE_JPEG_QUALITY, subsampling="4:2:0")
    if not photos["12mp"].exists() or not photos["12mp-png"].exists():
        twelve = _with_sensor_noise(_cover(Image.open(EXAMPLES / "chelsea.jpg").convert("RGB"), (4032, 3024)), seed=2)
        twelve.save(photos["12mp"], quality=PHONE_JPEG_QUALITY, subsampling="4:2:0")
        twelve.save(photos["12mp-png"])
    if extra is not None and extra.is_dir():
        for path in sorted(extra.iterdir()):
            if path.suffix.lower() in PHOTO_SUFFIXES:
                photos[path.stem if path.stem not in photos else f"{path.parent.name}-{path.stem}"] = path
    return photos
