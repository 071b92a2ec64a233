"""web/index.html for people who use a keyboard only, a screen reader, zoom or a small screen, in Chromium
against `scripts/serve.py --local-s3`.

The axe-core check needs axe.min.js, which the repo does not ship: `npm install axe-core@4` in a folder
outside the repo and set AXE_CORE_JS to its node_modules/axe-core/axe.min.js; without it the check skips.
"""

import io
import os
from pathlib import Path

import pytest
from PIL import Image

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is missing: pip install -r requirements-dev.txt"
)
expect = sync_api.expect

PHOTO = Path(__file__).resolve().parents[2] / "examples" / "chelsea.jpg"  # 451x300, CC0
RESULT_LOADED = "document.querySelector('#result').complete && document.querySelector('#result').naturalWidth > 0"
ACTIVE_ID = "document.activeElement.id"
AXE_CORE_JS = os.environ.get("AXE_CORE_JS", "")
# axe-core's findings as "rule: selectors", one a line, so a failure says what to fix and where.
AXE_VIOLATIONS = """async () => (await axe.run(document)).violations
  .map((violation) => `${violation.id}: ${violation.nodes.map((node) => node.target.join(" ")).join(", ")}`)"""


def tab_to(page, element_id: str) -> None:
    """Press Tab until the element has the keyboard focus, as a person would (at most 30 presses)."""
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate(ACTIVE_ID) == element_id:
            return
    raise AssertionError(f"#{element_id} is never reached with Tab")


def around(page, selector: str, margin: int = 8) -> bytes:
    """The pixels of an element and a margin around it (where an outline is drawn)."""
    box = page.locator(selector).bounding_box()
    clip = {"x": box["x"] - margin, "y": box["y"] - margin}
    clip.update(width=box["width"] + 2 * margin, height=box["height"] + 2 * margin)
    return Image.open(io.BytesIO(page.screenshot(clip=clip))).convert("RGB").tobytes()


