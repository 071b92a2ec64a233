"""The local CLI: cut out files or whole folders with the same pipeline as the Lambda.

    python -m handler photo.jpg -o cutout.png
    python -m handler photos/ -o cutouts/ --background '#ffffff' --format jpeg
    python -m handler photo.jpg -o mask.png --mask
"""

import argparse
import os
import sys
import time
from pathlib import Path

from . import __version__
from .errors import InvalidOption, ServiceError
from .options import EXTENSIONS, Options

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m handler",
        description="Cut the salient subject out of photos with U²-NetP.",
        epilog="example: python -m handler photos/ -o cutouts/ --crop --max-size 1024",
    )
    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", type=Path, help="image files or folders (folders are walked recursively)"
    )
    parser.add_argument("-o", "--output", required=True, help="output file (one input file) or folder, e.g. -o out/")
    parser.add_argument(
        "--format", default="png", help="png (default), webp, or jpeg with --background or --mask; e.g. --format webp"
    )
    parser.add_argument("--mask", action="store_true", help="write the greyscale mask instead of the cut-out")
    parser.add_argument(
        "--background", metavar="COLOR", help="composite onto a solid colour instead of transparency, e.g. --background '#ffffff'"
    )
    parser.add_argument("--crop", action="store_true", help="crop to the subject's bounding box plus a small margin")
    parser.add_argument("--max-size", type=int, metavar="N", help="longest side of the output in pixels, e.g. --max-size 1024")
    parser.add_argument(
        "--refine",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="refine mask edges at full resolution, guided by the photo (default: on for photos over 640 px)",
    )
    parser.add_argument("--hard", action="store_true", help="snap near-0 and near-1 mask values for crisp product cut-outs")
    parser.add_argument("--model", type=Path, help="path of the ONNX model (default: MODEL_PATH or the bundled u2netp.onnx)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def parse_options(args: argparse.Namespace) -> Options:
    return Options.parse(
        {
            "format": args.format,
            "mask": args.mask,
            "background": args.background,
            "crop": args.crop,
            "max_size": args.max_size,
            "refine": args.refine,
            "hard": args.hard,
        }
    )


def plan(inputs: list[Path], output: Path, extension: str, *, into_folder: bool = False) -> list[tuple[Path, Path]]:
    """(source, destination) pairs: folders mirror their tree under ``output``.

    One input file goes to ``output`` itself when that names a file (it has a suffix and is
    not an existing folder); ``into_folder`` says it is a folder anyway (``-o out.v2/``).
    """
    single_file = len(inputs) == 1 and inputs[0].is_file()
    if single_file and not into_folder and not output.is_dir() and output.suffix:
        return [(inputs[0], output)]
    pairs = []
    for source in inputs:
        if source.is_dir():
            # An output folder inside the input holds the last run's results, not photos to cut out.
            results = output.resolve()
            inside = results.relative_to(source.resolve()).parts if results.is_relative_to(source.resolve()) else ()
            for path in sorted(source.rglob("*")):
                if inside and path.relative_to(source).parts[: len(inside)] == inside:
                    continue
                if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
                    pairs.append((path, output / path.relative_to(source).with_suffix(extension)))
        else:
            pairs.append((source, output / (source.stem + extension)))
    return pairs


def _progress(done: int, total: int, name: str, seconds: float) -> None:
    if sys.stderr.isatty():
        width = 30
        filled = width * done // total
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {name[:40]:<40} {seconds:6.2f} s")
        if done == total:
            sys.stderr.write("\n")
    else:
        sys.stderr.write(f"[{done}/{total}] {name} {seconds:.2f} s\n")
    sys.stderr.flush()


def _clash(destination: Path, written: dict[Path, Path], sources: set[Path]) -> str | None:
    """Why writing ``destination`` would destroy something, or None: an earlier result, or an input
    (written into the input folder, a.jpg's result is a.png: perhaps a photo not yet read)."""
    if destination in written:
        return f"would overwrite the result of {written[destination]}"
    if destination.resolve() in sources:
        return f"would overwrite the input {destination}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        options = parse_options(args)
    except InvalidOption as error:
        parser.error(error.message)
    missing = [str(path) for path in args.inputs if not path.exists()]
    if missing:
        parser.error(f"no such file or folder: {', '.join(missing)}")
    extension = EXTENSIONS[options.format]
    # Path() drops a trailing slash, the one sign that "out.v2/" is a folder and not a file.
    pairs = plan(args.inputs, Path(args.output), extension, into_folder=args.output.endswith(("/", os.sep)))
    if not pairs:
        parser.error("no images found in the inputs")
    suffix = pairs[0][1].suffix.lower()
    named_otherwise = suffix in IMAGE_SUFFIXES and suffix not in (extension, ".jpeg" if extension == ".jpg" else extension)
    if len(pairs) == 1 and named_otherwise:
        parser.error(f"{args.output} does not match --format {options.format}: name it *{extension}")

    # Heavy imports only once there is work to do: --help and --version stay instant.
    from .parallel import StripPool
    from .pipeline import remove_background
    from .segmenter import Segmenter
    from .settings import Settings

    settings = Settings.from_env()
    model = args.model or settings.model_path
    try:
        segmenter = Segmenter(model, threads=settings.threads)
    except Exception as error:  # ONNX Runtime's load errors (no such file, not a model) share no narrower base
        parser.error(f"cannot load the model {model}: {error}")
    strips = StripPool(settings.threads)
    failures: list[tuple[Path, str]] = []
    written: dict[Path, Path] = {}
    sources = {source.resolve() for source, _ in pairs}
    started = time.perf_counter()
    for done, (source, destination) in enumerate(pairs, start=1):
        image_started = time.perf_counter()
        try:
            if (clash := _clash(destination, written, sources)) is not None:
                failures.append((source, clash))
            else:
                result = remove_background(
                    source.read_bytes(), options, segmenter=segmenter, max_pixels=settings.max_input_pixels, strips=strips
                )
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_bytes(result.data)
                written[destination] = source
        except ServiceError as error:
            failures.append((source, error.message))
        except OSError as error:
            failures.append((source, f"{error.strerror or 'cannot read or write'}: {error.filename or source}"))
        _progress(done, len(pairs), source.name, time.perf_counter() - image_started)
    elapsed = time.perf_counter() - started
    for source, reason in failures:
        print(f"failed: {source}: {reason}", file=sys.stderr)
    # A name that is not UTF-8 (Linux takes any bytes) shows its other bytes escaped: stdout is
    # strict UTF-8 in most locales, and the summary would end in a traceback.
    output_name = os.fsencode(args.output).decode(errors="backslashreplace")
    print(
        f"done {len(pairs) - len(failures)}, failed {len(failures)}, "
        f"{elapsed:.2f} s in all, {elapsed / len(pairs):.3f} s per image -> {output_name}"
    )
    return 1 if failures else 0
