"""Mask quality, noise robustness and detail of plain U²-NetP and each mask option.

    python scripts/eval.py                       # ../shared/testdata/{sod,hires}, examples/ at 12 MP
    python scripts/eval.py path/to/set ...       # folders with images/<stem>.* (or the images
                                                 # themselves) and, optionally, masks/<stem>.png
    python scripts/eval.py --megapixels 12 dir   # photos smaller than 12 MP upscaled to it first

Each image is segmented once (the pipeline's own decode, preview and upsample); each
variant then shapes that mask as the pipeline does (settled, refined then settled, or
hardened) and, where a ground-truth mask exists, is scored against it: MAE, maxFβ
(β² = 0.3) and boundary F (edges at 0.5 within 0.75% of the diagonal). The time column is
the variant's own cost per image, on top of segmentation, whose time is printed once per set.

Then, for plain, settled and refine, two figures that need no ground truth, inside the plain
mask's uncertain band (values 6-249), in levels:
  grain:  the photo against the same photo with Gaussian grain (sigma 4 levels): mean
          |alpha difference|, and the mean |Laplacian| of the grainy photo's alpha; beside
          it the clean photo's, so that what the grain adds reads apart from how steep the
          edges are (a sharper edge has the larger Laplacian with or without grain).
  detail: the photo upscaled 10x (at most to 12 MP) against the original: mean |alpha
          difference| with the upscaled alpha box-reduced back, and the mean |Laplacian|
          of the upscaled photo's alpha in its own band.
A refinement that turns grain into texture shows up as a larger difference than plain's,
and as a grainy Laplacian above its clean one. ``eval-results/edges.png`` shows an edge of
each of the first photos of the last set, grain added, plain against refined on white,
black and a checkerboard.
"""

import argparse
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "scripts"))

import edge_sheet  # noqa: E402
import metrics  # noqa: E402

from handler import decode, pipeline, refine  # noqa: E402
from handler.segmenter import Segmenter  # noqa: E402
from handler.settings import BUNDLED_MODEL, available_cpus  # noqa: E402

TESTDATA = REPO_ROOT.parent / "shared" / "testdata"
EXAMPLES = REPO_ROOT / "examples"
RESULTS = REPO_ROOT / "eval-results"
DETAIL_UPSCALE = 10
DETAIL_MAX_PIXELS = 12_000_000
SHEET_PHOTOS = 3
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".heic"}
VARIANTS = {  # the model's mask as it is, then as the pipeline shapes it for each mask option
    "plain": lambda photo, mask: mask,
    "settled": lambda photo, mask: pipeline.shape_mask(mask, None),
    "refine": lambda photo, mask: pipeline.shape_mask(mask, refine.working_photo(photo)),
    "hard": lambda photo, mask: pipeline.shape_mask(mask, None, hard=True),
    "refine+hard": lambda photo, mask: pipeline.shape_mask(mask, refine.working_photo(photo), hard=True),
}
ROBUSTNESS_VARIANTS = ("plain", "settled", "refine")


def photos(folder: Path) -> list[tuple[Path, Path | None]]:
    """(image, ground-truth mask or None) pairs: images/<stem>.* (or the folder's own
    images) with masks/<stem>.png where it exists."""
    images = folder / "images" if (folder / "images").is_dir() else folder
    found = sorted(path for path in images.iterdir() if path.suffix.lower() in PHOTO_SUFFIXES and not path.name.startswith("."))
    truths = [folder / "masks" / f"{path.stem}.png" for path in found]
    return [(path, truth if truth.exists() else None) for path, truth in zip(found, truths, strict=True)]


def upscaled(photo: Image.Image, pixels: float) -> Image.Image:
    """The photo resized (bicubic) to about ``pixels`` pixels, its aspect kept."""
    factor = (pixels / (photo.width * photo.height)) ** 0.5
    return photo.resize((round(photo.width * factor), round(photo.height * factor)), Image.Resampling.BICUBIC)


