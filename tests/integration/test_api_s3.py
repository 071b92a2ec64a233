"""POST /remove with an {"s3": {...}} body, against a local S3 server (moto) over HTTP with real boto3."""

import base64
import json

import pytest
from localaws import replace_before_get

from handler.settings import Settings
from handler.storage import Storage

BUCKET = "bgremove-api-input"


@pytest.fixture
def s3_client(s3):
    s3.create_bucket(Bucket=BUCKET)
    return s3


@pytest.fixture
def s3_api(api_with, s3_client):
    """The API allowed to read BUCKET, through a Storage over the local server."""
    return api_with(settings=Settings(input_buckets=(BUCKET,)), storage=Storage(client=s3_client))


def test_object_in_an_allowed_bucket_is_cut_out(s3_api, s3_client, photo):
    # GIVEN the photo stored under a key with a space, and a JSON body that references it
    s3_client.put_object(Bucket=BUCKET, Key="uploads/my cat.jpg", Body=photo)
    # WHEN it is posted as a reference, with options and Accept: application/json
    reply = s3_api.post_json(
        {"s3": {"bucket": BUCKET, "key": "uploads/my cat.jpg"}, "max_size": 60}, headers={"Accept": "application/json"}
    )
    # THEN it is the same result as posting the photo's bytes
    direct = s3_api.post(photo, content_type="image/jpeg", query={"max_size": "60"})
    assert reply.status == 200 and direct.status == 200
    assert base64.b64decode(reply.json()["image"]) == direct.body
    assert (reply.json()["width"], reply.json()["height"]) == (60, 40)


def test_missing_object_is_404(s3_api):
    reply = s3_api.post_json({"s3": {"bucket": BUCKET, "key": "uploads/nothing-here.jpg"}})
    assert reply.status == 404
    assert reply.json()["error"] == {"code": "not_found", "message": f"s3://{BUCKET}/uploads/nothing-here.jpg does not exist"}


def test_a_missing_object_with_a_long_emoji_key_is_quoted_cut_between_whole_characters(s3_api, log_lines):
    # GIVEN a key of 100 emoji (each two UTF-16 code units, as JSON escapes them), in no bucket
    key = "uploads/" + "\U0001f408" * 100
    reply = s3_api.post_json({"s3": {"bucket": BUCKET, "key": key}})
    # THEN the 404 is strict JSON whose message quotes the start of the key in whole emoji
    assert reply.status == 404
    message = json.loads(reply.body.decode("utf-8"))["error"]["message"]
    assert message.startswith(f"s3://{BUCKET}/uploads/\U0001f408") and "characters)" in message
    assert not any(0xD800 <= ord(character) <= 0xDFFF for character in message)  # no half of a pair
    (refused,) = [line for line in log_lines() if line.get("message") == "request refused"]
    assert refused["reason"] == message


@pytest.mark.parametrize(
    ("key", "words"),
    [("uploads/\ud800.jpg", "lone surrogate"), ("uploads/" + "a" * 1017, "1,025 bytes"), ("uploads/" + "é" * 509, "1,026 bytes")],
    ids=["lone-surrogate", "1025-bytes", "517-characters-1026-bytes"],
)
def test_a_key_s3_cannot_hold_is_a_short_400_before_s3_is_asked(s3_api, s3_client, key, words):
    # GIVEN a record of the S3 calls the API makes
    asked = []
    s3_client.meta.events.register("before-parameter-build.s3", lambda model, **_: asked.append(model.name))
    # WHEN a key that is not UTF-8, or is over S3's 1,024 bytes of it, is referenced
    reply = s3_api.post_json({"s3": {"bucket": BUCKET, "key": key}})
    # THEN it is a short 400 and S3 is never called
    assert (reply.status, reply.error_code) == (400, "bad_request")
    message = reply.json()["error"]["message"]
    assert words in message and len(message) < 200
    assert asked == []
    # AND a key of exactly 1,024 bytes is still looked up
    longest = s3_api.post_json({"s3": {"bucket": BUCKET, "key": "uploads/" + "a" * 1016}})
    assert longest.status == 404 and asked == ["HeadObject"]
    # AND its 404 quotes it cut short, as every message quotes a client's value (SECURITY.md)
    message = longest.json()["error"]["message"]
    assert message.startswith(f"s3://{BUCKET}/uploads/aaa") and "(1,048 characters)" in message and len(message) < 200


def test_object_replaced_while_it_is_read_is_409_and_asking_again_reads_the_new_one(s3_api, s3_client, photo):
    s3_client.put_object(Bucket=BUCKET, Key="uploads/cat.jpg", Body=b"not the photo yet")
    replace_before_get(s3_client, BUCKET, "uploads/cat.jpg", photo)
    body = {"s3": {"bucket": BUCKET, "key": "uploads/cat.jpg"}}
    reply = s3_api.post_json(body)
    assert reply.status == 409
    assert reply.json()["error"] == {
        "code": "object_changed",
        "message": f"s3://{BUCKET}/uploads/cat.jpg was replaced while it was being read; try again",
    }
    assert s3_api.post_json(body).status == 200


def test_other_buckets_stay_forbidden(s3_api, s3_client, photo):
    s3_client.create_bucket(Bucket="private-bucket")
    s3_client.put_object(Bucket="private-bucket", Key="secret.jpg", Body=photo)
    reply = s3_api.post_json({"s3": {"bucket": "private-bucket", "key": "secret.jpg"}})
    assert reply.status == 403
    assert reply.json()["error"]["code"] == "bucket_not_allowed"
