"""A contact sheet of cut-out edges: plain against refined, at 1:1 and 4:1, on white, black
and a checkerboard, one photo per row. The pictures behind eval.py's numbers."""

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from handler import pipeline, refine

CROP = 96  # full-resolution pixels per 1:1 tile
ZOOM = 4
CHECKER = 8  # checkerboard square, in tile pixels
GAP = 6
LABEL_HEIGHT = 14
BACKGROUNDS = ("white", "black", "checker")


@dataclass(frozen=True)
class Edge:
    """One edge crop of a photo: its colours and alpha, plain and refined, as the pipeline makes them."""

    name: str
    plain: tuple[np.ndarray, np.ndarray]  # (CROPxCROPx3 colours, CROPxCROP alpha)
    refined: tuple[np.ndarray, np.ndarray]

    @classmethod
    def of(cls, name: str, photo: Image.Image, mask: np.ndarray) -> "Edge":
        """The crop around the photo's strongest edge inside the mask's uncertain band."""
        rgb = np.asarray(photo)
        guide = refine.working_photo(photo)
        plain, refined = pipeline.shape_mask(mask, None), pipeline.shape_mask(mask, guide)
        top, left = _edge_corner(photo, mask)
        window = (slice(top, top + CROP), slice(left, left + CROP))
        return cls(
            name,
            plain=(refine.foreground_colours(rgb, plain, guide)[window], plain[window]),
            refined=(refine.foreground_colours(rgb, refined, guide)[window], refined[window]),
        )


def _edge_corner(photo: Image.Image, mask: np.ndarray) -> tuple[int, int]:
    """Top-left of the CROP window centred where the photo's contrast is highest along the
    mask's middle levels (found at a quarter of the size, away from the borders)."""
    quarter = (max(1, photo.width // 4), max(1, photo.height // 4))
    grey = np.asarray(photo.convert("L").resize(quarter, Image.Resampling.BOX), dtype=np.float32)
    small = np.asarray(Image.fromarray(mask).resize(quarter, Image.Resampling.BOX))
    contrast = np.zeros_like(grey)
    contrast[1:-1, 1:-1] = np.abs(grey[2:, 1:-1] - grey[:-2, 1:-1]) + np.abs(grey[1:-1, 2:] - grey[1:-1, :-2])
    margin = CROP // 8 + 1
    middle = (small > 96) & (small < 160)
    middle[:margin], middle[-margin:], middle[:, :margin], middle[:, -margin:] = False, False, False, False
    row, column = np.unravel_index(np.argmax(np.where(middle, contrast, -1.0)), contrast.shape)
    top = int(np.clip(row * 4 - CROP // 2, 0, mask.shape[0] - CROP))
    left = int(np.clip(column * 4 - CROP // 2, 0, mask.shape[1] - CROP))
    return top, left


def _background(name: str, size: int) -> np.ndarray:
    if name == "checker":
        y, x = np.mgrid[0:size, 0:size] // CHECKER
        return np.where(((y + x) % 2 == 0)[..., None], 204, 153).repeat(3, axis=-1).astype(np.float32)
    return np.full((size, size, 3), 255.0 if name == "white" else 0.0, np.float32)


def _tiles(colours: np.ndarray, alpha: np.ndarray) -> list[np.ndarray]:
    """The edge composited on each background, at 1:1 and then at ZOOM:1 (its centre, point-sampled)."""
    centre = slice((CROP - CROP // ZOOM) // 2, (CROP + CROP // ZOOM) // 2)
    zoomed = [part[centre, centre].repeat(ZOOM, axis=0).repeat(ZOOM, axis=1) for part in (colours, alpha)]
    tiles = []
    for rgb, weight in ((colours, alpha), zoomed):
        weight = weight[..., None].astype(np.float32) / 255.0
        for name in BACKGROUNDS:
            tiles.append(np.rint(rgb * weight + _background(name, CROP) * (1.0 - weight)).astype(np.uint8))
    return tiles


def contact_sheet(edges: list[Edge]) -> Image.Image:
    """One row per edge: 1:1 plain, 1:1 refined, 4:1 plain, 4:1 refined, each on white, black, checker."""
    groups = [("1:1", 0), ("4:1", 1)]
    columns = len(BACKGROUNDS) * 4
    width = columns * CROP + (columns + 3) * GAP
    height = LABEL_HEIGHT + len(edges) * (CROP + GAP + LABEL_HEIGHT)
    sheet = Image.new("RGB", (width, height), (128, 128, 128))
    draw = ImageDraw.Draw(sheet)
    for row, edge in enumerate(edges):
        y = LABEL_HEIGHT + row * (CROP + GAP + LABEL_HEIGHT)
        draw.text((GAP, y), edge.name, fill=(255, 255, 255))
        tiles = {"plain": _tiles(*edge.plain), "refined": _tiles(*edge.refined)}
        x = GAP
        for label, scale in groups:
            for variant in ("plain", "refined"):
                if row == 0:
                    draw.text((x, 1), f"{label} {variant} (white, black, checker)", fill=(255, 255, 255))
                for tile in tiles[variant][scale * len(BACKGROUNDS) : (scale + 1) * len(BACKGROUNDS)]:
                    sheet.paste(Image.fromarray(tile), (x, y + LABEL_HEIGHT))
                    x += CROP + GAP // 2
                x += GAP
    return sheet
