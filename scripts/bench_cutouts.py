"""A cut-out URL's first GET (computing) against repeated GETs of it (the stored result): `make bench`.

Runs `scripts/serve.py --local-s3` on 127.0.0.1 as `make serve` does, with one copy of the
1920x1080 benchmark photo per round, so that each round's first request computes a key never
seen before; the same URL is then fetched again several times. Every request is a real HTTP
GET of a signed URL, read to the last byte. A warm-up key is fetched first, so no round pays for
the process's first request.

Prints the figures and writes bench-results/cutouts.json, with the pass/fail of the target: a
stored result is answered in under a tenth of the computing request's time.
"""

import argparse
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench_photos import make_photos
from sign_url import signed_url

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench-results"
TARGET_RATIO = 0.1
STARTUP_SECONDS = 120


def timed_get(url: str, headers: dict | None = None) -> tuple[float, int, int]:
    """Seconds until the last byte, the status and the body's size of one GET."""
    request = urllib.request.Request(url, headers=headers or {})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as answer:  # a 304 is an answer, not a failure
        status, body = answer.code, answer.read()
    return time.perf_counter() - started, status, len(body)


class LocalServer:
    """`scripts/serve.py --local-s3 --images FOLDER --port 0`, with a signing secret of our own."""

    def __init__(self, images: Path, log: Path):
        self.secret = secrets.token_hex(16)
        env = {**os.environ, "URL_SIGNING_SECRET": self.secret}
        command = [sys.executable, str(REPO / "scripts" / "serve.py"), "--local-s3", "--images", str(images), "--port", "0"]
        with log.open("w") as output:
            self.process = subprocess.Popen(command, cwd=REPO, stdout=output, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + STARTUP_SECONDS
        while "sign others:" not in log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"scripts/serve.py --local-s3 did not start:\n{log.read_text()}")
            time.sleep(0.1)
        self.base = re.search(r"^serving (http://\S+) ", log.read_text(), re.MULTILINE).group(1)

    def url(self, key: str) -> str:
        return signed_url(self.base, self.secret, key, {})

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def time_round(url: str, repeats: int) -> dict:
    """One fresh URL: its first GET, the median of ``repeats`` GETs once stored, and of as many 304s."""
    computing, status, size = timed_get(url)
    assert status == 200, f"GET {url} answered {status}"
    again = [timed_get(url) for _ in range(repeats)]
    assert all(status == 200 and length == size for _, status, length in again), again
    etag = urllib.request.urlopen(urllib.request.Request(url, method="HEAD")).headers["ETag"]
    not_modified = [timed_get(url, {"If-None-Match": etag}) for _ in range(repeats)]
    assert all(status == 304 for _, status, _ in not_modified), not_modified
    return {
        "computing": computing,
        "stored": statistics.median(seconds for seconds, _, _ in again),
        "not_modified": statistics.median(seconds for seconds, _, _ in not_modified),
        "bytes": size,
    }


def measure(photo: Path, *, rounds: int, repeats: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-cutouts-") as folder:
        images = Path(folder) / "images"
        images.mkdir()
        keys = [f"round-{number}.jpg" for number in range(1, rounds + 1)]
        for key in ["warm-up.jpg", *keys]:
            shutil.copy(photo, images / key)
        server = LocalServer(images, Path(folder) / "serve.log")
        try:
            timed_get(server.url("warm-up.jpg"))
            figures = []
            for key in keys:
                figures.append(time_round(server.url(key), repeats))
                latest = figures[-1]
                print(
                    f"  {key}: computing {latest['computing']:.3f} s, stored {latest['stored']:.4f} s, "
                    f"304 {latest['not_modified']:.4f} s, {latest['bytes']:,} bytes",
                    flush=True,
                )
        finally:
            server.stop()
    first = statistics.median(figure["computing"] for figure in figures)
    later = statistics.median(figure["stored"] for figure in figures)
    return {
        "photo": f"{photo.name} (1920x1080)",
        "rounds": figures,
        "repeats_per_round": repeats,
        "median_computing_seconds": first,
        "median_stored_seconds": later,
        "median_not_modified_seconds": statistics.median(figure["not_modified"] for figure in figures),
        "stored_over_computing": later / first,
        "targets": {f"stored result in under {TARGET_RATIO} of the computing request's time": later / first < TARGET_RATIO},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="fresh keys, each computed once (default 5)")
    parser.add_argument("--repeats", type=int, default=5, help="GETs of each URL once it is stored (default 5)")
    parser.add_argument("--output", type=Path, default=RESULTS / "cutouts.json", help="where to write the JSON results")
    args = parser.parse_args()
    photo = make_photos(RESULTS / "photos")["hd"]
    print(f"cut-out URLs on scripts/serve.py --local-s3: {photo.name} (1920x1080), {args.rounds} rounds", flush=True)
    results = measure(photo, rounds=args.rounds, repeats=args.repeats)
    print(
        f"first GET (computing) {results['median_computing_seconds']:.3f} s, repeated GET (stored result) "
        f"{results['median_stored_seconds']:.4f} s, 304 {results['median_not_modified_seconds']:.4f} s (medians): "
        f"stored/computing = {results['stored_over_computing']:.3f}"
    )
    for target, passed in results["targets"].items():
        print(f"{'PASS' if passed else 'FAIL'}: {target}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {args.output.relative_to(REPO) if args.output.is_relative_to(REPO) else args.output}")


if __name__ == "__main__":
    main()
