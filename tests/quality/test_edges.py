"""Edge refinement against the plain mask: never worse on the research-licensed sets, and
no sensor grain turned into alpha texture, there and on the public-domain examples at 12 MP.

Figures as ``make eval`` prints them (scripts/eval.py, scripts/metrics.py). Skipped where
../shared/testdata is absent, except the examples, which ship with the repo.
"""

import importlib
import sys

import numpy as np
import pytest
from helpers import example_photo
from PIL import Image

from handler import refine

pytestmark = pytest.mark.quality


@pytest.fixture(scope="module")
def evaluation(repo_root):
    sys.path.insert(0, str(repo_root / "scripts"))
    return importlib.import_module("eval")


@pytest.mark.parametrize(
    "name, gain",
    [
        # Measured: plain MAE 0.1291 / maxFβ 0.8236 / boundary F 0.5691; refined (and settled, as the
        # pipeline does) 0.1264 / 0.8236 / 0.5781, higher on 33 photos, lower on 13; settled 0.1275 / 0.8236 / 0.5691.
        ("sod", 0.005),
        # Measured: plain 0.0840 / 0.9219 / 0.5907; refined 0.0821 / 0.9212 / 0.6062, higher on 2 of 3;
        # settled 0.0823 / 0.9219 / 0.5907. Issue 16 asks for +0.015 here.
        ("hires", 0.015),
    ],
)
def test_refine_and_settling_are_never_worse_than_the_plain_mask(testdata, segmenter, evaluation, name, gain):
    metrics = evaluation.metrics
    folder = testdata(name)
    scores = {variant: ([], [], [], []) for variant in ("plain", "refine", "settled")}
    for path, truth_path in evaluation.photos(folder):
        # The pipeline's own segmentation, as `make eval` measures it: a big JPEG's model input
        # comes from its DCT-scaled decode, not from the full-size photo resized.
        photo, mask = evaluation.load(path, None, segmenter)
        truth = np.asarray(Image.open(truth_path).convert("L").resize(photo.size, Image.Resampling.NEAREST))
        for variant, (errors, precisions, recalls, boundaries) in scores.items():
            shaped = evaluation.VARIANTS[variant](photo, mask)
            errors.append(metrics.mae(shaped, truth))
            precision, recall = metrics.precision_recall(shaped, truth)
            precisions.append(precision)
            recalls.append(recall)
            boundaries.append(metrics.boundary_f(shaped, truth))
    plain, refined, settled = (
        {"mae": np.mean(e), "max_f": metrics.max_f(p, r), "boundary": np.mean(b)} for e, p, r, b in scores.values()
    )
    gains = np.subtract(scores["refine"][3], scores["plain"][3])

    print(f"plain {plain}, refine {refined}, settled {settled}")
    print(f"refine's boundary F: higher on {(gains > 0).sum()}, lower on {(gains < 0).sum()} photos")
    assert refined["boundary"] >= plain["boundary"] + gain
    assert (gains > 0).sum() >= (gains < 0).sum()
    assert refined["mae"] <= plain["mae"]
    assert refined["max_f"] >= plain["max_f"] - 0.002
    # Settling keeps every photo's outline at 0.5, so its edges; it clears haze the human masks do not have.
    assert scores["settled"][3] == scores["plain"][3]
    assert settled["mae"] < plain["mae"]
    assert settled["max_f"] >= plain["max_f"] - 0.0005


def assert_grain_robust(evaluation, figures: list[dict]) -> None:
    """The refined alpha changes with grain by at most a level more than plain's, and has at
    most 1.5x plain's texture, on average over ``figures`` (``grain_figures``, one per photo);
    and grain adds next to nothing to that texture: the Laplacian also counts how steep an
    edge is, which the clean photo's alpha has as well."""
    plain, refined = (evaluation.BandFigures.mean([f[name] for f in figures]) for name in ("plain", "refine"))
    print(f"grain: change {plain.change:.2f} -> {refined.change:.2f}, texture {plain.texture:.2f} -> {refined.texture:.2f}")
    print(f"refined texture without grain: {refined.own_texture:.2f}")
    assert refined.change <= plain.change + 1.0
    assert refined.texture <= 1.5 * plain.texture
    assert refined.texture <= refined.own_texture + 0.5


@pytest.mark.parametrize(
    "name",
    [
        # Measured: change 16.33 -> 17.01, texture 13.30 -> 10.51, 10.49 without grain (small photos: a narrow band)
        "sod",
        "hires",  # Measured: change 2.51 -> 3.06, texture 1.53 -> 1.97, 2.01 without grain
    ],
)
def test_grain_does_not_become_alpha_texture_on_the_benchmarks(testdata, segmenter, evaluation, name):
    photos = [Image.open(path).convert("RGB") for path, _ in evaluation.photos(testdata(name))]

    assert_grain_robust(evaluation, [evaluation.grain_figures(segmenter, photo, seed=seed) for seed, photo in enumerate(photos)])


# Measured at 4243x2828 and the like: change 2.91 -> 3.26, 3.89 -> 3.25, 0.85 -> 0.99;
# texture 1.05 -> 1.14, 0.74 -> 0.64, 1.36 -> 1.70 (before issue 16, coffee's was 22.6); refined
# without grain 1.21, 0.64, 1.70. Evaluated on raw pixels without the slope cap, the refined
# texture goes from 1.43, 0.67, 2.45 without grain to 5.57, 3.52, 16.84 with it.
@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee"])
def test_grain_does_not_become_alpha_texture_at_12_mp(segmenter, evaluation, name):
    photo = evaluation.upscaled(example_photo(name), 12e6)
    assert refine.DETAIL_SIDE < max(photo.size) / 4  # the case this guards: far more pixels than detail

    assert_grain_robust(evaluation, [evaluation.grain_figures(segmenter, photo, seed=0)])
