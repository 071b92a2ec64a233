"""The demo page in a real browser: scripts/serve.py on 127.0.0.1 and Debian's headless Chromium.

Playwright drives /usr/bin/chromium (the `chromium` apt package, which .ci/run installs); it never
downloads a browser of its own. Where either is missing the browser tests skip and say why.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Headless in a container as root, with nothing reaching outside 127.0.0.1.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SERVER_START_SECONDS = 60
_LISTENING = re.compile(r"http://127\.0\.0\.1:(\d+)")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """test-artifacts/ (git-ignored): screenshots and downloads to look at after a run."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# The local server's URL signing secret, so tests can sign cut-out URLs as a site's backend would.
URL_SIGNING_SECRET = "browser-test-secret"


@pytest.fixture(scope="session")
def url_signing_secret() -> str:
    return URL_SIGNING_SECRET


@pytest.fixture(scope="session")
def local_api(tmp_path_factory):
    """Base URL of `python scripts/serve.py --local-s3 --port 0` (what `make serve` runs): the real
    handler behind a local API Gateway, with examples/ in its local S3 server's source bucket."""
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    # The server's stdout is a file, not a pipe: the handler's log lines could fill a pipe nobody reads.
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "scripts/serve.py", "--local-s3", "--port", "0"],
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "URL_SIGNING_SECRET": URL_SIGNING_SECRET},
        )
    deadline = time.monotonic() + SERVER_START_SECONDS
    try:
        while not (listening := _LISTENING.search(log_path.read_text())):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"scripts/serve.py did not start listening (exit status {server.poll()}):\n{log_path.read_text()}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{listening.group(1)}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="session")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install -y chromium) to run the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, local_api):
    """A fresh browser profile (empty localStorage) with the demo page open."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{local_api}/")
    yield page
    context.close()
