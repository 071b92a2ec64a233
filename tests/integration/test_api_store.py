"""Stored results, links and POST /uploads, against a local S3 server over HTTP with real boto3."""

import io
import json
import urllib.request

import numpy as np
import pytest
from helpers import encode, example_photo
from localaws import INPUT_BUCKET, OUTPUT_BUCKET, replace_before_put
from PIL import Image

from handler.settings import Settings
from handler.storage import ObjectRef, Storage
from handler.worker import Worker

SETTINGS = Settings(input_buckets=(INPUT_BUCKET,), output_bucket=OUTPUT_BUCKET, upload_bucket=INPUT_BUCKET)


@pytest.fixture
def store_api(api_with, s3):
    """The API with an output and an upload bucket on the local S3 server."""
    return api_with(settings=SETTINGS, storage=Storage())


def fetch(url: str, **kwargs) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, **kwargs)) as response:
        return response.read()


def output_keys(s3) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=OUTPUT_BUCKET).get("Contents", [])]


def test_store_writes_the_result_and_links_it(store_api, s3, photo):
    # GIVEN a raw photo posted with store=true, twice (a client retry)
    first = store_api.post(photo, content_type="image/jpeg", query={"store": "true"})
    again = store_api.post(photo, content_type="image/jpeg", query={"store": "true"})
    inline = store_api.post(photo, content_type="image/jpeg")
    # THEN the answer is a link, the retry lands on the same key, and the link serves the same PNG
    link = first.json()
    assert first.status == 200 and set(link) == {"bucket", "key", "url", "expires_in"}
    assert link["bucket"] == OUTPUT_BUCKET and link["key"].startswith("results/api/") and link["key"].endswith(".png")
    assert again.json()["key"] == link["key"] and output_keys(s3) == [link["key"]]
    assert fetch(link["url"]) == inline.body
    stored = s3.head_object(Bucket=OUTPUT_BUCKET, Key=link["key"])
    assert stored["ContentType"] == "image/png" and stored["Metadata"]["model"] == "u2netp"


def test_store_of_an_s3_reference_with_a_unicode_key(store_api, s3, photo):
    # Regression: the source went into the result's metadata as is, and S3 metadata must be ASCII.
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/café ünï.jpg", Body=photo)
    reply = store_api.post_json({"s3": {"bucket": INPUT_BUCKET, "key": "uploads/café ünï.jpg"}, "store": True})
    assert reply.status == 200 and "café ünï" in reply.json()["key"]
    stored = s3.head_object(Bucket=OUTPUT_BUCKET, Key=reply.json()["key"])
    assert stored["Metadata"]["source"] == f"s3/{INPUT_BUCKET}/uploads/caf%C3%A9 %C3%BCn%C3%AF.jpg"


def test_store_of_an_s3_reference_keys_the_result_by_the_source(store_api, s3, photo):
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/cat.jpg", Body=photo)
    reply = store_api.post_json({"s3": {"bucket": INPUT_BUCKET, "key": "uploads/cat.jpg"}, "store": True, "format": "webp"})
    assert reply.status == 200
    assert reply.json()["key"].startswith(f"results/s3/{INPUT_BUCKET}/uploads/cat.") and reply.json()["key"].endswith(".webp")
    assert Image.open(io.BytesIO(fetch(reply.json()["url"]))).format == "WEBP"


def test_a_link_to_an_s3_photos_result_serves_the_version_it_answered_for(api_with, s3, photo):
    # GIVEN two environments storing results of the same S3 photo for two clients
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/cat.jpg", Body=photo)
    slow_storage = Storage()
    slow, fast = api_with(settings=SETTINGS, storage=slow_storage), api_with(settings=SETTINGS, storage=Storage())
    request = {"s3": {"bucket": INPUT_BUCKET, "key": "uploads/cat.jpg"}, "store": True}
    # WHEN the photo is replaced while the slow one cuts out the old version, and the fast one links
    # the new version's result before the slow one writes its own
    new = encode(example_photo("coffee", (100, 80)), "JPEG")
    replaced = replace_before_put(
        slow_storage.client, INPUT_BUCKET, "uploads/cat.jpg", new, into=OUTPUT_BUCKET, then=lambda: fast.post_json(request)
    )
    old_reply = slow.post_json(request)
    # THEN each link serves the cut-out of the version it answered for. Regression: both versions
    # shared one key, and the old one's result, written last, was what the new one's link served
    old_size = Image.open(io.BytesIO(photo)).size
    for reply, size in ((replaced["meanwhile"], (100, 80)), (old_reply, old_size)):
        assert reply.status == 200
        assert Image.open(io.BytesIO(fetch(reply.json()["url"]))).size == size


