"""The demo page's cut-out URL section: a signed GET /cutouts/{key} URL in a plain <img>, in Chromium,
against `scripts/serve.py --local-s3` (examples/ in its source bucket)."""

import io
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from helpers import encode, example_photo
from PIL import Image

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is missing: pip install -r requirements-dev.txt"
)
expect = sync_api.expect

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from sign_url import signed_url  # noqa: E402

CUTOUT_LOADED = "(image) => image.complete && image.naturalWidth > 0"
# The <img>'s pixels as the page itself sees them: counts of fully transparent and fully opaque ones.
ALPHA_COUNTS = """(image) => {
  const canvas = document.createElement("canvas");
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let transparent = 0, opaque = 0;
  for (let i = 3; i < pixels.length; i += 4) {
    if (pixels[i] === 0) transparent++;
    else if (pixels[i] === 255) opaque++;
  }
  return { transparent, opaque, total: pixels.length / 4 };
}"""


def wait_for_cutout(page, *, url_contains: str = "") -> str:
    """The src of the cut-out <img> once an image whose URL contains ``url_contains`` has loaded."""
    image = page.query_selector("#cutout")
    page.wait_for_function(f"([image, part]) => image.src.includes(part) && ({CUTOUT_LOADED})(image)", arg=[image, url_contains])
    return page.get_attribute("#cutout", "src")


def test_the_cutout_url_loads_in_an_img_with_transparency(page, local_api, artifacts):
    # WHEN the page opens on the local server, it shows a signed cut-out URL of one of the served images
    src = wait_for_cutout(page)

    # THEN the <img> loaded it straight from GET /cutouts/{key}, and the link shows the same URL
    assert src.startswith(f"{local_api}/cutouts/") and "signature=" in src
    assert page.get_attribute("#cutout-link", "href") == src
    width, height = page.eval_on_selector("#cutout", "(image) => [image.naturalWidth, image.naturalHeight]")
    expect(page.locator("#cutout-status")).to_contain_text(f"{width}×{height}, loaded in")

    # AND the pixels the page draws have a transparent background and an opaque subject
    counts = page.eval_on_selector("#cutout", ALPHA_COUNTS)
    assert counts["transparent"] > counts["total"] * 0.1 and counts["opaque"] > counts["total"] * 0.1, counts
    page.screenshot(path=artifacts / "demo-page-cutout-url.png", full_page=True)

    # AND the same URL fetched again is the stored RGBA PNG with alpha from 0 to 255
    with urllib.request.urlopen(src) as response:
        assert response.headers["Content-Type"] == "image/png"
        cutout = Image.open(io.BytesIO(response.read()))
    assert (cutout.mode, cutout.size) == ("RGBA", (width, height))
    assert cutout.getchannel("A").getextrema() == (0, 255)


def test_refine_and_hard_reach_the_cutout_url_and_post_remove(page, local_api):
    wait_for_cutout(page)
    # WHEN refinement is turned off, hard edges on, and another photo and a coloured backdrop chosen
    page.select_option("#refine", "false")
    page.check("#hard")
    page.select_option("#cutout-key", label="chelsea.jpg")
    page.select_option("#cutout-backdrop", label="yellow")

    # THEN the shown cut-out is that photo's, signed with both options, on the colour
    wait_for_cutout(page, url_contains="/cutouts/chelsea.jpg?format=png&refine=false&hard=true&signature=")
    assert page.eval_on_selector("#cutout-frame", "(frame) => getComputedStyle(frame).backgroundColor") == "rgb(253, 230, 138)"
    assert page.eval_on_selector("#cutout", "(image) => [image.naturalWidth, image.naturalHeight]") == [451, 300]

    # AND a photo sent to POST /remove carries the same options
    with page.expect_request("**/remove?*") as sent:
        page.set_input_files("#file", Path(__file__).resolve().parents[2] / "examples" / "chelsea.jpg")
    assert sent.value.url == f"{local_api}/remove?format=png&refine=false&hard=true"
    expect(page.locator("#status")).to_contain_text("Done in")


def test_options_the_route_refuses_show_its_message(page):
    wait_for_cutout(page)
    # WHEN JPEG is chosen without a background (a cut-out needs alpha)
    page.select_option("#format", "jpeg")
    # THEN the section says why, in the API's words
    status = page.locator("#cutout-status")
    expect(status).to_have_class("error")
    expect(status).to_have_text("format jpeg has no alpha channel: use it with background or mask (HTTP 400, invalid_option)")


def test_where_nothing_signs_examples_a_pasted_signed_url_is_shown(page, local_api, url_signing_secret):
    # GIVEN a server without the local signer (a deployed API answers its own 404 there)
    missing = {"error": {"code": "not_found", "message": "there is no GET /local/cutout-examples in this API"}}
    page.route("**/local/cutout-examples*", lambda route: route.fulfill(status=404, json=missing))
    page.reload()
    expect(page.locator("#cutout-paste")).to_be_visible()
    expect(page.locator("#cutout-key")).to_be_hidden()

    # WHEN a URL signed by scripts/sign_url.py's function, as a site's backend signs it, is pasted
    url = signed_url(local_api, url_signing_secret, "coffee.jpg", {"max_size": "200"})
    page.fill("#cutout-paste", url)
    page.dispatch_event("#cutout-paste", "change")

    # THEN the <img> shows that cut-out
    assert wait_for_cutout(page, url_contains="coffee.jpg") == url
    assert max(page.eval_on_selector("#cutout", "(image) => [image.naturalWidth, image.naturalHeight]")) == 200


def test_a_result_too_large_for_a_response_comes_from_the_local_s3_server(page, tmp_path):
    # GIVEN a noisy 2400x1600 photo: its RGBA PNG (~6-7 MB) is over Lambda's response limit
    rng = np.random.default_rng(0)
    pixels = np.asarray(example_photo("coffee", (2400, 1600))).astype(np.int16) + rng.integers(-40, 41, (1600, 2400, 3))
    photo = tmp_path / "big.jpg"
    photo.write_bytes(encode(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), "JPEG"))

    # WHEN the page sends it to POST /remove
    page.set_input_files("#file", photo)

    # THEN the API stores it and answers 303; the page follows it to the local S3 server and shows the PNG
    page.wait_for_function(f"({CUTOUT_LOADED})(document.querySelector('#result'))")
    assert page.eval_on_selector("#result", "(image) => [image.naturalWidth, image.naturalHeight]") == [2400, 1600]
    expect(page.locator("#status")).to_contain_text("MB out (image/png)")
