"""scripts/eval.py (`make eval`) on folders of photos that are not the research sets."""

import importlib
import sys

import numpy as np
import pytest
from helpers import encode, example_photo
from PIL import Image


@pytest.fixture(scope="module")
def evaluation(repo_root):
    sys.path.insert(0, str(repo_root / "scripts"))
    return importlib.import_module("eval")


def test_a_photo_smaller_than_the_sheets_tiles_is_scored_and_left_off_the_sheet(evaluation, segmenter, tmp_path, capsys):
    # GIVEN a photo smaller than the sheet's tiles and a larger one, each with a mask; the small
    # one's mask is inverted, so that whether it is scored shows in the table's mean MAE
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for stem, (width, height) in {"small": (80, 60), "large": (200, 150)}.items():
        pixels = np.full((height, width, 3), 40, np.uint8)
        pixels[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = (230, 180, 40)
        Image.fromarray(pixels).save(tmp_path / "images" / f"{stem}.png")
        subject = pixels[..., 0] > 100
        truth = subject if stem == "large" else ~subject
        Image.fromarray(truth.astype(np.uint8) * 255).save(tmp_path / "masks" / f"{stem}.png")

    edges = evaluation.evaluate(tmp_path, segmenter, list(evaluation.VARIANTS), None)

    # THEN both are scored: the mean MAE is about half the small one's (~0.8), not the large one's alone (~0.05)
    plain = next(line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("plain "))
    assert 0.25 < float(plain[1]) < 0.6, plain
    # AND only the large one is on the sheet
    assert [edge.name for edge in edges] == ["large"]
    sheet = evaluation.edge_sheet.contact_sheet(edges)
    assert sheet.height > evaluation.edge_sheet.CROP


def rotated_jpeg(photo: Image.Image) -> bytes:
    """The photo stored turned on its side, with the EXIF orientation (6) that turns it upright."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(photo.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=95, exif=exif)


def sixteen_bit_png(photo: Image.Image) -> bytes:
    return encode(Image.fromarray(np.asarray(photo.convert("L"), dtype=np.uint16) * 257), "PNG")


@pytest.mark.parametrize("source", [rotated_jpeg, sixteen_bit_png])
def test_megapixels_upscales_the_photo_the_pipeline_decodes(evaluation, segmenter, tmp_path, source):
    path = tmp_path / "photo.img"
    path.write_bytes(source(example_photo("coffee", (120, 160))))

    photo, _ = evaluation.load(path, None, segmenter)
    upscaled, _ = evaluation.load(path, 0.1, segmenter)

    assert upscaled.width * photo.height == pytest.approx(upscaled.height * photo.width, rel=0.01)  # upright, as decoded
    reduced = np.asarray(upscaled.resize(photo.size, Image.Resampling.BOX), dtype=np.float32)
    assert np.abs(reduced - np.asarray(photo, dtype=np.float32)).mean() < 3  # the same pixels, not white


def test_a_folder_that_does_not_exist_is_a_usage_error_not_a_traceback(evaluation, tmp_path, monkeypatch, capsys):
    # GIVEN `make eval EVAL_PHOTOS=...` with a mistyped folder
    missing = tmp_path / "no-such-photos"
    monkeypatch.setattr(sys, "argv", ["eval.py", str(missing)])
    # WHEN the script starts THEN it says which folder, the way argparse reports bad arguments
    with pytest.raises(SystemExit) as exit_info:
        evaluation.main()
    assert exit_info.value.code == 2
    assert f"{missing} is not a folder" in capsys.readouterr().err
