"""A browser's own multipart/form-data (FormData, as an HTML form or a web app sends a file) against
`scripts/serve.py --local-s3`, in Chromium: the same cut-out as the photo sent as a raw body."""

import base64
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api", reason="the playwright package is missing: pip install -r requirements-dev.txt")

PHOTO = Path(__file__).resolve().parents[2] / "examples" / "chelsea.jpg"  # CC0
# Posts the photo as Chromium encodes a FormData (its own boundary and part headers); answers
# the status, the Content-Type and the body as base64.
POST_FORM = """async ([photo, options]) => {
  const form = new FormData();
  form.append("image", new Blob([Uint8Array.from(atob(photo), (c) => c.charCodeAt(0))], { type: "image/jpeg" }), "chelsea.jpg");
  for (const [name, value] of Object.entries(options)) form.append(name, value);
  const response = await fetch("/remove", { method: "POST", body: form });
  const body = new Uint8Array(await response.arrayBuffer());
  let text = "";
  for (const byte of body) text += String.fromCharCode(byte);
  return [response.status, response.headers.get("Content-Type"), btoa(text)];
}"""


def test_a_browsers_form_data_gets_the_cut_out_of_the_raw_body(page, local_api):
    # GIVEN a photo and options, posted by the page as FormData
    options = {"format": "webp", "crop": "true"}
    status, content_type, body = page.evaluate(POST_FORM, [base64.b64encode(PHOTO.read_bytes()).decode(), options])
    # WHEN the same photo goes as a raw body with the options in the query string
    raw = urllib.request.Request(
        f"{local_api}/remove?format=webp&crop=true", data=PHOTO.read_bytes(), headers={"Content-Type": "image/jpeg"}
    )
    with urllib.request.urlopen(raw) as answer:
        expected = answer.read()
    # THEN the form's answer is that WebP, byte for byte
    assert (status, content_type) == (200, "image/webp")
    assert base64.b64decode(body) == expected
