"""Mask quality through the real pipeline on the research-licensed sets in ../shared/testdata.

Metrics as the U²-Net paper computes them (scripts/metrics.py). Part of the normal run
(about 20 s); deselect with ``-m "not quality"``. Skipped when the data is absent.
"""

import sys

import numpy as np
import pytest
from helpers import pipeline_mask
from PIL import Image

pytestmark = pytest.mark.quality


@pytest.fixture(scope="module")
def metrics(repo_root):
    sys.path.insert(0, str(repo_root / "scripts"))
    import metrics

    return metrics


def evaluate(folder, segmenter, metrics) -> tuple[float, float]:
    """(MAE, maxFβ) of the pipeline's masks against the human masks in ``folder``."""
    errors, precisions, recalls = [], [], []
    photos = sorted((folder / "images").glob("*.jpg"))
    assert photos, f"no photos in {folder / 'images'}"
    for photo in photos:
        mask = pipeline_mask(photo.read_bytes(), segmenter)
        truth = np.asarray(Image.open(folder / "masks" / f"{photo.stem}.png").convert("L"))
        assert mask.shape == truth.shape, f"{photo.name}: mask {mask.shape} vs truth {truth.shape}"
        errors.append(metrics.mae(mask, truth))
        precision, recall = metrics.precision_recall(mask, truth)
        precisions.append(precision)
        recalls.append(recall)
    return float(np.mean(errors)), metrics.max_f(precisions, recalls)


def test_sod_benchmark(testdata, segmenter, metrics):
    # Measured with this pipeline: MAE 0.1275, maxFβ 0.8236 (0.1291 before unrefined masks were
    # settled); the official recipe scores 0.136 / 0.823 on these 50 (testdata/sod/SOURCE.md), the
    # paper 0.124 / 0.841 on all 300.
    mae, max_f = evaluate(testdata("sod"), segmenter, metrics)

    print(f"sod: MAE {mae:.4f}, maxFβ {max_f:.4f}")
    assert mae <= 0.140
    assert max_f >= 0.815


def test_high_resolution_photos(testdata, segmenter, metrics):
    # Measured with this pipeline: MAE 0.0846, maxFβ 0.922 (the official recipe: MAE 0.087,
    # testdata/hires/SOURCE.md). The bounds leave about 10% headroom, because a mean over three
    # photos moves with small changes to resizing or refinement. (Aliasing is not what this
    # catches: these photos score the same with a point-sampled downscale; test_segmenter's
    # scale-invariance test covers that.)
    mae, max_f = evaluate(testdata("hires"), segmenter, metrics)

    print(f"hires: MAE {mae:.4f}, maxFβ {max_f:.4f}")
    assert mae <= 0.095
    assert max_f >= 0.90
