"""A warm handler keeps its memory steady over 200 sequential requests of every kind.

Run with -s to see the figures:
    .venv/bin/python -m pytest tests/integration/test_api_memory.py -s
"""

import base64
import gc
import json
import os

import pytest

REQUESTS = 200
WARM_UP = 20
GROWTH_LIMIT_MB = 60


def rss_mb() -> float:
    """Resident set size of this process now (not the peak), in MiB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def request_mix(api, photo: bytes) -> list[dict]:
    """One of each, in this order: two cut-outs (binary; JSON in, JSON out) and refusals at every stage of a request."""
    image = base64.b64encode(photo).decode()
    oversize = api.event(content_type="image/jpeg")
    oversize["body"] = "A" * (15 * 2**20)
    return [
        api.event(),
        api.event(
            json.dumps({"image": image, "format": "webp", "max_size": 64}),
            content_type="application/json",
            headers={"Accept": "application/json"},
        ),
        api.event(query={"background": "nope"}),
        api.event(json.dumps({"image": "###"}), content_type="application/json"),
        api.event(photo[: len(photo) // 2], content_type="image/jpeg"),
        api.event(b"not an image", content_type="image/png"),
        api.event(json.dumps({"s3": {"bucket": "elsewhere", "key": "a.jpg"}}), content_type="application/json"),
        oversize,
        api.event('{"image": ', content_type="application/json"),
        api.event(method="GET", path="/nowhere"),
    ]


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads RSS from /proc (Linux)")
def test_memory_is_steady_over_200_requests(rest_api, photo, capsys, record_property):
    events = request_mix(rest_api, photo)
    expected = [200, 200, 400, 400, 422, 415, 403, 413, 400, 404]

    def run(count: int) -> None:
        for index in range(count):
            reply = rest_api.call(events[index % len(events)])
            assert reply.status == expected[index % len(events)], reply.body[:200]
        capsys.readouterr()  # drop the EMF lines as they come, so captured output does not grow

    # GIVEN a handler that has served every kind of request a few times
    run(WARM_UP)
    gc.collect()
    before = rss_mb()
    # WHEN it serves 200 more
    run(REQUESTS)
    gc.collect()
    after = rss_mb()
    # THEN its resident memory grew by less than the bound
    record_property("rss_before_mb", round(before, 1))
    record_property("rss_after_mb", round(after, 1))
    with capsys.disabled():
        print(f"\nRSS after {WARM_UP} warm-up requests {before:.1f} MiB, after {REQUESTS} more {after:.1f} MiB")
    assert after - before < GROWTH_LIMIT_MB
