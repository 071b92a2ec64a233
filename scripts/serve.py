"""A local stand-in for API Gateway, like `sam local start-api`: HTTP in, api_handler, HTTP out.

    python scripts/serve.py --port 3000              # REST API events (payload v1), the S3 the environment names
    python scripts/serve.py --port 3000 --http-api   # HTTP API events (payload v2)
    python scripts/serve.py --local-s3 [--images DIR] # plus an S3 server in-process: what `make serve` runs
    curl --data-binary @examples/chelsea.jpg -H 'Content-Type: image/jpeg' localhost:3000/remove -o cutout.png

Each request becomes an API Gateway event, the real handler answers it, and its return value
(base64 bodies decoded) becomes the HTTP response. GET /openapi.json serves the API description
and GET / serves web/index.html when it exists.

With --local-s3 the buckets a deployment has exist too (scripts/local_s3.py): GET /cutouts
works on the images of examples/ (or --images DIR), stored and oversize results are kept in
S3, and GET /local/cutout-examples gives the demo page signed URLs (signed here, as a site's
backend signs them; the Lambda has no such route). Without it, the handler uses whatever the
environment names (AWS_ENDPOINT_URL, SOURCE_BUCKET, OUTPUT_BUCKET, URL_SIGNING_SECRET), as in Lambda.
"""

import argparse
import base64
import json
import os
import re
import sys
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import local_s3
from invoke import REPO_ROOT, LambdaContext, load_handler

MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
# Lambda's synchronous invocation takes at most 6 MB of event: the base64 body and the rest.
# Past it Lambda refuses the invoke and API Gateway answers its own 502 (about 4.7 MB of raw
# body, 3.5 MB of image as base64 in JSON, which REST APIs with */* encode a second time).
MAX_EVENT_BYTES = 6 * 1024 * 1024
STATIC_FILES = {
    "/openapi.json": (REPO_ROOT / "openapi.json", "application/json"),
    "/": (REPO_ROOT / "web" / "index.html", "text/html; charset=utf-8"),
}
LOCAL_EXAMPLES = "/local/cutout-examples"
# Statuses that never carry a body (nor a Content-Length that would describe one).
_BODILESS = {204, 304}
# HTTP API base64-encodes bodies unless their type is text; REST API with BinaryMediaTypes */* always does.
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript", "application/x-www-form-urlencoded")
_DIGITS = re.compile(rb"[0-9]+")  # int() would also take "-1", "+5", " 5" and "1_0"
_HEX = re.compile(rb"[0-9A-Fa-f]+")
_MAX_LINE = 65537  # for chunk size and trailer lines, as http.server reads its request line


class Refused(Exception):
    """A request answered before the handler sees it, because its body cannot be framed or is too large.
    The connection closes after the answer: where the next request would begin is unknown."""

    def __init__(self, status: int, body: dict):
        super().__init__(status)
        self.status = status
        self.body = json.dumps(body).encode()


def _bad_framing(message: str) -> Refused:
    return Refused(400, {"error": {"code": "bad_request", "message": message}})


def _too_large() -> Refused:
    return Refused(413, {"message": "Request Entity Too Large"})


def _request_context(request_id: str, method: str, path: str, source_ip: str) -> dict:
    return {
        "accountId": "123456789012",
        "apiId": "local",
        "requestId": request_id,
        "requestTimeEpoch": int(time.time() * 1000),
        "stage": "$default",
        "domainName": "localhost",
        "identity": {"sourceIp": source_ip},
        "httpMethod": method,
        "path": path,
        "resourcePath": path,
        "protocol": "HTTP/1.1",
    }