class BandFigures(NamedTuple):
    """One variant's alpha on a photo against the same photo altered (grain added, or upscaled), in levels."""

    change: float  # mean |alpha difference| in the photo's band, the altered alpha box-reduced to its size
    texture: float  # mean |Laplacian| of the altered photo's alpha in its own band
    own_texture: float  # the same of the photo's own alpha

    @classmethod
    def mean(cls, figures: list["BandFigures"]) -> "BandFigures":
        """Each figure's mean over photos."""
        return cls(*np.mean(figures, axis=0))


def _band_figures(
    photo: Image.Image, mask: np.ndarray, other: Image.Image, other_mask: np.ndarray, band: np.ndarray
) -> dict[str, BandFigures]:
    """Per variant in ROBUSTNESS_VARIANTS: the photo's alpha against the other's."""
    other_band = metrics.uncertain_band(other_mask)
    figures = {}
    for name in ROBUSTNESS_VARIANTS:
        alpha, other_alpha = VARIANTS[name](photo, mask), VARIANTS[name](other, other_mask)
        reduced = (
            other_alpha
            if other.size == photo.size
            else np.asarray(Image.fromarray(other_alpha).resize(photo.size, Image.Resampling.BOX))
        )
        figures[name] = BandFigures(
            metrics.band_change(alpha, reduced, band),
            metrics.band_texture(other_alpha, other_band),
            metrics.band_texture(alpha, band),
        )
    return figures


def grain_figures(segmenter: Segmenter, photo: Image.Image, *, seed: int) -> dict[str, BandFigures]:
    """Per variant: the photo against itself with grain (see the module docstring)."""
    mask = segmenter.predict(photo)
    grainy = Image.fromarray(metrics.with_grain(np.asarray(photo), seed=seed))
    return _band_figures(photo, mask, grainy, segmenter.predict(grainy), metrics.uncertain_band(mask))


def detail_figures(segmenter: Segmenter, photo: Image.Image) -> dict[str, BandFigures]:
    """Per variant: the photo against itself upscaled (see the module docstring)."""
    mask = segmenter.predict(photo)
    factor = min(DETAIL_UPSCALE, (DETAIL_MAX_PIXELS / photo.width / photo.height) ** 0.5)
    big = upscaled(photo, factor**2 * photo.width * photo.height) if factor > 1 else photo
    return _band_figures(photo, mask, big, segmenter.predict(big), metrics.uncertain_band(mask))


def load(path: Path, megapixels: float | None, segmenter: Segmenter) -> tuple[Image.Image, np.ndarray]:
    """(RGB photo, plain mask): the pipeline's own segmentation, or the photo upscaled first."""
    with Image.open(path) as header:
        small = megapixels is not None and header.width * header.height < megapixels * 1e6
    if small:
        # Decoded as the pipeline decodes: upright, and 16-bit scaled (converting would clamp it to white).
        photo = upscaled(decode.decode(path.read_bytes(), max_pixels=10**9).convert("RGB"), megapixels * 1e6)
        return photo, segmenter.predict(photo)
    image, _, mask = pipeline.segment(path.read_bytes(), segmenter=segmenter, max_pixels=10**9)
    return image.convert("RGB"), mask


def print_quality(scores: dict[str, dict[str, list]], variants: list[str]) -> None:
    print(f"{'variant':<12} {'MAE':>7} {'maxFβ':>7} {'boundF':>7} {'ms/img':>7}")
    for name in variants:
        score = scores[name]
        print(
            f"{name:<12} {np.mean(score['mae']):7.4f} {metrics.max_f(score['precision'], score['recall']):7.4f} "
            f"{np.mean(score['boundary']):7.4f} {np.mean(score['seconds']) * 1000:7.1f}"
        )
    for name in variants[1:]:
        gains = np.subtract(scores[name]["boundary"], scores[variants[0]]["boundary"])
        print(f"  boundary F of {name} against {variants[0]}: higher on {(gains > 0).sum()}, lower on {(gains < 0).sum()} photos")


def print_robustness(figures: list[dict[str, dict[str, BandFigures]]]) -> None:
    columns = ("grain Δ", "grain ∇²", "clean ∇²", "detail Δ", "detail ∇²")
    print(f"{'variant':<12} " + " ".join(f"{column:>9}" for column in columns) + "   (levels, in the band)")
    for name in ROBUSTNESS_VARIANTS:
        grain = BandFigures.mean([photo["grain"][name] for photo in figures])
        detail = BandFigures.mean([photo["detail"][name] for photo in figures])
        values = (grain.change, grain.texture, grain.own_texture, detail.change, detail.texture)
        print(f"{name:<12} " + " ".join(f"{value:9.2f}" for value in values))


