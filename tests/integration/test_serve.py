"""scripts/serve.py over real HTTP on 127.0.0.1: requests become API Gateway events and back."""

import io
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from openapi_spec_validator import validate
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
STARTUP_SECONDS = 60


@pytest.fixture(scope="module", params=["rest", "http-api"])
def server(request, tmp_path_factory):
    """The base URL of `scripts/serve.py --port 0` (REST v1 events, then HTTP API v2 events)."""
    log = tmp_path_factory.mktemp("serve") / "stdout.log"
    arguments = ["--http-api"] if request.param == "http-api" else []
    with log.open("w") as stdout:
        process = subprocess.Popen([sys.executable, "scripts/serve.py", "--port", "0", *arguments], cwd=REPO_ROOT, stdout=stdout)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not log.read_text().strip():
            assert process.poll() is None, "serve.py exited before it listened"
            assert time.monotonic() < deadline, "serve.py did not say where it listens"
            time.sleep(0.1)
        first_line = log.read_text().splitlines()[0]
        yield first_line.split()[1]
    finally:
        process.terminate()
        process.wait(timeout=10)


def fetch(url: str, data: bytes | None = None, headers: dict | None = None, method: str | None = None):
    """(status, headers, body) of one request; HTTP errors are answers too."""
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_raw_jpeg_comes_back_as_a_png_with_alpha(server, photo):
    status, headers, body = fetch(f"{server}/remove", photo, {"Content-Type": "image/jpeg", "Origin": "http://localhost:8000"})
    assert status == 200
    assert headers["Content-Type"] == "image/png"
    assert headers["Access-Control-Allow-Origin"] == "*"
    image = Image.open(io.BytesIO(body))
    assert (image.mode, image.size) == ("RGBA", Image.open(io.BytesIO(photo)).size)
    alpha = np.asarray(image.getchannel("A"))
    assert alpha.min() == 0 and alpha.max() == 255


def test_query_options_and_json_envelope(server, photo):
    status, headers, body = fetch(
        f"{server}/remove?format=webp&max_size=50", photo, {"Content-Type": "image/jpeg", "Accept": "application/json"}
    )
    assert (status, headers["Content-Type"]) == (200, "application/json")
    envelope = json.loads(body)
    assert (envelope["format"], envelope["width"], envelope["height"]) == ("webp", 50, 33)


def test_errors_pass_through_as_json(server):
    status, headers, body = fetch(f"{server}/remove", b"plain text, not a photo", {"Content-Type": "text/plain"})
    assert (status, headers["Content-Type"]) == (415, "application/json")
    assert json.loads(body)["error"]["code"] == "unsupported_media_type"


def test_cors_preflight(server):
    status, headers, body = fetch(
        f"{server}/remove", method="OPTIONS", headers={"Origin": "http://localhost:8000", "Access-Control-Request-Method": "POST"}
    )
    assert (status, body) == (204, b"")
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in headers["Access-Control-Allow-Methods"]


def test_openapi_document_is_served_and_valid(server):
    status, headers, body = fetch(f"{server}/openapi.json")
    assert (status, headers["Content-Type"]) == (200, "application/json")
    assert body == (REPO_ROOT / "openapi.json").read_bytes()
    validate(json.loads(body))


def test_demo_page_is_served_at_the_root(server):
    page = REPO_ROOT / "web" / "index.html"
    if not page.is_file():
        pytest.skip("web/index.html is absent")
    status, headers, body = fetch(f"{server}/")
    assert (status, headers["Content-Type"]) == (200, "text/html; charset=utf-8")
    assert body == page.read_bytes()
