"""Saliency metrics as the U²-Net paper computes them, for masks against ground truth.

MAE: mean absolute difference in [0, 1], averaged over images.
maxFβ (β² = 0.3): precision and recall at each of 256 thresholds, averaged over images,
then the best F over the thresholds.
Boundary F: mask edges (at 0.5) matched to ground-truth edges within a tolerance of
0.75% of the image diagonal.
"""

import numpy as np
from PIL import Image, ImageFilter

BETA2 = 0.3
THRESHOLDS = np.arange(256)


def mae(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Mean absolute error of two uint8 masks, in [0, 1]."""
    return float(np.abs(prediction.astype(np.float32) - truth.astype(np.float32)).mean() / 255.0)


def precision_recall(prediction: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall of ``prediction >= t`` for t in 0..255 against ``truth > 127``."""
    positive = truth > 127
    hits = np.bincount(prediction[positive].ravel(), minlength=256)[::-1].cumsum()[::-1]
    predicted = np.bincount(prediction.ravel(), minlength=256)[::-1].cumsum()[::-1]
    precision = hits / np.maximum(predicted, 1)
    recall = hits / max(int(positive.sum()), 1)
    return precision, recall


def max_f(precisions: list[np.ndarray], recalls: list[np.ndarray]) -> float:
    precision, recall = np.mean(precisions, axis=0), np.mean(recalls, axis=0)
    f = (1 + BETA2) * precision * recall / np.maximum(BETA2 * precision + recall, 1e-12)
    return float(f.max())


def _edges(binary: np.ndarray) -> np.ndarray:
    image = Image.fromarray(binary.astype(np.uint8) * 255)
    eroded = np.asarray(image.filter(ImageFilter.MinFilter(3))) > 0
    return binary & ~eroded


def _dilate(binary: np.ndarray, radius: int) -> np.ndarray:
    """True within a (2r+1)-pixel square of any True pixel.

    Running sums along each axis cost the same for any radius; Pillow's MaxFilter grows with
    its square and took minutes on the high-resolution set (radius ~25 px).
    """
    dilated = binary
    for axis in (0, 1):
        pad = [(radius + 1, radius) if dimension == axis else (0, 0) for dimension in range(2)]
        counts = np.cumsum(np.pad(dilated, pad), axis=axis, dtype=np.int32)
        upper = np.take(counts, np.arange(2 * radius + 1, counts.shape[axis]), axis=axis)
        lower = np.take(counts, np.arange(0, counts.shape[axis] - 2 * radius - 1), axis=axis)
        dilated = upper > lower
    return dilated


def boundary_f(prediction: np.ndarray, truth: np.ndarray, *, tolerance: float = 0.0075) -> float:
    """F-measure of the mask's edges at 0.5 against the truth's, within ``tolerance`` x diagonal."""
    radius = max(1, round(tolerance * float(np.hypot(*truth.shape))))
    predicted_edges, true_edges = _edges(prediction >= 128), _edges(truth > 127)
    if not predicted_edges.any() or not true_edges.any():
        return float(predicted_edges.any() == true_edges.any())
    precision = (predicted_edges & _dilate(true_edges, radius)).sum() / predicted_edges.sum()
    recall = (true_edges & _dilate(predicted_edges, radius)).sum() / true_edges.sum()
    return float(2 * precision * recall / max(precision + recall, 1e-12))


# Robustness and detail figures: how the alpha inside the uncertain band changes when the photo
# gets sensor grain or is upscaled, and how much texture it has there. No ground truth needed.
UNCERTAIN = (5, 250)  # a plain mask's values strictly between these are its uncertain band
GRAIN_SIGMA = 4.0  # ordinary sensor grain, in levels


def uncertain_band(mask: np.ndarray) -> np.ndarray:
    """Where a (plain) mask is neither settled background nor settled subject."""
    return (mask > UNCERTAIN[0]) & (mask < UNCERTAIN[1])


def with_grain(rgb: np.ndarray, *, sigma: float = GRAIN_SIGMA, seed: int = 0) -> np.ndarray:
    """The photo with independent Gaussian noise of ``sigma`` levels on every channel."""
    noise = np.random.default_rng(seed).normal(0.0, sigma, rgb.shape)
    return np.clip(np.rint(rgb + noise), 0, 255).astype(np.uint8)


def laplacian(alpha: np.ndarray) -> np.ndarray:
    """|4 a - (four neighbours)| per pixel, in levels, edges replicated: texture shows up here."""
    padded = np.pad(alpha.astype(np.float32), 1, mode="edge")
    return np.abs(4 * padded[1:-1, 1:-1] - padded[:-2, 1:-1] - padded[2:, 1:-1] - padded[1:-1, :-2] - padded[1:-1, 2:])


def band_change(alpha: np.ndarray, other: np.ndarray, band: np.ndarray) -> float:
    """Mean absolute difference of two alphas of the same photo inside ``band``, in levels."""
    return float(np.abs(alpha[band].astype(np.float32) - other[band].astype(np.float32)).mean()) if band.any() else 0.0


def band_texture(alpha: np.ndarray, band: np.ndarray) -> float:
    """Mean absolute Laplacian of the alpha inside ``band``, in levels."""
    return float(laplacian(alpha)[band].mean()) if band.any() else 0.0