def evaluate(folder: Path, segmenter: Segmenter, variants: list[str], megapixels: float | None) -> list[edge_sheet.Edge]:
    """Print the set's tables; return its first photos' edges for the contact sheet."""
    found = photos(folder)
    scores = {name: {"mae": [], "precision": [], "recall": [], "boundary": [], "seconds": []} for name in variants}
    figures, edges = [], []
    segment_seconds = 0.0
    for index, (image_path, truth_path) in enumerate(found):
        started = time.perf_counter()
        photo, mask = load(image_path, megapixels, segmenter)
        segment_seconds += time.perf_counter() - started
        if truth_path is not None:
            truth = np.asarray(Image.open(truth_path).convert("L").resize(photo.size, Image.Resampling.NEAREST))
            for name in variants:
                started = time.perf_counter()
                shaped = VARIANTS[name](photo, mask)
                scores[name]["seconds"].append(time.perf_counter() - started)
                precision, recall = metrics.precision_recall(shaped, truth)
                scores[name]["mae"].append(metrics.mae(shaped, truth))
                scores[name]["precision"].append(precision)
                scores[name]["recall"].append(recall)
                scores[name]["boundary"].append(metrics.boundary_f(shaped, truth))
        figures.append({"grain": grain_figures(segmenter, photo, seed=index), "detail": detail_figures(segmenter, photo)})
        # The sheet's tiles are CROP pixels a side: a smaller photo has no such window to show.
        if index < SHEET_PHOTOS and min(photo.size) >= edge_sheet.CROP:
            grainy = Image.fromarray(metrics.with_grain(np.asarray(photo), seed=index))
            edges.append(edge_sheet.Edge.of(image_path.stem, grainy, segmenter.predict(grainy)))
    size = f", upscaled to {megapixels:g} MP" if megapixels else ""
    print(f"\n{folder} ({len(found)} images{size}, segmentation {segment_seconds / max(len(found), 1) * 1000:.0f} ms per image)")
    if scores[variants[0]]["mae"]:
        print_quality(scores, variants)
    if figures:
        print_robustness(figures)
    return edges


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="*", type=Path, help="folders of photos (default: sod, hires, examples at 12 MP)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {', '.join(VARIANTS)}")
    parser.add_argument("--megapixels", type=float, help="upscale smaller photos to this many megapixels first")
    parser.add_argument("--sheet", type=Path, default=RESULTS / "edges.png", help="where the contact sheet goes")
    args = parser.parse_args()
    variants = args.variants.split(",")
    unknown = [name for name in variants if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; variants are {', '.join(VARIANTS)}")
    # A mistyped EVAL_PHOTOS is named here, before the model loads, not met as a traceback later.
    for folder in args.sets:
        if not folder.is_dir():
            parser.error(f"EVAL_PHOTOS / sets: {folder} is not a folder")
    runs = [(folder, args.megapixels) for folder in args.sets]
    if not runs:
        runs = [(TESTDATA / "sod", None), (TESTDATA / "hires", None), (EXAMPLES, 12.0)]
        missing = [str(folder) for folder, _ in runs if not folder.is_dir()]
        if missing:
            print(f"skipped (absent; the research-licensed test data lives outside the repo): {', '.join(missing)}")
        runs = [(folder, megapixels) for folder, megapixels in runs if folder.is_dir()]
    segmenter = Segmenter(BUNDLED_MODEL, threads=available_cpus())
    edges = []
    for folder, megapixels in runs:
        if not photos(folder):
            print(f"{folder}: no photos (expected images/<stem>.* or the photos themselves)")
            continue
        edges = evaluate(folder, segmenter, variants, megapixels) or edges
    if edges:
        args.sheet.parent.mkdir(parents=True, exist_ok=True)
        edge_sheet.contact_sheet(edges).save(args.sheet, optimize=True)
        print(f"\ncontact sheet: {args.sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
