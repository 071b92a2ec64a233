"""Options.parse: one set of rules and messages for query strings, JSON bodies and the CLI."""

import re

import pytest

from handler.errors import InvalidOption
from handler.options import MAX_SIZE_LIMIT, Options


def test_no_values_give_the_defaults():
    assert Options.parse({}) == Options()
    assert Options() == Options(format="png", mask=False, background=None, crop=False, max_size=None, store=False, hard=False)


def test_none_values_are_ignored():
    assert Options.parse({"format": None, "background": None, "max_size": None, "crop": None}) == Options()


def test_unknown_option_is_named_with_the_valid_ones():
    with pytest.raises(InvalidOption) as raised:
        Options.parse({"formt": "png"})

    assert "'formt'" in raised.value.message
    assert "format, mask, background, crop, max_size, store" in raised.value.message
    assert raised.value.status == 400


@pytest.mark.parametrize(
    "value, expected",
    [("png", "png"), ("webp", "webp"), ("PNG", "png"), (" WebP ", "webp")],
)
def test_format(value, expected):
    assert Options.parse({"format": value}).format == expected


@pytest.mark.parametrize("value", ["gif", "tiff", "", 5, True])
def test_bad_format_names_the_value_and_the_choices(value):
    with pytest.raises(InvalidOption, match=re.escape(f"format must be png, webp or jpeg, not {value!r}")):
        Options.parse({"format": value})


@pytest.mark.parametrize("value", ["jpeg", "jpg", "JPG"])
def test_jpeg_needs_a_background_or_a_mask(value):
    with pytest.raises(InvalidOption, match="format jpeg has no alpha channel: use it with background or mask"):
        Options.parse({"format": value})

    assert Options.parse({"format": value, "mask": True}).format == "jpeg"
    assert Options.parse({"format": value, "background": "#ffffff"}).format == "jpeg"


@pytest.mark.parametrize(
    "value, expected",
    [("#ff8000", (255, 128, 0)), ("FF8000", (255, 128, 0)), ("#00aAfF", (0, 170, 255)), (" #000000 ", (0, 0, 0))],
)
def test_background_colour(value, expected):
    options = Options.parse({"background": value})

    assert options.background == expected
    assert not options.has_alpha


@pytest.mark.parametrize("value", ["#GGG", "#GGGGGG", "#fff", "#ff80001", "red", "", 255, [255, 0, 0]])
def test_bad_background_names_the_value_and_the_rule(value):
    with pytest.raises(InvalidOption, match=re.escape(f"background must be a colour like #RRGGBB, not {value!r}")):
        Options.parse({"background": value})


def test_mask_and_background_cannot_be_combined():
    with pytest.raises(InvalidOption, match="mask and background cannot be combined"):
        Options.parse({"mask": True, "background": "#ffffff"})


@pytest.mark.parametrize(
    "value, expected", [(1, 1), (1024, 1024), ("1024", 1024), (" 640 ", 640), (MAX_SIZE_LIMIT, MAX_SIZE_LIMIT)]
)
def test_max_size(value, expected):
    assert Options.parse({"max_size": value}).max_size == expected


@pytest.mark.parametrize("value", [0, -1, "0", "-1", MAX_SIZE_LIMIT + 1, 10**9])
def test_max_size_out_of_range_names_the_range(value):
    with pytest.raises(InvalidOption, match=f"max_size must be between 1 and {MAX_SIZE_LIMIT:,}, not {int(value):,}"):
        Options.parse({"max_size": value})


@pytest.mark.parametrize("value", ["abc", "1e9", "12.5", "", 1e9, 512.0, True, [512]])
def test_max_size_that_is_not_a_whole_number_is_refused(value):
    with pytest.raises(InvalidOption, match=re.escape(f"max_size must be a whole number of pixels, not {value!r}")):
        Options.parse({"max_size": value})


@pytest.mark.parametrize("name", ["mask", "crop", "store", "refine", "hard"])
@pytest.mark.parametrize(
    "value, expected",
    [(True, True), (False, False), ("true", True), ("false", False), ("1", True), ("0", False), ("TRUE", True), ("off", False)],
)
def test_flags_accept_booleans_and_their_spellings(name, value, expected):
    assert getattr(Options.parse({name: value}), name) is expected


@pytest.mark.parametrize("value", ["maybe", "", "2", 1, 0, "yes please"])
def test_bad_flag_names_the_option_and_the_value(value):
    with pytest.raises(InvalidOption, match=re.escape(f"crop must be true or false, not {value!r}")):
        Options.parse({"crop": value})


def test_has_alpha_only_for_a_plain_cutout():
    assert Options().has_alpha
    assert not Options(mask=True).has_alpha
    assert not Options(background=(1, 2, 3)).has_alpha


def test_to_dict_round_trips_through_parse():
    options = Options.parse({"format": "webp", "background": "#0a0B0c", "crop": "true", "max_size": "800", "hard": "1"})

    values = options.to_dict()

    assert values["background"] == "#0a0b0c"
    assert Options.parse(values) == options


def test_options_are_frozen():
    with pytest.raises(AttributeError):
        Options().mask = True
