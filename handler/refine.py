"""Edge refinement of the upsampled mask and foreground colours for its fringe.

U²-NetP predicts 320x320; on a 12 MP photo one mask cell covers ~12x12 pixels, so the
upsampled edge is soft. Both functions here do their heavy work (box filters) at a
working size of at most ``WORK_SIDE`` pixels and touch full-resolution pixels only in
the uncertain band of the mask. The mask's edge follows a linear model of the photo's
colours fitted at the working size (the "fast guided filter" of He & Sun 2015), evaluated
on the photo box-reduced to ``DETAIL_SIDE`` rather than on raw pixels, with slopes capped
so that sensor grain cannot become alpha texture; full-resolution pixels only sample that
result bilinearly. Both take the same reduced copies of the photo, made once by
``working_photo``. Pure numpy and Pillow: arrays in, new arrays out.
"""

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .imaging import fit_within
from .parallel import SERIAL, STRIP_ROWS, StripPool, row_strips, strip_rows

# Long side of the working size: the model's own resolution. The mask holds nothing finer.
WORK_SIDE = 320
# Long side where the fitted model meets the photo. Finer placed the edge no better on
# hires (boundary F 0.6017 at 800, 0.603 at 640) and made it steeper than the model's
# (mean |Laplacian| in the band 2.6 against 1.6 plain); 320 kept boundary F near plain's.
DETAIL_SIDE = 640
# Sensor grain (Gaussian sigma, levels, at full resolution) that must not reach the alpha
# by more than ALPHA_GRAIN levels: caps the guided filter's slopes (see _edge_field).
GRAIN = 4.0
ALPHA_GRAIN = 2.0
CELL = 320  # the model's output size: radii below are in its cells
EDGE_RADIUS = 1.0  # guided-filter window radius, in model cells
EDGE_EPSILON = 1e-3  # guided-filter regulariser (colour variance, 0-1 units)
# Upsampled, the model's soft edge is best cut below 0.5 (thin parts fall under 0.5 when
# one cell spreads over many pixels), so LEVEL_KNEE becomes the new 0.5 as far as the
# upsampling lost detail (not at all at the model's own size); settled pixels (outside
# BAND) become exactly 0 or 255, which lowers MAE and saves the PNG their colour.
LEVEL_KNEE = 0.3
BAND = (5, 250)  # within 2% of 0 or 255 counts as settled: neither refined nor recoloured
# The move fades in over this many levels of the model's mask from each end of BAND, so the
# refined band meets the settled pixels around it without a step: one level inside, a pixel
# moves at most 255 / BAND_FADE = 8 levels, what settling counts as haze. Moved in full up to
# the ends, band pixels jumped up to ~70 levels from their settled neighbours, and the jumps
# lined up into stair-stepped lines along the band (at 4:1, on a rope's edge and a saucer's rim).
BAND_FADE = 32
# The band's share of the way to the photo's edge is the share of detail the upsampling lost,
# 1 - CELL / side, times MOVE_GAIN, up to 1: the whole way from 1920 px up, falling to none at
# the model's own size, where a full move cost SOD maxFβ. Without the gain the band stopped
# short of edges the photo shows (hires boundary F 0.0017 lower).
MOVE_GAIN = 1.2
SHIFTED_SUM_RADIUS = 3  # box filters this small are cheaper as shifted sums than as running sums
COLOUR_RADII = (0.25, 0.02)  # blur-fusion radii as fractions of the working long side

_UPPER = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))  # the distinct entries of a symmetric 3x3
_DIAGONAL = [0, 3, 5]  # where (0, 0), (1, 1) and (2, 2) sit in _UPPER


