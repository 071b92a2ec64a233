"""Load and soak the local API: concurrent mixed requests to scripts/serve.py on 127.0.0.1, then a report.

    python scripts/load.py --requests 300 --concurrency 8      # what `make load` runs
    python scripts/load.py --requests 2000 --max-seconds 600   # a longer soak

Starts `scripts/serve.py --port 0` (REST v1 events; --http-api for v2), warms it with one request
of each kind, then sends ``--requests`` requests from ``--concurrency`` threads, stopping early at
``--max-seconds``. The mix is mostly small photos and invalid requests (each photo costs ~0.3 s of
model time). The report: throughput, latency percentiles, answers by status, answers whose status
differs from the expected one, and the server's RSS after warm-up and at the end.
Only 127.0.0.1 is ever contacted.
"""

import argparse
import base64
import http.client
import io
import json
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from arguments import at_least_one, some_seconds
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
STARTUP_SECONDS = 60
REQUEST_TIMEOUT = 120


@dataclass(frozen=True)
class Request:
    kind: str
    path: str
    body: bytes
    headers: dict
    expected: int


def _jpeg(side: int) -> bytes:
    image = Image.open(REPO_ROOT / "examples" / "chelsea.jpg").convert("RGB")
    image.thumbnail((side, side))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def request_kinds() -> list[tuple[Request, int]]:
    """Each kind of request with its weight in the mix: a quarter photos, the rest refused at every stage."""
    small, medium, large = _jpeg(64), _jpeg(320), _jpeg(1024)
    jpeg = {"Content-Type": "image/jpeg"}
    as_json = {"Content-Type": "application/json"}
    bomb = bytearray(_jpeg(32))
    sof = bomb.index(b"\xff\xc0")
    bomb[sof + 5 : sof + 9] = (60_000).to_bytes(2, "big") * 2
    kinds = [
        (Request("photo 64 px", "/remove", small, jpeg, 200), 10),
        (Request("photo 320 px, webp", "/remove?format=webp", medium, jpeg, 200), 8),
        (
            Request(
                "photo 1024 px as JSON",
                "/remove",
                json.dumps({"image": base64.b64encode(large).decode()}).encode(),
                as_json | {"Accept": "application/json"},
                200,
            ),
            4,
        ),
        (Request("photo, max_size 0", "/remove?max_size=0", small, jpeg, 400), 12),
        (Request("bad JSON", "/remove", b'{"image": ', as_json, 400), 12),
        (Request("bad base64", "/remove", b'{"image": "*not base64*"}', as_json, 400), 10),
        (Request("foreign bucket", "/remove", b'{"s3": {"bucket": "someone-elses", "key": "a.jpg"}}', as_json, 403), 8),
        (Request("unknown route", "/nowhere", b"", {}, 404), 6),
        (Request("header bomb", "/remove", bytes(bomb), jpeg, 413), 10),
        (Request("text", "/remove", b"plain text, not a photo", {"Content-Type": "text/plain"}, 415), 10),
        (Request("truncated photo", "/remove", medium[: len(medium) // 2], jpeg, 422), 10),
    ]
    return kinds


def request_mix(count: int, seed: int = 8) -> list[Request]:
    kinds, weights = zip(*request_kinds(), strict=True)
    return random.Random(seed).choices(kinds, weights=weights, k=count)


@dataclass
class Report:
    sent: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    unexpected: dict[str, int] = field(default_factory=dict)  # "kind: got N" -> count
    failures: dict[str, int] = field(default_factory=dict)  # connection-level errors by type
    rss_start_mb: float = 0.0
    rss_end_mb: float = 0.0

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)

    def summary(self) -> dict:
        return {
            "requests": self.sent,
            "seconds": round(self.elapsed, 2),
            "throughput_per_s": round(self.sent / self.elapsed, 2) if self.elapsed else 0.0,
            "latency_ms": {name: round(self.percentile(q) * 1000, 1) for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))}
            | {"max": round(max(self.latencies, default=0) * 1000, 1)},
            "statuses": {str(status): count for status, count in sorted(self.statuses.items())},
            "unexpected": self.unexpected,
            "connection_failures": self.failures,
            "rss_mb": {"start": round(self.rss_start_mb, 1), "end": round(self.rss_end_mb, 1)},
        }


