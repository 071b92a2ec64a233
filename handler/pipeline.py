"""Bytes and Options in, an encoded Result out: decode, segment, shape the mask, compose, encode.

Every entry point (CLI, API, S3, queue) calls ``remove_background`` with the same Options.
"""

import ast
import functools
import hashlib
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from . import decode, imaging, refine
from .options import Options
from .parallel import SERIAL, StripPool
from .segmenter import INPUT_SIZE, Segmenter, upsample

# Sides of the preview decode: twice the model input, so LANCZOS still has pixels to average.
PREVIEW_SIDE = 640
LARGE_IMAGE_PIXELS = 6_000_000
# Besides the source and the options, what decides a result's bytes: the model, the code of
# these modules (this one and the image modules it calls), the libraries they call, and the
# processor and Python they run on (ONNX Runtime's arm64 masks differ from x86_64's by a level
# here and there; the standard library's zlib compresses the colour profile).
RESULT_CODE = ("pipeline.py", "decode.py", "imaging.py", "options.py", "png.py", "refine.py", "segmenter.py")
RESULT_LIBRARIES = ("numpy", "onnxruntime", "pillow", "pillow-heif", "zlib-ng")


class Stopwatch:
    """Seconds spent in each stage of one request, in the order the stages ran."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._since = time.perf_counter()

    def lap(self, stage: str) -> None:
        """End ``stage`` now: the time since the previous lap is added to it."""
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._since
        self._since = now


@dataclass(frozen=True)
class Result:
    data: bytes
    format: str
    width: int
    height: int
    input_pixels: int
    stage_seconds: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def media_type(self) -> str:
        return imaging.MEDIA_TYPES[self.format]


@functools.cache
def result_version(model_path: Path) -> str:
    """A digest of what makes a result from a source and options: the model at ``model_path``,
    the code in ``RESULT_CODE``, the versions of ``RESULT_LIBRARIES``, the processor architecture
    and the Python version.

    Stored results carry it, and one of another version is made again: an update that changes
    cut-outs must not leave the old ones served as current, or skipped as up to date, for as long
    as their sources stay unchanged. Any change to the modules' code counts, a docstring or an
    error message too (a result is made once more rather than kept when it might differ);
    comments and layout do not.
    """
    # ~35 ms with the import and the syntax trees, once per process: paid by the first cut-out
    # request or queue message, not by every cold start.
    from importlib import metadata

    digest = hashlib.sha256(model_path.read_bytes())
    for name in RESULT_CODE:
        digest.update(module_code(Path(__file__).with_name(name)))
    for library in RESULT_LIBRARIES:
        digest.update(f"{library}=={metadata.version(library)}\n".encode())
    digest.update(f"{platform.machine()} Python {platform.python_version()}".encode())
    return digest.hexdigest()[:16]


def module_code(path: Path) -> bytes:
    """A Python module's syntax tree, dumped: its code without its comments and layout."""
    return ast.dump(ast.parse(path.read_text(encoding="utf-8"))).encode()


