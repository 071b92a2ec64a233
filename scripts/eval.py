"""Mask quality of plain U²-NetP and each mask option, at the images' full resolution.

    python scripts/eval.py                       # ../shared/testdata/sod and ../shared/testdata/hires
    python scripts/eval.py path/to/set ...       # folders with images/<stem>.* and masks/<stem>.png

Each image is segmented once (the pipeline's own decode, preview and upsample); each
variant then shapes that mask as the pipeline does (refine, then hard) and is scored
against the ground truth: MAE, maxFβ (β² = 0.3) and boundary F (edges at 0.5 within
0.75% of the diagonal). The time column is the variant's own cost per image, on top of
segmentation, whose time is printed once per set.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "scripts"))

import metrics  # noqa: E402

from handler import imaging, pipeline, refine  # noqa: E402
from handler.segmenter import Segmenter  # noqa: E402
from handler.settings import BUNDLED_MODEL, available_cpus  # noqa: E402

DEFAULT_SETS = [REPO_ROOT.parent / "shared" / "testdata" / name for name in ("sod", "hires")]
VARIANTS = {
    "plain": lambda photo, rgb, mask: mask,
    "refine": lambda photo, rgb, mask: refine.refine_mask(rgb, mask, refine.working_photo(photo)),
    "hard": lambda photo, rgb, mask: imaging.harden(mask),
    "refine+hard": lambda photo, rgb, mask: imaging.harden(refine.refine_mask(rgb, mask, refine.working_photo(photo))),
}


def pairs(folder: Path) -> list[tuple[Path, Path]]:
    """(image, ground-truth mask) pairs matched by file stem."""
    images = {path.stem: path for path in sorted((folder / "images").iterdir()) if not path.name.startswith(".")}
    truths = {stem: folder / "masks" / f"{stem}.png" for stem in images}
    return [(images[stem], truth) for stem, truth in truths.items() if truth.exists()]


def segment(segmenter: Segmenter, data: bytes) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """(RGB photo, its array, mask at full size), made by the pipeline's own segmentation step."""
    image, mask = pipeline.segment(data, segmenter=segmenter, max_pixels=10**9)
    photo = image.convert("RGB")
    return photo, np.asarray(photo), mask


def evaluate(folder: Path, segmenter: Segmenter, variants: list[str]) -> None:
    found = pairs(folder)
    if not found:
        print(f"{folder}: no image/mask pairs (expected images/<stem>.* and masks/<stem>.png)")
        return
    scores = {name: {"mae": [], "precision": [], "recall": [], "boundary": [], "seconds": []} for name in variants}
    segment_seconds = 0.0
    for image_path, truth_path in found:
        started = time.perf_counter()
        photo, rgb, mask = segment(segmenter, image_path.read_bytes())
        segment_seconds += time.perf_counter() - started
        truth = np.asarray(Image.open(truth_path).convert("L"))
        for name in variants:
            started = time.perf_counter()
            shaped = VARIANTS[name](photo, rgb, mask)
            scores[name]["seconds"].append(time.perf_counter() - started)
            precision, recall = metrics.precision_recall(shaped, truth)
            scores[name]["mae"].append(metrics.mae(shaped, truth))
            scores[name]["precision"].append(precision)
            scores[name]["recall"].append(recall)
            scores[name]["boundary"].append(metrics.boundary_f(shaped, truth))
    print(f"\n{folder} ({len(found)} images, segmentation {segment_seconds / len(found) * 1000:.0f} ms per image)")
    print(f"{'variant':<12} {'MAE':>7} {'maxFβ':>7} {'boundF':>7} {'ms/img':>7}")
    for name in variants:
        score = scores[name]
        print(
            f"{name:<12} {np.mean(score['mae']):7.4f} {metrics.max_f(score['precision'], score['recall']):7.4f} "
            f"{np.mean(score['boundary']):7.4f} {np.mean(score['seconds']) * 1000:7.1f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="*", type=Path, default=DEFAULT_SETS, help="folders with images/ and masks/")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {', '.join(VARIANTS)}")
    args = parser.parse_args()
    variants = args.variants.split(",")
    unknown = [name for name in variants if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; variants are {', '.join(VARIANTS)}")
    missing = [str(folder) for folder in args.sets if not (folder / "images").is_dir()]
    if missing:
        print(f"skipped (absent; the research-licensed test data lives outside the repo): {', '.join(missing)}")
    segmenter = Segmenter(BUNDLED_MODEL, threads=available_cpus())
    for folder in args.sets:
        if (folder / "images").is_dir():
            evaluate(folder, segmenter, variants)
    return 0


if __name__ == "__main__":
    sys.exit(main())
