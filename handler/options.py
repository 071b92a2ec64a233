"""The one Options type, parsed and validated the same way for every entry point.

The API's query string, form fields and JSON body, a cut-out URL's query string, an S3 Batch Operations
job's user arguments and the CLI all build a plain mapping of option names to values and
hand it to ``Options.parse``. Uploads that S3 notifies get the defaults, ``Options()``.
"""

import re
from dataclasses import asdict, dataclass, fields

from .errors import InvalidOption, shown

FORMATS = ("png", "webp", "jpeg")
EXTENSIONS = {"png": ".png", "webp": ".webp", "jpeg": ".jpg"}  # a result's file name or S3 key ends so
MAX_SIZE_LIMIT = 100_000
_COLOUR = re.compile(r"#?([0-9a-fA-F]{6})")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _flag(name: str, value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise InvalidOption(f"{name} must be true or false, not {shown(value)}")


def _colour(value) -> tuple[int, int, int]:
    match = _COLOUR.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match:
        raise InvalidOption(f"background must be a colour like #RRGGBB, not {shown(value)}")
    hex_digits = match.group(1)
    return tuple(int(hex_digits[i : i + 2], 16) for i in (0, 2, 4))


def _max_size(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidOption(f"max_size must be a whole number of pixels, not {shown(value)}")
    try:
        size = int(value)
    except ValueError:
        raise InvalidOption(f"max_size must be a whole number of pixels, not {shown(value)}") from None
    if not 1 <= size <= MAX_SIZE_LIMIT:
        raise InvalidOption(f"max_size must be between 1 and {MAX_SIZE_LIMIT:,}, not {size:,}")
    return size


def _format(value) -> str:
    name = value.strip().lower() if isinstance(value, str) else value
    name = "jpeg" if name == "jpg" else name
    if name not in FORMATS:
        raise InvalidOption(f"format must be png, webp or jpeg, not {shown(value)}")
    return name


@dataclass(frozen=True)
class Options:
    """What to produce from one image.

    format:     png (default), webp, or jpeg (only for outputs without alpha)
    mask:       return the greyscale mask instead of the cut-out
    background: composite onto this RGB colour instead of transparency
    crop:       crop to the subject's bounding box, with a small margin (no subject: not cropped)
    max_size:   longest side of the output in pixels (never upscales)
    store:      write the result to S3 and answer with a link (API only)
    refine:     refine the mask's edges at full resolution, guided by the photo; None (the
                default) does so for photos over twice the model's 320 px input, where the
                upsampled mask is soft. The fringe's colours are cleaned there whatever
                refine says, and below that when refine is True
    hard:       snap near-0 and near-1 mask values for crisp product cut-outs
    """

    format: str = "png"
    mask: bool = False
    background: tuple[int, int, int] | None = None
    crop: bool = False
    max_size: int | None = None
    store: bool = False
    refine: bool | None = None
    hard: bool = False

    @property
    def has_alpha(self) -> bool:
        return not self.mask and self.background is None

    @classmethod
    def parse(cls, values: dict) -> "Options":
        """Validate a mapping of option names to JSON values or query-string strings."""
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            names = ", ".join(f.name for f in fields(cls))
            raise InvalidOption(f"unknown option {shown(unknown[0])}; options are {names}")
        parsed = {}
        for name, value in values.items():
            if value is None:
                continue
            if name == "format":
                parsed[name] = _format(value)
            elif name == "background":
                parsed[name] = _colour(value)
            elif name == "max_size":
                parsed[name] = _max_size(value)
            else:
                parsed[name] = _flag(name, value)
        options = cls(**parsed)
        if options.mask and options.background is not None:
            raise InvalidOption("mask and background cannot be combined: a mask has no background")
        if options.format == "jpeg" and options.has_alpha:
            raise InvalidOption("format jpeg has no alpha channel: use it with background or mask")
        return options

    def to_dict(self) -> dict:
        """The options as JSON-friendly values (for metadata and result keys)."""
        values = asdict(self)
        if self.background is not None:
            values["background"] = "#{:02x}{:02x}{:02x}".format(*self.background)
        return values