def _shrink(rgb: np.ndarray, alpha: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Colour and alpha at ``size``, resampled together: Pillow resizes RGBA premultiplied, so the
    colours of transparent pixels (the old background, a source's hidden pixels) never bleed
    into the edges they border, as they would if the colour were shrunk on its own."""
    rgba = Image.fromarray(np.dstack((rgb, alpha)), "RGBA").resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    small = np.asarray(rgba)
    return small[..., :3], small[..., 3]


def shape_mask(mask: np.ndarray, guide: refine.Guide | None, *, hard: bool = False, strips: StripPool = SERIAL) -> np.ndarray:
    """The mask a cut-out carries: moved towards the photo's edges where there is a ``guide``
    (``refine.working_photo`` of the photo), then settled, or hardened, which settles more.
    Evaluation and the edge contact sheet shape their masks here too, so they measure this."""
    if guide is not None:
        mask = refine.refine_mask(mask, guide, strips=strips)
    return imaging.harden(mask) if hard else imaging.settle(mask)


def segment(
    data: bytes, *, segmenter: Segmenter, max_pixels: int, strips: StripPool = SERIAL, stopwatch: Stopwatch | None = None
) -> tuple[Image.Image, Image.Image, np.ndarray]:
    """Decode image bytes and predict their mask: (upright RGB or RGBA image, the RGB photo the
    model saw at that size, uint8 mask at that size). The two images are one for RGB photos; a
    transparent source is seen over white."""
    stopwatch = stopwatch or Stopwatch()
    header = decode.open_image(data, max_pixels=max_pixels)
    # Read before decode_preview's draft shrinks the header; a JPEG's EXIF comes with its header
    # (a PNG's may need a full decode).
    size = decode.upright_size(header) if header.format in decode.JPEG_FORMATS else None
    # Big photos return the model's memory before their full-size work starts; small ones
    # keep it for the next request.
    release_memory = header.width * header.height >= LARGE_IMAGE_PIXELS
    # The model needs only 320x320: a big JPEG gives it a reduced decode, and its full-size
    # decode waits until inference is over so the two never hold memory at the same time.
    preview = decode.decode_preview(header, min_side=PREVIEW_SIDE)
    if preview is None:
        image = decode.decode(data, max_pixels=max_pixels)
        seen = imaging.flatten(image)
        stopwatch.lap("decode")
        small_mask = segmenter.predict_small(seen, release_memory=release_memory, strips=strips, lap=stopwatch.lap)
        mask = upsample(small_mask, image.size)
        stopwatch.lap("upsampling")
    else:
        stopwatch.lap("decode")
        small_mask = segmenter.predict_small(preview, release_memory=release_memory, strips=strips, lap=stopwatch.lap)
        del preview
        # The full-size decode and the mask's upsampling need nothing of each other: side by
        # side on two cores, the upsampling is hidden in the decode's time.
        image, mask = strips.map(
            lambda task: task(), [lambda: decode.decode(data, max_pixels=max_pixels), lambda: upsample(small_mask, size)]
        )
        seen = imaging.flatten(image)  # a JPEG's: RGB already
        stopwatch.lap("decode")
    return image, seen, mask


def remove_background(
    data: bytes, options: Options, *, segmenter: Segmenter, max_pixels: int, strips: StripPool = SERIAL
) -> Result:
    """Cut the salient subject out of encoded image bytes.

    :param strips: the pool that runs the full-resolution steps strip by strip (the process's
        own, built once with ``settings.threads`` workers); the output is the same with any pool.
    """
    stopwatch = Stopwatch()
    image, seen, mask = segment(data, segmenter=segmenter, max_pixels=max_pixels, strips=strips, stopwatch=stopwatch)
    # Past twice the model's input the upsampled mask is soft and its fringe carries the old
    # background, so the full-resolution steps pay off; below it they would cost a third of a
    # small photo's time for little gain, and run only when refine is asked for explicitly.
    upsampled = max(image.size) > 2 * INPUT_SIZE
    refine_edges = options.refine or (options.refine is None and upsampled)
    # The model's fringe gets the subject's colour, not the old background's. Sources with
    # alpha keep their own colours: behind their transparent parts there is no photo to unmix.
    clean_colours = not options.mask and image.mode == "RGB" and (upsampled or options.refine)
    # The guide is the photo the model saw: colours a source hides under alpha 0 are no edge of
    # its subject, and read as one they pulled holes into opaque parts.
    guide = refine.working_photo(seen) if refine_edges or clean_colours else None
    del seen  # a transparent source's flattened copy: 36 MB at 12 MP
    # The model sees transparent sources over white, but the output keeps their own colours:
    # flattened colours would lighten every semi-transparent pixel.
    photo = image if image.mode == "RGB" else image.convert("RGB")
    rgb = imaging.to_array(photo)
    source_alpha = np.asarray(image.getchannel("A")) if image.mode == "RGBA" else None
    icc_profile = None if options.mask else decode.rgb_profile(image)  # a mask is no colour to tag
    input_pixels = image.width * image.height
    # The arrays hold what is needed: the 36 MB of a 12 MP decode go before the full-resolution steps.
    del photo, image
    stopwatch.lap("decode")  # the pixels as an array and at the working size: products of the decode
    mask = shape_mask(mask, guide if refine_edges else None, hard=options.hard, strips=strips)
    if refine_edges:
        stopwatch.lap("refinement")
    if clean_colours:
        rgb = refine.foreground_colours(rgb, mask, guide, strips=strips, in_place=True)  # rgb is the decode's own copy
        stopwatch.lap("colour clean-up")
    if source_alpha is not None:
        mask = imaging.combine_alpha(mask, source_alpha)

    if options.crop and (box := imaging.subject_box(mask)) is not None:
        left, top, right, bottom = box
        rgb, mask = rgb[top:bottom, left:right], mask[top:bottom, left:right]
    if options.max_size:
        size = imaging.fit_within((mask.shape[1], mask.shape[0]), options.max_size)
        if size != (mask.shape[1], mask.shape[0]):
            rgb, mask = _shrink(rgb, mask, size)

    if options.mask:
        pixels = mask
    elif options.background is not None:
        background = imaging.colour_in_profile(options.background, icc_profile) if icc_profile else options.background
        pixels = imaging.on_background(rgb, mask, background)
    else:
        pixels = imaging.cutout(rgb, mask, strips=strips)
    del rgb, mask  # 48 MB at 12 MP that the encoder's own buffers need not sit on
    height, width = pixels.shape[:2]
    stopwatch.lap("compositing")
    data = imaging.encode(pixels, options.format, strips=strips, icc_profile=icc_profile)
    stopwatch.lap("encoding")
    return Result(
        data=data,
        format=options.format,
        width=width,
        height=height,
        input_pixels=input_pixels,
        stage_seconds=stopwatch.seconds,
    )
