"""scripts/serve.py over real HTTP on 127.0.0.1: requests become API Gateway events and back."""

import http.client
import io
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from openapi_spec_validator import validate
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
STARTUP_SECONDS = 60
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's request limit, as serve.py applies it
POST_JPEG = b"POST /remove HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/jpeg\r\n"


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


def connect(server: str) -> socket.socket:
    url = urlsplit(server)
    return socket.create_connection((url.hostname, url.port), timeout=30)


def read_response(stream) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One response read off a connection, framed by its Content-Length (serve.py always sends one here)."""
    status = int(stream.readline().split()[1])
    headers = http.client.parse_headers(stream)
    return status, headers, stream.read(int(headers.get("Content-Length", 0)))


def chunked(data: bytes, parts: int) -> bytes:
    """``data`` in chunked coding: a chunk extension on the first chunk, upper-case hex on the others, a trailer."""
    step = -(-len(data) // parts)
    pieces = [data[start : start + step] for start in range(0, len(data), step)]
    lines = [f"{len(pieces[0]):x};name=value\r\n".encode() + pieces[0] + b"\r\n"]
    lines += [f"{len(piece):X}\r\n".encode() + piece + b"\r\n" for piece in pieces[1:]]
    return b"".join(lines) + b"0\r\nX-Checksum: none\r\n\r\n"


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


def test_a_body_past_lambdas_invocation_limit_gets_api_gateways_502(server):
    # API Gateway takes 10 MB, but Lambda takes at most 6 MB of event, the body in base64 among it:
    # 4.5 MB still reaches the function (its own 415 for bytes that are no image), 4.8 MB does not
    status, headers, body = fetch(f"{server}/remove", data=b"\0" * 4_500_000, headers={"Content-Type": "image/jpeg"})
    assert status == 415 and json.loads(body)["error"]["code"] == "unsupported_media_type"
    status, headers, body = fetch(f"{server}/remove", data=b"\0" * 4_800_000, headers={"Content-Type": "image/jpeg"})
    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})


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


@pytest.mark.parametrize(("path", "content_type"), [("/", "text/html; charset=utf-8"), ("/openapi.json", "application/json")])
def test_head_of_a_served_file_answers_as_its_get_without_the_body(server, path, content_type):
    status, headers, body = fetch(f"{server}{path}", method="HEAD")
    assert (status, headers["Content-Type"], body) == (200, content_type, b"")


@pytest.mark.parametrize("path", ["/", "/openapi.json"])
def test_a_body_sent_to_a_served_file_is_read_and_not_taken_for_the_next_request(server, path):
    hidden = b"POST /remove HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello"
    request = f"GET {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(hidden)}\r\n\r\n".encode() + hidden
    with connect(server) as connection, connection.makefile("rb") as stream:
        connection.sendall(request + b"GET /openapi.json HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert read_response(stream)[0] == 200
        status, headers, _ = read_response(stream)
        assert (status, headers["Content-Type"]) == (200, "application/json")


def test_chunked_jpeg_comes_back_as_a_png(server, photo):
    """What `curl -T -` and `requests` with a generator body send: no Content-Length, the body in chunks."""
    request = POST_JPEG + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(photo, 3)
    with connect(server) as connection, connection.makefile("rb") as stream:
        connection.sendall(request + b"GET /openapi.json HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, headers, body = read_response(stream)
        assert (status, headers["Content-Type"]) == (200, "image/png")
        image = Image.open(io.BytesIO(body))
        assert (image.mode, image.size) == ("RGBA", Image.open(io.BytesIO(photo)).size)
        # Every chunk went into that body: the next request on the connection is answered as itself.
        status, headers, _ = read_response(stream)
        assert (status, headers["Content-Type"]) == (200, "application/json")


def test_chunked_wins_over_content_length_and_the_connection_closes(server, photo):
    request = POST_JPEG + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(photo, 2)
    with connect(server) as connection, connection.makefile("rb") as stream:
        connection.sendall(request)
        status, headers, body = read_response(stream)
        assert (status, headers["Content-Type"]) == (200, "image/png")
        assert Image.open(io.BytesIO(body)).size == Image.open(io.BytesIO(photo)).size
        assert stream.read() == b""  # both lengths is how requests are smuggled: the connection is not reused


@pytest.mark.parametrize(
    "chunks",
    [f"{MAX_REQUEST_BYTES + 1:x}\r\n".encode(), b"%x\r\n%s\r\n%x\r\n" % (6 << 20, b"x" * (6 << 20), 5 << 20)],
    ids=["one-chunk", "two-chunks"],
)
def test_chunked_body_over_the_limit_is_413(server, chunks):
    """Refused at the size line that goes over 10 MB: the test sends no data after that line, so none is left unread."""
    with connect(server) as connection, connection.makefile("rb") as stream:
        connection.sendall(POST_JPEG + b"Transfer-Encoding: chunked\r\n\r\n" + chunks)
        status, headers, body = read_response(stream)
        assert (status, headers["Content-Type"], json.loads(body)) == (
            413,
            "application/json",
            {"message": "Request Entity Too Large"},
        )
        assert stream.read() == b""


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: abc\r\n\r\n",
        b"Content-Length: -5\r\n\r\n",
        b"Content-Length: -1\r\n\r\n",
        b"Content-Length: +5\r\n\r\n",
        b"Transfer-Encoding: gzip\r\n\r\n",
        b"Transfer-Encoding: chunked\r\n\r\n-5\r\n",
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXY",
    ],
    ids=["length-abc", "length-minus-5", "length-minus-1", "length-plus-5", "gzip", "chunk-size-minus-5", "no-crlf-after-chunk"],
)
def test_malformed_framing_is_a_json_400_and_the_server_carries_on(server, framing):
    with connect(server) as connection, connection.makefile("rb") as stream:
        connection.sendall(POST_JPEG + framing)
        status, headers, body = read_response(stream)
        assert (status, headers["Content-Type"]) == (400, "application/json")
        assert json.loads(body)["error"]["code"] == "bad_request"
        assert stream.read() == b""  # where this request ends is unknown: no next request is read from it
    assert fetch(f"{server}/openapi.json")[0] == 200


def test_a_port_in_use_is_said_plainly():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        completed = subprocess.run(
            [sys.executable, "scripts/serve.py", "--port", str(port)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
        )

    assert completed.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in completed.stderr
    assert "Traceback" not in completed.stderr


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_a_port_out_of_range_is_a_usage_error(port):
    # `make serve PORT=...` with a typo: said by argparse, not an OverflowError from bind()
    completed = subprocess.run(
        [sys.executable, "scripts/serve.py", "--port", port], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )

    assert completed.returncode == 2
    assert f"--port: must be a port number from 0 to 65535, not '{port}'" in completed.stderr
    assert "Traceback" not in completed.stderr