def luminance(rgb) -> float:
    """WCAG's relative luminance of an sRGB colour given as 0-255 values."""
    linear = [c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(page, selector: str) -> float:
    """WCAG's contrast ratio of an element's text colour against the background it is drawn on (the
    most common colour of its pixels on screen)."""
    text = page.eval_on_selector(selector, "(element) => getComputedStyle(element).color")
    text = [int(c) for c in text[text.index("(") + 1 : -1].split(",")[:3]]
    shown = Image.open(io.BytesIO(page.locator(selector).screenshot())).convert("RGB")
    background = max(shown.getcolors(shown.width * shown.height))[1]
    lighter, darker = sorted([luminance(text), luminance(background)], reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_the_file_chooser_shows_where_the_keyboard_focus_is(page):
    # GIVEN the page as it opens, and how the drop zone looks without focus
    unfocused = around(page, "#drop")

    # WHEN the first Tab reaches the file input (hidden, inside the drop zone's label)
    page.keyboard.press("Tab")

    # THEN the drop zone shows the focus
    assert page.evaluate(ACTIVE_ID) == "file"
    shown = around(page, "#drop") != unfocused
    assert shown, "the focused file input is not shown at all"
    # (Space on it opens the browser's own file chooser; headless Chromium does not always raise that
    # event, so the test stops at the focus, which is the page's part.)


def test_options_submit_and_download_by_keyboard_keep_the_focus_on_the_button(page):
    # GIVEN a photo already cut out once, and the next answers held back until released
    page.set_input_files("#file", PHOTO)
    page.wait_for_function(RESULT_LOADED)
    held = []
    page.route("**/remove?*", lambda route: held.append(route))

    # WHEN a max size is typed and "Remove background" pressed with Enter, by keyboard only
    tab_to(page, "max-size")
    page.keyboard.type("200")
    tab_to(page, "send")
    page.keyboard.press("Enter")
    while not held:
        page.wait_for_timeout(50)

    # THEN while it works the focus stays on the button (a disabled button would drop it to the page)
    assert page.evaluate(ACTIVE_ID) == "send"
    # AND a second press meanwhile sends nothing
    page.keyboard.press("Enter")
    page.wait_for_timeout(500)
    assert len(held) == 1

    # AND when the answer comes, the focus is still there, and the next Tab reaches the download
    held[0].continue_()
    expect(page.locator("#result-info")).to_contain_text("200×133")
    assert page.evaluate(ACTIVE_ID) == "send"
    page.keyboard.press("Tab")
    assert page.evaluate(ACTIVE_ID) == "download"
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    assert Image.open(download.value.path()).size == (200, 133)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_error_messages_are_readable_in_light_and_dark_mode(page, tmp_path, scheme):
    # GIVEN the page in the colour scheme the system asks for (it declares both)
    page.emulate_media(color_scheme=scheme)
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"this is a shopping list, not a photo\n")
    expect(page.locator("#cutout-status")).to_contain_text("loaded in")

    # WHEN the API refuses a text file, and the cut-out URL's options (JPEG without a background)
    page.set_input_files("#file", notes)
    page.select_option("#format", "jpeg")
    expect(page.locator("#status")).to_have_class("error")
    expect(page.locator("#cutout-status")).to_have_class("error")

    # THEN both errors' text has WCAG AA contrast (4.5:1) against the page behind it
    for status in ("#status", "#cutout-status"):
        assert contrast(page, status) >= 4.5, (status, contrast(page, status))


# Every element, form control or not, that reaches past the right edge of the window.
STICKING_OUT = """() => [...document.querySelectorAll("body *")]
  .filter((element) => element.getBoundingClientRect().right > window.innerWidth)
  .map((element) => `${element.tagName.toLowerCase()}#${element.id}`)"""


@pytest.mark.parametrize("width", [360, 320])
def test_nothing_sticks_out_sideways_on_a_narrow_screen_or_at_400_percent_zoom(page, artifacts, width):
    # GIVEN a 360 px phone, or 320 CSS px: a 1280 px window at 400% zoom, where WCAG asks for no
    # sideways scrolling (1.4.10 Reflow)
    page.set_viewport_size({"width": width, "height": 740})

    # WHEN a photo has been cut out
    page.set_input_files("#file", PHOTO)
    page.wait_for_function(RESULT_LOADED)
    page.screenshot(path=artifacts / f"demo-page-{width}px.png", full_page=True)

    # THEN no part of the page, the result included, reaches past the window's right edge
    assert page.evaluate(STICKING_OUT) == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.fixture
def axe(page):
    """Runs axe-core on the page as it is now; answers its violations."""
    if not Path(AXE_CORE_JS).is_file():
        pytest.skip(
            f"AXE_CORE_JS={AXE_CORE_JS!r} is not an axe.min.js: `npm install axe-core@4` outside the repo "
            "and set AXE_CORE_JS to its node_modules/axe-core/axe.min.js"
        )
    script = Path(AXE_CORE_JS).read_text()

    def run() -> list[str]:
        page.add_script_tag(content=script)
        return page.evaluate(AXE_VIOLATIONS)

    return run


# Light only: axe takes a page that sets no background colour as white, so in dark mode it would judge
# the light text against white. test_error_messages_are_readable_in_light_and_dark_mode measures both.
def test_axe_finds_nothing_in_any_state_of_the_page(page, axe, tmp_path):
    expect(page.locator("#cutout-status")).to_contain_text("loaded in")
    found = {"initial": axe()}

    # A photo chosen, its answer held back: the page is working on it
    held = []
    page.route("**/remove?*", lambda route: route.continue_() if held else held.append(route))
    page.set_input_files("#file", PHOTO)
    while not held:
        page.wait_for_timeout(50)
    expect(page.locator("#status")).to_have_text("Removing the background…")
    found["processing"] = axe()

    held[0].continue_()
    page.wait_for_function(RESULT_LOADED)
    found["result"] = axe()

    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"this is a shopping list, not a photo\n")
    page.set_input_files("#file", notes)
    expect(page.locator("#status")).to_have_class("error")
    found["error"] = axe()

    assert found == {state: [] for state in found}


@pytest.mark.parametrize("font_px", [24, 32], ids=["very-large-font", "200-percent-font"])
def test_nothing_sticks_out_sideways_on_a_phone_with_larger_text(page, artifacts, font_px):
    # GIVEN a 360 px phone whose browser is set to a larger text size (Chrome's "Very large" is 24 px,
    # 200% is 32 px; the page's sizes are in rem, so they follow it)
    page.set_viewport_size({"width": 360, "height": 740})
    browser_settings = page.context.new_cdp_session(page)  # kept: the settings last as long as the session
    browser_settings.send("Page.setFontSizes", {"fontSizes": {"standard": font_px, "fixed": font_px}})
    page.reload()
    assert page.evaluate("getComputedStyle(document.documentElement).fontSize") == f"{font_px}px"

    # WHEN a photo has been cut out
    page.set_input_files("#file", PHOTO)
    page.wait_for_function(RESULT_LOADED)
    sticking_out = page.evaluate(STICKING_OUT)
    scrolls_sideways = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    # (not a full-page screenshot: that resets the font sizes)
    page.locator("#result").scroll_into_view_if_needed()
    page.screenshot(path=artifacts / f"demo-page-360px-font-{font_px}px.png")

    # THEN the photo, the result and the buttons stay inside the screen
    assert sticking_out == []
    assert not scrolls_sideways
