"""A small Lambda Runtime API on 127.0.0.1, enough for `python -m awslambdaric` to run a handler.

The runtime client long-polls GET /2018-06-01/runtime/invocation/next; the stub answers with
the next queued event and the headers Lambda sends, then records what comes back on
.../invocation/{id}/response, .../invocation/{id}/error or /runtime/init/error.
"""

import json
import queue
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"


@dataclass(frozen=True)
class Invocation:
    request_id: str
    event: bytes
    deadline_ms: int
    function_arn: str


@dataclass(frozen=True)
class Outcome:
    """What the runtime posted: kind is "response", "error" or "init_error"."""

    kind: str
    request_id: str | None
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


class _RuntimeApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # the runtime client keeps its connection alive
    server: "RuntimeApiStub"

    def setup(self):
        super().setup()
        # Small request/response pairs on a kept-alive connection: Nagle would add ~40 ms each.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # keep the test output quiet
        pass

    def _reply(self, status: HTTPStatus, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path != f"{PREFIX}/invocation/next":
            self._reply(HTTPStatus.NOT_FOUND)
            return
        invocation = self.server.pending.get()
        trace_id = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0"
        headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": invocation.function_arn,
            "Lambda-Runtime-Trace-Id": trace_id,
        }
        self._reply(HTTPStatus.OK, invocation.event, headers)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = self.path.removeprefix(PREFIX + "/").split("/")
        if parts == ["init", "error"]:
            kind, request_id = "init_error", None
        elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            kind, request_id = parts[2], parts[1]
        else:
            self._reply(HTTPStatus.NOT_FOUND)
            return
        self.server.outcomes.put(Outcome(kind=kind, request_id=request_id, headers=dict(self.headers), body=body))
        self._reply(HTTPStatus.ACCEPTED, b'{"status":"OK"}', {"Content-Type": "application/json"})


class RuntimeApiStub(ThreadingHTTPServer):
    """Start with ``with RuntimeApiStub() as stub:``; point AWS_LAMBDA_RUNTIME_API at ``stub.address``."""

    daemon_threads = True  # a runtime still long-polling /next must not keep the test alive

    def __init__(self, *, function_name: str = "function", timeout_s: int = 30):
        super().__init__(("127.0.0.1", 0), _RuntimeApiHandler)
        self.pending: queue.Queue[Invocation] = queue.Queue()
        self.outcomes: queue.Queue[Outcome] = queue.Queue()
        self.function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.timeout_s = timeout_s
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        host, port = self.server_address[:2]
        return f"{host}:{port}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self.shutdown()
        self.server_close()

    def enqueue(self, event: dict) -> str:
        """Queue an invocation; the function's timeout starts now, as in Lambda."""
        request_id = str(uuid.uuid4())
        deadline_ms = int(time.time() * 1000) + self.timeout_s * 1000
        self.pending.put(Invocation(request_id, json.dumps(event).encode(), deadline_ms, self.function_arn))
        return request_id

    def next_outcome(self, *, alive, limit_s: float) -> Outcome:
        """The next thing the runtime posted; fails when the runtime dies or never answers.

        :param alive: a callable telling whether the runtime process still runs.
        """
        give_up = time.monotonic() + limit_s
        while time.monotonic() < give_up:
            try:
                return self.outcomes.get(timeout=0.2)
            except queue.Empty:
                if not alive():
                    # It may have posted just before exiting.
                    try:
                        return self.outcomes.get_nowait()
                    except queue.Empty:
                        raise AssertionError("the runtime exited without answering") from None
        raise AssertionError(f"the runtime did not answer within {limit_s} s")