def _box(pixels: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, edges replicated; HxW or HxWxC float32."""
    if radius <= SHIFTED_SUM_RADIUS:
        return _shifted_box(pixels, radius)
    pad = [(radius + 1, radius), (0, 0)] + [(0, 0)] * (pixels.ndim - 2)
    summed = np.cumsum(np.pad(pixels, pad, mode="edge"), axis=0, dtype=np.float32)
    rows = summed[2 * radius + 1 :] - summed[: -2 * radius - 1]
    pad = [(0, 0), (radius + 1, radius)] + [(0, 0)] * (pixels.ndim - 2)
    summed = np.cumsum(np.pad(rows, pad, mode="edge"), axis=1, dtype=np.float32)
    return (summed[:, 2 * radius + 1 :] - summed[:, : -2 * radius - 1]) / np.float32((2 * radius + 1) ** 2)


def _shifted_box(pixels: np.ndarray, radius: int) -> np.ndarray:
    """The same mean as _box, as a sum of shifted copies: cheaper than running sums for small windows."""
    height, width = pixels.shape[:2]
    padded = np.pad(pixels, [(radius, radius), (radius, radius)] + [(0, 0)] * (pixels.ndim - 2), mode="edge")
    rows = padded[:height].copy()
    for shift in range(1, 2 * radius + 1):
        rows += padded[shift : shift + height]
    total = rows[:, :width].copy()
    for shift in range(1, 2 * radius + 1):
        total += rows[:, shift : shift + width]
    total /= np.float32((2 * radius + 1) ** 2)
    return total


def _reduce(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The image box-reduced to ``size``: an integer ``reduce`` first, about three times
    faster on a 12 MP photo than one resize all the way down."""
    factor = min(image.width // size[0], image.height // size[1])
    if factor >= 2:
        image = image.reduce(factor)
    return image if image.size == size else image.resize(size, Image.Resampling.BOX)


def _reduced(image: Image.Image) -> np.ndarray:
    """The image box-reduced to the working size (long side at most WORK_SIDE), as float32 in 0-1."""
    return np.asarray(_reduce(image, fit_within(image.size, WORK_SIDE)), dtype=np.float32) / 255.0


@dataclass(frozen=True)
class Guide:
    """The photo at the two sizes the refinement reads it at, float32 RGB in 0-1.

    ``work`` (long side WORK_SIDE) is where the box filters run; ``detail`` (long side
    DETAIL_SIDE) is where the fitted edge model meets the photo's own pixels. Box-reducing
    averages grain away: each detail pixel is the mean of ``grain_factor``² photo pixels.
    """

    work: np.ndarray
    detail: np.ndarray
    grain_factor: float


def working_photo(photo: Image.Image) -> Guide:
    """The RGB photo reduced to the working and detail sizes: the guide both steps below take.

    Made from the decoded image rather than its array, and once: an RGB array back into
    Pillow costs a full-size copy (~35 ms at 12 MP).
    """
    detail = _reduce(photo, fit_within(photo.size, DETAIL_SIDE))
    work = _reduce(detail, fit_within(photo.size, WORK_SIDE))
    as_floats = [np.asarray(image, dtype=np.float32) / 255.0 for image in (work, detail)]
    return Guide(*as_floats, grain_factor=max(photo.size) / max(detail.size))


def _solve_symmetric(upper: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """x with M @ x = vector for stacks of symmetric positive 3x3 systems M, by the adjugate.

    Several times faster than np.linalg.solve on a few hundred thousand tiny systems.

    :param upper: ...x6, the entries of M at ``_UPPER``.
    """
    xx, xy, xz, yy, yz, zz = np.moveaxis(upper, -1, 0)
    adjugate = np.stack(
        [yy * zz - yz * yz, xz * yz - xy * zz, xy * yz - xz * yy, xx * zz - xz * xz, xy * xz - xx * yz, xx * yy - xy * xy],
        axis=-1,
    )
    determinant = xx * adjugate[..., 0] + xy * adjugate[..., 1] + xz * adjugate[..., 2]
    ixx, ixy, ixz, iyy, iyz, izz = np.moveaxis(adjugate, -1, 0)
    vx, vy, vz = np.moveaxis(vector, -1, 0)
    solution = np.stack([ixx * vx + ixy * vy + ixz * vz, ixy * vx + iyy * vy + iyz * vz, ixz * vx + iyz * vy + izz * vz], axis=-1)
    return solution / determinant[..., None]


def _upper_products(colours: np.ndarray) -> np.ndarray:
    """...x6 products of colour channel pairs at ``_UPPER``: a symmetric 3x3 needs no more."""
    return np.stack([colours[..., i] * colours[..., j] for i, j in _UPPER], axis=-1)


def _guided_coefficients(guide: np.ndarray, target: np.ndarray, radius: int, epsilon: float, slope_limit: float) -> np.ndarray:
    """HxWx4 (a_r, a_g, a_b, b) of the colour guided filter: target ~ a . guide + b locally.

    Each window's slopes are capped at ``slope_limit`` (their length), then its offset
    refitted, so that no colour difference smaller than the noise the guide may carry can
    swing the target by more than the cap allows.
    """
    products = _upper_products(guide)
    means = _box(np.concatenate([guide, target[..., None], guide * target[..., None], products], axis=-1), radius)
    mean_guide, mean_target = means[..., 0:3], means[..., 3]
    covariance = means[..., 4:7] - mean_guide * mean_target[..., None]
    variance = means[..., 7:13] - _upper_products(mean_guide)
    variance[..., _DIAGONAL] += np.float32(epsilon)
    a = _solve_symmetric(variance, covariance)
    length = np.sqrt((a * a).sum(axis=-1, keepdims=True))
    a *= np.minimum(1.0, slope_limit / np.maximum(length, 1e-12))
    b = mean_target - (a * mean_guide).sum(axis=-1)
    return _box(np.concatenate([a, b[..., None]], axis=-1), radius)


@dataclass(frozen=True)
class _Grid:
    """Bilinear sampling of a small field at full-resolution pixels: for each full-resolution
    row and column, the two field cells around its centre and the weight of the second."""

    rows: tuple[np.ndarray, np.ndarray, np.ndarray]
    columns: tuple[np.ndarray, np.ndarray, np.ndarray]

    @classmethod
    def between(cls, field_shape: tuple[int, int], full_shape: tuple[int, int]) -> "_Grid":
        return cls(*(_axis(full, field) for full, field in zip(full_shape, field_shape, strict=True)))

    def sample(self, field: np.ndarray, rows: slice, flat: np.ndarray) -> np.ndarray:
        """The field (HxW or HxWxC) at the pixels of a strip of rows given by flat indices within it.

        Separable: the field's rows are blended once for each row of the strip (a few hundred
        cells each), so each pixel costs two gathers and one blend instead of four and three.
        """
        top, bottom, down = (part[rows] for part in self.rows)
        blended = field[top]
        blended += (field[bottom] - blended) * down.reshape((-1,) + (1,) * (field.ndim - 1))
        cells = blended.reshape(-1, *field.shape[2:])
        row, column = np.divmod(flat, self.columns[0].size)
        row *= field.shape[1]
        left, right, across = (part[column] for part in self.columns)
        left += row
        right += row
        if field.ndim == 3:
            across = across[:, None]
        sampled = cells.take(left, axis=0)
        sampled += (cells.take(right, axis=0) - sampled) * across
        return sampled


def _axis(full: int, field: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per full-resolution index along one axis: (lower cell, upper cell, weight of the upper)."""
    position = np.clip((np.arange(full, dtype=np.float32) + 0.5) * np.float32(field / full) - 0.5, 0, field - 1)
    lower = position.astype(np.int32)
    return lower, np.minimum(lower + 1, field - 1), position - lower


def _unsure(mask: np.ndarray, rows: slice) -> np.ndarray:
    """Flat indices, within the strip of rows, of the pixels whose mask value is inside BAND."""
    strip = mask[rows]
    return np.flatnonzero((strip > BAND[0]) & (strip < BAND[1]))


def _pixels(rgb: np.ndarray, strip: slice, flat: np.ndarray) -> np.ndarray:
    """The Nx3 colours of a strip's pixels at flat indices (``take``: 4x faster than indexing)."""
    return rgb[strip].reshape(-1, 3).take(flat, axis=0)


def _resized(field: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An HxWxC float32 field resized bilinearly to ``size`` (width, height), channel by channel."""
    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(field[..., c])).resize(size, Image.Resampling.BILINEAR))
        for c in range(field.shape[-1])
    ]
    return np.stack(channels, axis=-1)


def _edge_field(guide: Guide, levelled: Image.Image, weight: float) -> np.ndarray:
    """The edge the photo supports, in 0-255, at twice the detail size or the photo's own if
    smaller: the guided filter fitted at the working size to the levelled mask, evaluated on
    the detail-size photo, then enlarged with Lanczos.

    The filter fits the levelled mask itself: a steepened copy kept the edge nearer the
    model's (hires boundary F 0.0018 lower). Pixels sample the result bilinearly; sampled
    straight from the detail size, thin parts (a rope, a handle) fell under 0.5 where
    Lanczos's lobes keep them (hires boundary F 0.0020 lower).
    """
    coarse = _reduced(levelled)
    radius = max(1, round(EDGE_RADIUS * max(coarse.shape) / CELL))
    # Grain of GRAIN levels in the photo is GRAIN / grain_factor in the detail guide; the
    # slopes are capped so that it moves the refined alpha by at most ALPHA_GRAIN levels.
    # Strong edges need small slopes and keep them; only edges whose contrast is near the
    # grain's are flattened, and there the mask stays as the model gave it.
    slope_limit = ALPHA_GRAIN * guide.grain_factor / (GRAIN * max(weight, 1e-6))
    coefficients = _guided_coefficients(guide.work, coarse, radius, EDGE_EPSILON, slope_limit)
    detail_height, detail_width = guide.detail.shape[:2]
    coefficients = _resized(coefficients, (detail_width, detail_height))
    snapped = (coefficients[..., :3] * guide.detail).sum(axis=-1) + coefficients[..., 3]
    enlargement = min(2.0, guide.grain_factor)  # twice the detail size, or the photo's own if smaller
    if enlargement > 1.0:
        size = (round(detail_width * enlargement), round(detail_height * enlargement))
        snapped = np.asarray(Image.fromarray(snapped, "F").resize(size, Image.Resampling.LANCZOS))
    return np.clip(snapped * np.float32(255.0), 0.0, 255.0)


def _moved_rows(
    rows: slice, flat: np.ndarray, mask: np.ndarray, levelled: np.ndarray, edge: np.ndarray, grid: _Grid, shares: np.ndarray
) -> np.ndarray:
    """Rows of the levelled mask with the band pixels at ``flat`` moved towards ``edge`` by the
    share ``_shares`` gives each value of the model's mask."""
    moved = levelled[rows].copy()
    if flat.size:
        before = moved.ravel()[flat].astype(np.float32)
        share = shares.take(mask[rows].ravel().take(flat))
        after = before + share * (grid.sample(edge, rows, flat) - before)
        moved.ravel()[flat] = np.clip(np.rint(after), 0.0, 255.0).astype(np.uint8)
    return moved


def _smoothed_rows(rows: slice, flat: np.ndarray, moved: np.ndarray) -> np.ndarray:
    """Rows of the moved mask with the band pixels at ``flat`` smoothed by the 3x3 binomial.

    The move blends two fields sampled on different grids and rounds once, which leaves a
    pixel-to-pixel speckle the photo does not have: the band's mean |Laplacian| on hires was
    2.47 unsmoothed against plain's 1.53, and is 1.97. The binomial is the smallest kernel
    that removes the alternation from one pixel to the next entirely (its response at the
    Nyquist frequency is zero); it moves the 0.5 crossing by under a pixel (hires boundary F
    0.0005 lower). Computed only over the band's columns in these rows, plus the one either side.
    """
    smoothed = moved[rows].copy()
    if flat.size:
        height, width = moved.shape
        row, column = np.divmod(flat, width)
        left, right = int(column.min()), int(column.max()) + 1
        top, bottom = max(rows.start - 1, 0), min(rows.stop + 1, height)
        first, last = max(left - 1, 0), min(right + 1, width)
        pad = ((1 - (rows.start - top), 1 - (bottom - rows.stop)), (1 - (left - first), 1 - (last - right)))
        window = np.pad(moved[top:bottom, first:last], pad, mode="edge").astype(np.uint16)
        down = window[:-2] + window[2:] + 2 * window[1:-1]
        across = down[:, :-2] + down[:, 2:] + 2 * down[:, 1:-1]
        smoothed[row, column] = ((across[row, column - left] + 8) >> 4).astype(np.uint8)
    return smoothed


def _levels(knee: float) -> np.ndarray:
    """The 256-entry level curve that makes ``knee`` the new 0.5 and settles BAND's ends."""
    curve = ([0, BAND[0], 255 * knee, BAND[1], 255], [0, 0, 127.5, 255, 255])  # (mask in, out)
    return np.rint(np.interp(np.arange(256), *curve)).astype(np.uint8)


def _shares(weight: float) -> np.ndarray:
    """Per value of the model's mask, the share of the way to the photo's edge it moves:
    ``weight`` times MOVE_GAIN (at most 1), faded in over BAND_FADE levels from each end of
    BAND (float32, 256 entries)."""
    values = np.arange(256, dtype=np.float32)
    inside = np.clip(np.minimum(values - BAND[0], BAND[1] - values) / BAND_FADE, 0.0, 1.0)
    return (inside * min(1.0, weight * MOVE_GAIN)).astype(np.float32)


def refine_mask(mask: np.ndarray, guide: Guide, *, strips: StripPool = SERIAL) -> np.ndarray:
    """The HxW uint8 mask with its uncertain band moved towards the photo's own edges.

    Confident pixels (the coarse mask outside ``BAND``) only get the level curve, so
    the interior and the far background cannot drift, and the band's move fades in from
    its ends (``BAND_FADE``), so the band meets them without a step. The moved band is
    then smoothed at the pixel scale (``_smoothed_rows``).

    :param mask: HxW uint8 coarse mask at the photo's size.
    :param guide: ``working_photo`` of the photo.
    :param strips: the pool that runs the full-resolution strips.
    :return: a new HxW uint8 mask.
    """
    # How far the band moves to the photo's edge: the share of detail the upsampling lost.
    # At the model's own size there is none to recover (the mask only gets its ends
    # settled); at 12 MP (12x) it is 0.92. The knee moves with it, for the same reason, and
    # the move goes MOVE_GAIN times as far.
    weight = max(0.0, 1.0 - CELL / max(mask.shape))
    levelled_image = Image.fromarray(mask).point(_levels(0.5 - (0.5 - LEVEL_KNEE) * weight).tolist())  # a C lookup, 3x numpy's
    levelled = np.asarray(levelled_image)
    if weight == 0.0:
        return levelled.copy()
    edge = _edge_field(guide, levelled_image, weight)
    grid = _Grid.between(edge.shape, mask.shape)
    shares = _shares(weight)
    moved = np.empty_like(levelled)
    smoothed = np.empty_like(levelled)

    def move_strip(rows: slice) -> np.ndarray:
        flat = _unsure(mask, rows)
        moved[rows] = _moved_rows(rows, flat, mask, levelled, edge, grid, shares)
        return flat

    def smooth_strip(strip: tuple[slice, np.ndarray]) -> None:
        smoothed[strip[0]] = _smoothed_rows(*strip, moved)

    # Two passes, since smoothing a strip reads the moved rows on either side of it.
    strips_of_rows = row_strips(mask.shape[0], strip_rows(mask.shape[1], STRIP_ROWS))
    bands = strips.map(move_strip, strips_of_rows)
    strips.map(smooth_strip, zip(strips_of_rows, bands, strict=True))
    return smoothed


def _blur_fusion(foreground: np.ndarray, background: np.ndarray, alpha: np.ndarray, radius: int):
    """One step of Forte & Pitié's blur-fusion estimate: (foreground, background) means."""
    weight = alpha[..., None]
    blurred_alpha = _box(weight, radius)
    mean_foreground = _box(foreground * weight, radius) / (blurred_alpha + 1e-5)
    mean_background = _box(background * (1 - weight), radius) / (1 - blurred_alpha + 1e-5)
    return mean_foreground, mean_background


def _unmix(image: np.ndarray, alpha: np.ndarray, foreground: np.ndarray, background: np.ndarray) -> np.ndarray:
    """F = F_mean + a (I - a F_mean - (1 - a) B_mean): the colour that, mixed with B at a, gives I.

    Colours in any unit, alpha in 0-1; not clipped. In place on two temporaries: on a 12 MP
    fringe this runs on millions of pixels.
    """
    weight = alpha[..., None]
    spread = foreground - background
    spread *= weight
    unmixed = image - background
    unmixed -= spread
    unmixed *= weight
    unmixed += foreground
    return unmixed


def _recolour_rows(rows: slice, rgb: np.ndarray, alpha: np.ndarray, means: np.ndarray, grid: _Grid, out: np.ndarray) -> None:
    """Write rows of the photo into ``out``, which may be ``rgb`` itself: the fringe's pixels
    unmixed from the sampled colour means, the others as they are."""
    if out is not rgb:
        out[rows] = rgb[rows]
    flat = _unsure(alpha, rows)
    if flat.size:
        colours = _pixels(rgb, rows, flat).astype(np.float32)
        fringe_alpha = alpha[rows].ravel()[flat].astype(np.float32) / 255.0
        local = grid.sample(means, rows, flat)
        unmixed = _unmix(colours, fringe_alpha, local[:, :3], local[:, 3:])
        np.clip(unmixed, 0.0, 255.0, out=unmixed)
        # Each pixel as one 3-byte scalar: three times faster to scatter than rows of three
        out[rows].reshape(-1, 3).view("V3").ravel()[flat] = np.rint(unmixed, out=unmixed).astype(np.uint8).view("V3").ravel()


def foreground_colours(
    rgb: np.ndarray, alpha: np.ndarray, guide: Guide, *, strips: StripPool = SERIAL, in_place: bool = False
) -> np.ndarray:
    """The photo with semi-transparent pixels recoloured to their estimated foreground.

    Approximate fast foreground colour estimation (Forte & Pitié 2020): blur-fusion means
    of subject and background at the working size, a wide pass then a narrow one; the
    final unmixing runs at full resolution on the fringe (alpha inside BAND) only, so a
    cut-out on a new background shows no halo of the old one. The means are sampled
    bilinearly, and the unmixing passes each pixel's own colour through with weight alpha,
    so opaque pixels are unchanged and near-opaque ones get no more grain than they had.

    :param rgb: HxWx3 uint8 photo.
    :param alpha: HxW uint8 alpha of the cut-out.
    :param guide: ``working_photo`` of the photo.
    :param strips: the pool that runs the full-resolution strips.
    :param in_place: recolour ``rgb`` itself (each strip reads only its own rows), where a new
        array would add its size to the pipeline's peak: 36 MB at 12 MP.
    :return: a new HxWx3 uint8 array, or ``rgb`` itself where ``in_place`` or no pixel is in the fringe.
    """
    if not ((alpha > BAND[0]) & (alpha < BAND[1])).any():
        return rgb
    photo = guide.work
    weight = _reduced(Image.fromarray(alpha))
    foreground = background = photo
    for fraction in COLOUR_RADII:
        radius = max(1, round(fraction * max(weight.shape)))
        mean_foreground, mean_background = _blur_fusion(foreground, background, weight, radius)
        foreground = np.clip(_unmix(photo, weight, mean_foreground, mean_background), 0.0, 1.0)
        background = mean_background
    means = np.concatenate([mean_foreground, mean_background], axis=-1) * np.float32(255.0)  # to the photo's units
    grid = _Grid.between(means.shape[:2], alpha.shape)
    result = rgb if in_place else np.empty_like(rgb)
    strips.over_rows(
        lambda rows: _recolour_rows(rows, rgb, alpha, means, grid, result), alpha.shape[0], strip_rows(alpha.shape[1], STRIP_ROWS)
    )
    return result
