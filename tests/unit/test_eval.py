"""scripts/eval.py (`make eval`) on folders of photos that are not the research sets."""

import importlib
import sys

import numpy as np
from PIL import Image


def test_a_photo_smaller_than_the_sheets_tiles_is_scored_and_left_off_the_sheet(repo_root, segmenter, tmp_path):
    sys.path.insert(0, str(repo_root / "scripts"))
    evaluation = importlib.import_module("eval")
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for stem, (width, height) in {"small": (80, 60), "large": (200, 150)}.items():
        pixels = np.full((height, width, 3), 40, np.uint8)
        pixels[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = (230, 180, 40)
        Image.fromarray(pixels).save(tmp_path / "images" / f"{stem}.png")
        Image.fromarray((pixels[..., 0] > 100).astype(np.uint8) * 255).save(tmp_path / "masks" / f"{stem}.png")

    edges = evaluation.evaluate(tmp_path, segmenter, list(evaluation.VARIANTS), None)

    assert [edge.name for edge in edges] == ["large"]
    sheet = evaluation.edge_sheet.contact_sheet(edges)
    assert sheet.height > evaluation.edge_sheet.CROP
