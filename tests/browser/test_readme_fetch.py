"""The README's "From a browser" examples, run whole in Chromium against `scripts/serve.py --local-s3`:
every request they show gets a cut-out, and every answer is read."""

import base64
import io
import re
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("playwright.sync_api", reason="the playwright package is missing: pip install -r requirements-dev.txt")

REPO_ROOT = Path(__file__).resolve().parents[2]
PHOTO = REPO_ROOT / "examples" / "chelsea.jpg"  # CC0, also in the local server's source bucket
# Runs an example with what it takes from a page: the file input's File, its data: URL and an <img>
# whose every src is kept, so that each result the example shows can be checked.
RUN_EXAMPLE = """async ([photo, example]) => {
  const bytes = Uint8Array.from(atob(photo), (c) => c.charCodeAt(0));
  const API = location.origin, file = new File([bytes], "chelsea.jpg", { type: "image/jpeg" });
  const dataUrl = `data:image/jpeg;base64,${photo}`;
  const shown = [];
  const img = { set src(url) { shown.push(url); } };
  await new Function("API", "file", "dataUrl", "img", `return (async () => { ${example} })();`)(API, file, dataUrl, img);
  return Promise.all(shown.map(async (url) => {
    const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
    let text = "";
    for (const byte of bytes) text += String.fromCharCode(byte);
    return btoa(text);
  }));
}"""


def browser_examples() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    return readme.split("From a browser", 1)[1].split("```js\n", 1)[1].split("```", 1)[0]


def test_every_request_of_the_readmes_browser_examples_shows_a_cut_out(page):
    # GIVEN the README's browser examples, with its S3 object named as one in the local source bucket
    example = browser_examples().replace('"my-photos"', '"bgremove-source"').replace('"uploads/cat.jpg"', '"chelsea.jpg"')
    requests = len(re.findall(r"await fetch\(`\$\{API\}/remove", example))
    # WHEN the page runs them
    shown = page.evaluate(RUN_EXAMPLE, [base64.b64encode(PHOTO.read_bytes()).decode(), example])
    # THEN each request's answer is read and shown as a cut-out of the photo. Regression: the form and
    # S3 examples never read their answers, so a reader copying them got no image (and Node never exited)
    assert len(shown) == requests == 4
    for image in map(base64.b64decode, shown):
        with Image.open(io.BytesIO(image)) as cutout:
            assert cutout.mode == "RGBA"
            alpha = cutout.getchannel("A")
            assert alpha.getextrema() == (0, 255)
