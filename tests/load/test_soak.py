"""A bounded soak of scripts/serve.py over real HTTP on 127.0.0.1: 300 concurrent mixed requests.

Run with -s to see the report (the same as `make load`):
    .venv/bin/python -m pytest tests/load/test_soak.py -s
"""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent / "scripts"))
import load  # noqa: E402

REQUESTS = 300
CONCURRENCY = 4
MAX_SECONDS = 600  # a bound on the run, not a speed check: a healthy run takes a minute or two
# Measured: +3 MiB over 300 requests from 8 clients once the handler ran on one thread of its own
# (+193 MiB from 4 clients while each connection's thread allocated in its own malloc arena).
RSS_GROWTH_LIMIT_MB = 40


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the server's RSS from /proc (Linux)")
def test_300_mixed_requests_get_their_expected_statuses_and_memory_stays_bounded(capsys):
    # GIVEN the local API, warmed with one request of each kind
    with load.Server() as server:
        # WHEN 300 requests (a quarter photos, the rest refused at every stage) come from 4 clients at once
        report = load.run(server, load.request_mix(REQUESTS), concurrency=CONCURRENCY, max_seconds=MAX_SECONDS)
    with capsys.disabled():
        print()
        load.print_report(report.summary())
    # THEN every request was answered, none with a 5xx, each with the status its kind expects
    assert report.sent == REQUESTS
    assert report.failures == {}
    assert report.server_errors == 0
    assert report.unexpected == {}
    # AND the server's resident memory grew by less than the bound
    assert report.rss_end_mb - report.rss_start_mb < RSS_GROWTH_LIMIT_MB
