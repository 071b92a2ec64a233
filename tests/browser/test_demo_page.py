"""web/index.html end to end: a person's photo through the page, the real API, and back."""

import io
import json
import threading
import urllib.error
import urllib.request
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is missing: pip install -r requirements-dev.txt"
)
expect = sync_api.expect

PHOTO = Path(__file__).resolve().parents[2] / "examples" / "chelsea.jpg"  # 451x300, CC0
RESULT_LOADED = "(image) => image.complete && image.naturalWidth > 0"


def natural_size(page, selector: str) -> tuple[int, int]:
    return tuple(page.eval_on_selector(selector, "(image) => [image.naturalWidth, image.naturalHeight]"))


def test_photo_comes_back_cut_out_and_downloads_as_transparent_png(page, artifacts):
    # GIVEN the page served by the local API, asked for at most 300 px
    photo_width, photo_height = Image.open(PHOTO).size
    page.fill("#max-size", "300")

    # WHEN a real photo is chosen through the file input
    page.set_input_files("#file", PHOTO)

    # THEN the cut-out shows with the photo's aspect ratio, and the page reports the time taken
    page.wait_for_function(f"({RESULT_LOADED})(document.querySelector('#result'))")
    width, height = natural_size(page, "#result")
    assert max(width, height) == 300
    assert abs(height - width * photo_height / photo_width) <= 1, (width, height)
    expect(page.locator("#status")).to_contain_text("Done in")
    expect(page.locator("#result-info")).to_contain_text(f"{width}×{height}")
    page.screenshot(path=artifacts / "demo-page-desktop.png", full_page=True)

    # AND the download is a PNG of that size with transparent and opaque pixels
    with page.expect_download() as download_info:
        page.click("#download")
    download = download_info.value
    assert download.suggested_filename == "chelsea-cutout.png"
    data = download.path().read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    cutout = Image.open(io.BytesIO(data))
    assert (cutout.mode, cutout.size) == ("RGBA", (width, height))
    assert cutout.getchannel("A").getextrema() == (0, 255)

    # AND on a phone-sized screen nothing sticks out sideways
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=artifacts / "demo-page-phone.png", full_page=True)


def test_non_image_shows_the_api_error_message(page, local_api, tmp_path):
    # GIVEN a text file, and what the API itself says about those bytes
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"this is a shopping list, not a photo\n")
    request = urllib.request.Request(
        f"{local_api}/remove?format=png", data=notes.read_bytes(), headers={"Content-Type": "application/octet-stream"}
    )
    try:
        urllib.request.urlopen(request)
        raise AssertionError("the API accepted a text file as an image")
    except urllib.error.HTTPError as refusal:
        status, error = refusal.code, json.load(refusal)["error"]

    # WHEN the page sends it
    page.set_input_files("#file", notes)

    # THEN the page shows the API's own message, code and status as an error, and offers no download
    status_line = page.locator("#status")
    expect(status_line).to_have_class("error")
    expect(status_line).to_have_text(f"{error['message']} (HTTP {status}, {error['code']})")
    expect(page.locator("#download")).to_be_hidden()


def test_api_settings_are_remembered_and_the_key_is_sent(page, local_api):
    # GIVEN an API base URL and key typed once
    page.click("summary")
    page.fill("#api-base", f"{local_api}/")
    page.fill("#api-key", "demo-key-123")

    # WHEN the page is reloaded and a photo sent
    page.reload()
    with page.expect_request("**/remove?*") as sent:
        page.set_input_files("#file", PHOTO)

    # THEN both fields kept their values, the request carried the key and the options, and the API answered
    assert page.input_value("#api-base") == f"{local_api}/"
    assert page.input_value("#api-key") == "demo-key-123"
    request = sent.value
    assert request.url == f"{local_api}/remove?format=png"
    assert request.headers["x-api-key"] == "demo-key-123"
    assert request.headers["content-type"] == "image/jpeg"
    expect(page.locator("#status")).to_contain_text("Done in")