def rss_mb(pid: int) -> float:
    """The resident set size of process ``pid`` now, in MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class Server:
    """scripts/serve.py on 127.0.0.1 and a free port, for the length of a with-block."""

    def __init__(self, *, http_api: bool = False):
        self.arguments = [sys.executable, str(REPO_ROOT / "scripts" / "serve.py"), "--host", HOST, "--port", "0"]
        self.arguments += ["--http-api"] if http_api else []

    def __enter__(self) -> "Server":
        self.process = subprocess.Popen(
            self.arguments, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        ready = threading.Timer(STARTUP_SECONDS, self.process.kill)
        ready.start()
        first_line = self.process.stdout.readline()  # "serving http://127.0.0.1:PORT with ..."
        ready.cancel()
        if not first_line.startswith(f"serving http://{HOST}:"):
            self.process.kill()
            raise RuntimeError(f"serve.py did not start: {first_line!r}")
        self.port = int(first_line.split()[1].rsplit(":", 1)[1])
        # The handler logs and prints metrics on stdout: keep reading it, or a full pipe stalls the server.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def send(connection: http.client.HTTPConnection, request: Request) -> int:
    connection.request("POST", request.path, body=request.body, headers=request.headers)
    response = connection.getresponse()
    response.read()
    return response.status


def run(server: Server, requests: list[Request], *, concurrency: int, max_seconds: float) -> Report:
    """Warm the server with one request of each kind, then send ``requests`` from ``concurrency`` threads."""
    report = Report()
    warm = http.client.HTTPConnection(HOST, server.port, timeout=REQUEST_TIMEOUT)
    for kind, _ in request_kinds():
        send(warm, kind)
    warm.close()
    report.rss_start_mb = rss_mb(server.process.pid)

    pending = iter(requests)
    lock = threading.Lock()
    started = time.perf_counter()
    deadline = started + max_seconds

    def worker() -> None:
        connection = http.client.HTTPConnection(HOST, server.port, timeout=REQUEST_TIMEOUT)
        while time.perf_counter() < deadline:
            with lock:
                request = next(pending, None)
            if request is None:
                break
            began = time.perf_counter()
            try:
                status = send(connection, request)
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                connection = http.client.HTTPConnection(HOST, server.port, timeout=REQUEST_TIMEOUT)
                with lock:
                    report.sent += 1
                    report.failures[type(error).__name__] = report.failures.get(type(error).__name__, 0) + 1
                continue
            with lock:
                report.sent += 1
                report.latencies.append(time.perf_counter() - began)
                report.statuses[status] = report.statuses.get(status, 0) + 1
                if status != request.expected:
                    label = f"{request.kind}: got {status}"
                    report.unexpected[label] = report.unexpected.get(label, 0) + 1
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.elapsed = time.perf_counter() - started
    report.rss_end_mb = rss_mb(server.process.pid)
    return report


def print_report(summary: dict) -> None:
    latency = summary["latency_ms"]
    print(f"{summary['requests']} requests in {summary['seconds']} s: {summary['throughput_per_s']} requests/s")
    print(f"latency ms: p50 {latency['p50']}, p90 {latency['p90']}, p99 {latency['p99']}, max {latency['max']}")
    print("by status: " + ", ".join(f"{status}: {count}" for status, count in summary["statuses"].items()))
    print(
        f"unexpected statuses: {summary['unexpected'] or 'none'}; connection failures: {summary['connection_failures'] or 'none'}"
    )
    rss = summary["rss_mb"]
    print(f"server RSS: {rss['start']} MiB after warm-up, {rss['end']} MiB at the end ({rss['end'] - rss['start']:+.1f} MiB)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=at_least_one, default=300, help="how many requests to send (default 300)")
    parser.add_argument("--concurrency", type=at_least_one, default=8, help="client threads (default 8)")
    parser.add_argument("--max-seconds", type=some_seconds, default=300, help="stop sending after this long (default 300)")
    parser.add_argument("--http-api", action="store_true", help="serve HTTP API payload v2 events instead of REST v1")
    parser.add_argument("--json", type=Path, help="also write the report as JSON to this file")
    args = parser.parse_args(argv)
    if sys.platform != "linux":
        parser.error("it reads the server's memory from /proc: Linux only")
    with Server(http_api=args.http_api) as server:
        report = run(server, request_mix(args.requests), concurrency=args.concurrency, max_seconds=args.max_seconds)
    summary = report.summary()
    print_report(summary)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 1 if report.server_errors or report.failures or report.unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