@pytest.fixture(scope="module")
def noisy_photo() -> bytes:
    """A 2400x1600 photo with sensor-like noise: its RGBA PNG is ~6-7 MB, over Lambda's response limit."""
    rng = np.random.default_rng(0)
    pixels = np.asarray(example_photo("coffee", (2400, 1600))).astype(np.int16) + rng.integers(-40, 41, (1600, 2400, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_a_result_too_large_to_return_comes_back_as_a_link(rest_api, api_with, s3, noisy_photo):
    api = api_with(settings=SETTINGS, storage=Storage())
    if api.version != "v1":
        pytest.skip("one payload version is enough: a 4 MP cut-out takes seconds and the decision is shared")
    # WHEN the raw photo is posted expecting image bytes
    reply = api.post(noisy_photo, content_type="image/jpeg")
    # THEN it is redirected to the stored result, which is the whole PNG
    assert reply.status == 303
    location = reply.headers["Location"]
    assert location == reply.json()["url"]
    png = fetch(location)
    assert len(png) > 4_700_000
    image = Image.open(io.BytesIO(png))
    assert image.size == (2400, 1600) and image.mode == "RGBA"
    # AND a client that asked for JSON gets the link as a 200
    as_json = api.post(noisy_photo, content_type="image/jpeg", headers={"Accept": "application/json"})
    assert as_json.status == 200 and as_json.json()["key"] == reply.json()["key"]


def test_uploads_give_a_presigned_put_and_the_result_appears_where_promised(store_api, s3, photo, segmenter):
    # GIVEN an upload link for a JPEG of the photo's size
    reply = store_api.post_json({"content_type": "image/jpeg", "size": len(photo)}, path="/uploads")
    assert reply.status == 200
    upload = reply.json()
    assert upload["bucket"] == INPUT_BUCKET and upload["key"].startswith("uploads/") and upload["key"].endswith(".jpg")
    # WHEN the client PUTs the photo and the S3 pipeline processes it
    fetch(upload["upload_url"], data=photo, method="PUT", headers={"Content-Type": "image/jpeg"})
    worker = Worker(storage=Storage(), segmenter=segmenter, settings=SETTINGS)
    assert worker.process(ObjectRef(upload["bucket"], upload["key"])) == "written"
    # THEN the result is at the promised key, and the promised URL serves it
    assert output_keys(s3) == [upload["result"]["key"]]
    assert Image.open(io.BytesIO(fetch(upload["result_url"]))).mode == "RGBA"


@pytest.mark.parametrize(
    ("document", "status", "words"),
    [
        ({"content_type": "text/html", "size": 10}, 400, "content_type must be one of"),
        ({"content_type": ["image/jpeg"], "size": 10}, 400, "not ['image/jpeg']"),
        ({"content_type": {"type": "image/jpeg"}, "size": 10}, 400, "content_type must be one of"),
        ({"content_type": "image/jpeg", "size": 0}, 400, "size must be"),
        ({"content_type": "image/jpeg", "size": "12"}, 400, "size must be"),
        ({"content_type": "image/jpeg", "size": 10, "key": "../etc"}, 400, "unknown field 'key'"),
        ({"content_type": "image/jpeg", "size": 60 * 1024 * 1024}, 413, "is 62,914,560 bytes; the limit is"),
        ({"content_type": "image/jpeg", "size": int("9" * 4000)}, 413, "(4,000 characters) bytes; the limit is"),
    ],
)
def test_bad_upload_requests_are_refused(store_api, document, status, words):
    reply = store_api.post_json(document, path="/uploads")
    message = reply.json()["error"]["message"]
    assert reply.status == status and words in message and len(message) < 300


def test_uploads_need_an_upload_bucket(api_with, s3):
    reply = api_with(settings=Settings(), storage=Storage()).post_json(
        {"content_type": "image/jpeg", "size": 10}, path="/uploads"
    )
    assert reply.status == 400 and "UPLOAD_BUCKET" in reply.json()["error"]["message"]


def test_links_are_json_documents(store_api, photo):
    reply = store_api.post(photo, content_type="image/jpeg", query={"store": "true"})
    assert json.loads(reply.body)["expires_in"] == SETTINGS.url_expires_in