class StoredResults(SimpleHTTPRequestHandler):
    """A stand-in for S3's presigned GET: serves files, with CORS headers only when asked to."""

    cors = False

    def end_headers(self):
        if self.cors:
            self.send_header("Access-Control-Allow-Origin", "*")
        super().end_headers()

    def log_message(self, format, *args):
        pass


@pytest.fixture(params=[True, False], ids=["bucket-with-cors", "bucket-without-cors"])
def stored_result(request, tmp_path):
    """A 40x30 PNG on a second origin (another port), and whether that origin allows CORS."""
    (tmp_path / "chelsea.png").write_bytes(stored_png())
    handler = type("Handler", (StoredResults,), {"cors": request.param})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/chelsea.png", request.param
    server.shutdown()
    server.server_close()


def stored_png() -> bytes:
    stored = io.BytesIO()
    Image.new("RGBA", (40, 30), (200, 40, 40, 128)).save(stored, "PNG")
    return stored.getvalue()


def test_a_stored_result_link_is_shown_and_offered_for_download(page, stored_result):
    # GIVEN an API that answers with a link to a stored result, as it does for results too large
    # to return inline (the route stands in for the API; the link is real HTTP on another origin)
    url, bucket_allows_cors = stored_result
    link = {"bucket": "results", "key": "results/chelsea.png", "url": url, "expires_in": 3600}
    page.route("**/remove?*", lambda route: route.fulfill(status=200, json=link))

    # WHEN a photo is sent
    page.set_input_files("#file", PHOTO)

    # THEN the stored image is shown
    page.wait_for_function(f"({RESULT_LOADED})(document.querySelector('#result'))")
    assert natural_size(page, "#result") == (40, 30)
    if bucket_allows_cors:
        # AND downloads byte for byte from the fetched copy
        with page.expect_download() as download_info:
            page.click("#download")
        assert download_info.value.path().read_bytes() == stored_png()
    else:
        # AND, since the page may not read it, is shown and linked from the URL itself
        assert page.get_attribute("#download", "href") == url
        expect(page.locator("#status")).to_contain_text("stored as results/chelsea.png")


def test_an_earlier_photo_answered_last_does_not_replace_the_later_ones_result(page):
    # GIVEN a first photo whose answer is held back, as a bigger photo's is by its upload and its work
    held = []
    page.route("**/remove?*", lambda route: route.continue_() if held else held.append(route))
    page.set_input_files("#file", PHOTO)
    while not held:
        page.wait_for_timeout(50)

    # WHEN a second photo is chosen and comes back first
    second = PHOTO.with_name("coffee.jpg")
    page.set_input_files("#file", second)
    expect(page.locator("#result-info")).to_contain_text("600×400")

    # AND then the first photo's answer arrives
    with page.expect_response("**/remove?*"):
        held[0].continue_()
    page.wait_for_timeout(1000)

    # THEN the page still shows the second photo's result, under its name
    expect(page.locator("#result-info")).to_contain_text("600×400")
    expect(page.locator("#status")).to_contain_text(f"{second.stat().st_size / 1024:.1f} KB in")
    assert page.get_attribute("#download", "download") == "coffee-cutout.png"


def test_an_error_naming_a_long_url_wraps_on_a_phone(page):
    # GIVEN a phone-sized screen and an API base URL where nothing answers
    page.set_viewport_size({"width": 390, "height": 844})
    page.click("summary")
    page.fill("#api-base", "http://127.0.0.1:9/a/stage/path")
    page.check("#crop")
    page.select_option("#refine", "true")
    page.check("#hard")

    # WHEN a photo is sent
    page.set_input_files("#file", PHOTO)

    # THEN the error, which names the whole request URL, wraps inside the screen
    expect(page.locator("#status")).to_contain_text("could not reach the API at http://127.0.0.1:9/a/stage/path/remove?")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