def rest_event(method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str) -> dict:
    """A REST API (payload v1) proxy event, as API Gateway builds it with BinaryMediaTypes */*."""
    url = urlsplit(target)
    query = parse_qs(url.query, keep_blank_values=True)
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        multi_headers.setdefault(name, []).append(value)
    return {
        "resource": url.path,
        "path": url.path,
        "httpMethod": method,
        "headers": {name: values[-1] for name, values in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {name: values[-1] for name, values in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": _request_context(str(uuid.uuid4()), method, url.path, source_ip),
        "body": base64.b64encode(body).decode() if body else None,
        "isBase64Encoded": bool(body),
    }


def http_event(method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str) -> dict:
    """An HTTP API (payload v2) event: lower-case header names, repeated values joined by commas,
    the path percent-decoded (``rawQueryString`` stays as sent)."""
    url = urlsplit(target)
    path = unquote(url.path)
    joined: dict[str, str] = {}
    for name, value in headers:
        name = name.lower()
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    binary = bool(body) and not joined.get("content-type", "").startswith(_TEXT_TYPES)
    context = _request_context(str(uuid.uuid4()), method, path, source_ip)
    context["http"] = {
        "method": method,
        "path": path,
        "protocol": "HTTP/1.1",
        "sourceIp": source_ip,
        "userAgent": joined.get("user-agent", ""),
    }
    context["routeKey"] = "$default"
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": url.query,
        "headers": joined,
        "requestContext": context,
        "isBase64Encoded": binary,
    }
    if url.query:
        event["queryStringParameters"] = {
            name: ",".join(values) for name, values in parse_qs(url.query, keep_blank_values=True).items()
        }
    if body:
        event["body"] = base64.b64encode(body).decode() if binary else body.decode("utf-8", errors="replace")
    return event


def response_headers(response: dict) -> list[tuple[str, str]]:
    """The headers of a Lambda proxy response: ``multiValueHeaders`` (v1), ``headers`` and ``cookies`` (v2)."""
    pairs = [(name, str(value)) for name, values in (response.get("multiValueHeaders") or {}).items() for value in values]
    named = {name.lower() for name, _ in pairs}
    pairs += [(name, str(value)) for name, value in (response.get("headers") or {}).items() if name.lower() not in named]
    pairs += [("Set-Cookie", cookie) for cookie in response.get("cookies") or []]
    return pairs


class LocalApi(ThreadingHTTPServer):
    """Threaded HTTP; the handler runs on one thread of its own, one event at a time, as in one
    Lambda execution environment (Powertools' resolver keeps the current event on the class).

    One thread also keeps the image buffers in one malloc arena: with a new thread per
    connection, glibc spread them over up to 8 arenas per core, and RSS grew with every request.
    """

    daemon_threads = True

    def __init__(self, address, *, handler, http_api: bool, local: local_s3.LocalS3 | None = None):
        # Before the socket is bound: a bind that fails calls server_close, which shuts this down.
        self.lambda_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lambda")
        super().__init__(address, ApiGatewayRequestHandler)
        self.handler = handler
        self.build_event = http_event if http_api else rest_event
        self.local = local

    def invoke(self, event: dict) -> dict:
        return self.lambda_thread.submit(self.handler, event, LambdaContext()).result()

    def server_close(self) -> None:
        super().server_close()
        self.lambda_thread.shutdown(wait=False, cancel_futures=True)


class ApiGatewayRequestHandler(BaseHTTPRequestHandler):
    server: LocalApi
    protocol_version = "HTTP/1.1"

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() != "content-length":
                self.send_header(name, value)
        # The answer to a HEAD describes a body it does not carry; a length of 0 would misstate it.
        has_body = status not in _BODILESS and self.command != "HEAD"
        if has_body:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if has_body:
            self.wfile.write(body)

    def _serve_static(self) -> bool:
        path = urlsplit(self.path).path
        if self.command not in ("GET", "HEAD") or path not in STATIC_FILES or not STATIC_FILES[path][0].is_file():
            return False
        file, content_type = STATIC_FILES[path]
        self._send(200, [("Content-Type", content_type)], file.read_bytes())
        return True

    def _serve_local(self) -> bool:
        """GET /local/cutout-examples?options: with --local-s3, signed cut-out URLs for the demo page."""
        url = urlsplit(self.path)
        if self.server.local is None or self.command != "GET" or url.path != LOCAL_EXAMPLES:
            return False
        status, body = self.server.local.examples_response(url.query)
        self._send(status, [("Content-Type", "application/json"), ("Cache-Control", "no-store")], body)
        return True

    def _read_body(self) -> bytes:
        if "Transfer-Encoding" in self.headers:
            if self.headers["Transfer-Encoding"].strip().lower() != "chunked":
                raise _bad_framing("the only Transfer-Encoding taken is chunked")
            # RFC 9112 6.1: chunked wins over a Content-Length, and a request with both, the shape of
            # request smuggling, is the last on its connection.
            if "Content-Length" in self.headers:
                self.close_connection = True
            return self._read_chunked()
        length = (self.headers.get("Content-Length") or "0").strip().encode()
        if not _DIGITS.fullmatch(length):
            raise _bad_framing("Content-Length is not a number of bytes")
        if int(length) > MAX_REQUEST_BYTES:
            raise _too_large()
        return self.rfile.read(int(length))

    def _read_chunked(self) -> bytes:
        """The body of RFC 9112 7.1's chunked coding; chunk extensions and trailers are read and dropped."""
        chunks, total = [], 0
        while True:
            line = self.rfile.readline(_MAX_LINE)
            digits = line.split(b";", 1)[0].strip()
            if not line.endswith(b"\n") or not _HEX.fullmatch(digits):
                raise _bad_framing("a chunk size line is not hexadecimal digits")
            size = int(digits, 16)
            if not size:
                break
            total += size
            # Counted from the size lines, so a huge chunk is refused before its bytes are read into memory.
            if total > MAX_REQUEST_BYTES:
                raise _too_large()
            chunks.append(self.rfile.read(size))
            if self.rfile.read(2) != b"\r\n":
                raise _bad_framing("a chunk is not as long as its size line says")
        while (line := self.rfile.readline(_MAX_LINE)) not in (b"\r\n", b"\n"):
            if not line.endswith(b"\n"):
                raise _bad_framing("the chunked body ends before its trailer section does")
        return b"".join(chunks)

    def _proxy(self) -> None:
        # Read before any route answers, also those that ignore it: a body left unread would be
        # parsed as the next request on the connection.
        try:
            body = self._read_body()
        except Refused as refused:
            self._send(refused.status, [("Content-Type", "application/json"), ("Connection", "close")], refused.body)
            return
        if self._serve_static() or self._serve_local():
            return
        event = self.server.build_event(self.command, self.path, list(self.headers.items()), body, self.client_address[0])
        try:
            # Lambda refuses an event over its limit: no invocation, so the same 502 as a failed one
            response = self.server.invoke(event) if len(json.dumps(event)) <= MAX_EVENT_BYTES else {}
        except Exception:  # a handler that raises is a 502 at API Gateway too; the trace goes to stderr
            traceback.print_exc()
            response = {}
        if "statusCode" not in response:  # API Gateway's answer to a failed or malformed invocation
            self._send(502, [("Content-Type", "application/json")], b'{"message":"Internal server error"}')
            return
        payload = response.get("body") or ""
        data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode()
        self._send(int(response["statusCode"]), response_headers(response), data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _proxy


def port_number(text: str) -> int:
    """A TCP port to listen on; 0 picks a free one."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, not {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=port_number, default=3000, help="port to listen on; 0 picks a free one (default 3000)")
    parser.add_argument("--http-api", action="store_true", help="send HTTP API payload v2 events instead of REST API v1")
    parser.add_argument(
        "--local-s3", action="store_true", help="run an S3 server in this process with source and output buckets (make serve)"
    )
    parser.add_argument(
        "--images", type=Path, help="with --local-s3: the folder whose images become the source objects (default examples/)"
    )
    args = parser.parse_args(argv)
    if args.images and not args.local_s3:
        parser.error("--images fills the local S3 server's source bucket: use it with --local-s3")
    images = args.images or REPO_ROOT / "examples"
    if args.local_s3 and not images.is_dir():
        parser.error(f"--images {images} is not a folder")
    secret_given = bool(os.environ.get("URL_SIGNING_SECRET"))
    # Before the handler is imported: it reads the buckets and the secret from the environment at import.
    local = local_s3.start(images) if args.local_s3 else None
    handler = load_handler("api")
    try:
        server = LocalApi((args.host, args.port), handler=handler, http_api=args.http_api, local=local)
    except OSError as error:
        if local is not None:
            local.stop()
        parser.error(f"cannot listen on {args.host}:{args.port}: {error.strerror}")
    host, port = server.server_address[:2]
    kind = "HTTP API (payload v2)" if args.http_api else "REST API (payload v1)"
    print(f"serving http://{host}:{port} with {kind} events; POST /remove, GET /cutouts/{{key}}, GET /openapi.json", flush=True)
    if local is not None:
        print(local.describe(f"http://{host}:{port}", secret_given=secret_given), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if local is not None:
            local.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
