"""GET /cutouts/{key}: signed cut-out URLs of objects in the source bucket, computed once and
stored, against the local S3 server over HTTP with real boto3 (both payload versions)."""

import io
import json
import re
import threading
import time
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime

import boto3
import numpy as np
import pytest
from helpers import encode, example_photo
from localaws import INPUT_BUCKET, OUTPUT_BUCKET, replace_before_get, replace_before_put
from PIL import Image

from handler import decode, responses
from handler.cutouts import Cutout
from handler.options import Options
from handler.pipeline import result_version
from handler.settings import BUNDLED_MODEL, Settings
from handler.signing import cutout_path, sign
from handler.storage import ObjectInfo, ObjectRef, Storage, result_key
from scripts import sam_template

SECRET = "test-signing-secret"
SETTINGS = Settings(source_bucket=INPUT_BUCKET, output_bucket=OUTPUT_BUCKET, url_signing_secret=SECRET)
PHOTO = encode(example_photo("astronaut", (120, 90)), "JPEG", quality=85)


class Exploding:
    """A segmenter, and a decoder, that fail the test if a request gets as far as using them."""

    model_path = BUNDLED_MODEL  # what the results it stands for were made with

    def predict_small(self, *args, **kwargs):
        raise AssertionError("the model ran")

    def __call__(self, *args, **kwargs):
        raise AssertionError("the photo was decoded")


class Cutouts:
    """Signed GET and HEAD requests for cut-outs through one payload version's API."""

    def __init__(self, api):
        self.api = api

    def request(self, key: str, options=None, *, method="GET", headers=None, secret=SECRET, signed_key=None, **extra):
        params = {name: str(value) for name, value in (options or {}).items()}
        if secret is not None:
            params["signature"] = sign(secret, key if signed_key is None else signed_key, params)
        params.update(extra)
        # REST APIs pass the path on percent-encoded; HTTP APIs decode rawPath first.
        path = cutout_path(key) if self.api.version == "v1" else "/cutouts/" + key
        return self.api.call(self.api.event(method=method, path=path, query=params, headers=headers))

    get = request

    def head(self, key: str, options=None, **kwargs):
        return self.request(key, options, method="HEAD", **kwargs)


@pytest.fixture
def cutouts(api_with, s3) -> Cutouts:
    s3.put_object(Bucket=INPUT_BUCKET, Key="products/astronaut.jpg", Body=PHOTO)
    return Cutouts(api_with(settings=SETTINGS, storage=Storage()))


@pytest.fixture
def offline(monkeypatch, api_with):
    """``offline()``: the same API with a model and a decoder that fail if used."""

    def build() -> Cutouts:
        monkeypatch.setattr(decode, "decode", Exploding())
        monkeypatch.setattr(decode, "open_image", Exploding())
        return Cutouts(api_with(settings=SETTINGS, storage=Storage(), segmenter=Exploding()))

    return build


def stored_objects(s3) -> list[dict]:
    return s3.list_objects_v2(Bucket=OUTPUT_BUCKET, Prefix="results/cutouts/").get("Contents", [])


def stored_key(s3, key: str) -> str:
    """Where a cut-out URL with the default options keeps the result of the source's current version."""
    etag = s3.head_object(Bucket=INPUT_BUCKET, Key=key)["ETag"].strip('"')
    return result_key("results/cutouts/", key, Options(), source_etag=etag)


def test_a_signed_url_gives_the_cutout_with_cache_headers(cutouts, s3):
    # WHEN a signed URL of a photo in the source bucket is fetched
    reply = cutouts.get("products/astronaut.jpg")
    # THEN it is the cut-out, with the headers a CDN caches by
    assert reply.status == 200 and reply.content_type == "image/png"
    image = Image.open(io.BytesIO(reply.body))
    assert image.size == (120, 90) and image.mode == "RGBA"
    alpha = np.asarray(image.getchannel("A"))
    assert alpha.min() == 0 and alpha.max() == 255
    assert reply.headers["Cache-Control"] == "public, max-age=86400"
    assert reply.headers["ETag"].startswith('"') and "Vary" not in reply.headers
    assert reply.headers["Last-Modified"].endswith(" GMT")
    # AND the result is stored with the source's ETag
    (stored,) = stored_objects(s3)
    assert stored["Key"] == stored_key(s3, "products/astronaut.jpg")
    assert re.fullmatch(r"results/cutouts/products/astronaut\.jpg\.[0-9a-f]{12}\.png", stored["Key"])
    source_etag = s3.head_object(Bucket=INPUT_BUCKET, Key="products/astronaut.jpg")["ETag"].strip('"')
    metadata = s3.head_object(Bucket=OUTPUT_BUCKET, Key=stored["Key"])["Metadata"]
    assert metadata["source-etag"] == source_etag and metadata["model"] == "u2netp"
    assert metadata["result-version"] == result_version(BUNDLED_MODEL)


def test_a_repeated_request_is_served_from_the_stored_result(cutouts, offline, s3):
    first = cutouts.get("products/astronaut.jpg", {"crop": "true"})
    (before,) = stored_objects(s3)
    # WHEN the same URL is fetched again by an API whose model and decoder fail if used
    again = offline().get("products/astronaut.jpg", {"crop": "true"})
    # THEN the answer is the stored object's bytes, and the stored object is untouched
    assert again.status == 200 and again.body == first.body
    assert again.headers["ETag"] == first.headers["ETag"]
    (after,) = stored_objects(s3)
    assert (after["ETag"], after["LastModified"]) == (before["ETag"], before["LastModified"])
    stored = s3.get_object(Bucket=OUTPUT_BUCKET, Key=after["Key"])
    assert stored["Body"].read() == again.body
    assert again.headers["Last-Modified"] == stored["LastModified"].strftime("%a, %d %b %Y %H:%M:%S GMT")


def test_a_result_another_version_of_the_code_made_is_made_again(cutouts, s3):
    # GIVEN a stored cut-out rewritten as another version of the code (or the model) made it: a
    # marker for its bytes, its metadata without this version's
    first = cutouts.get("products/astronaut.jpg")
    (stored,) = stored_objects(s3)
    metadata = s3.head_object(Bucket=OUTPUT_BUCKET, Key=stored["Key"])["Metadata"]
    s3.put_object(Bucket=OUTPUT_BUCKET, Key=stored["Key"], Body=b"old", Metadata={**metadata, "result-version": "0" * 16})
    # WHEN the URL is fetched again
    again = cutouts.get("products/astronaut.jpg")
    # THEN this version's cut-out is made, stored in its place and answered
    assert again.status == 200 and again.body == first.body
    assert s3.get_object(Bucket=OUTPUT_BUCKET, Key=stored["Key"])["Body"].read() == first.body
    assert s3.head_object(Bucket=OUTPUT_BUCKET, Key=stored["Key"])["Metadata"] == metadata


def test_another_version_of_the_code_gives_another_etag():
    # GIVEN the same source version and options, with results made by two versions of the code
    source, result = ObjectRef(INPUT_BUCKET, "products/a.jpg"), ObjectRef(OUTPUT_BUCKET, "results/cutouts/products/a.jpg.png")
    info = ObjectInfo(size=1, etag="0123abcd", metadata={}, last_modified=datetime.now(UTC))
    made_by = {version: Cutout(source, info, result, {"result-version": version}) for version in ("a" * 16, "b" * 16)}
    # THEN a client or a CDN holding the first does not get a 304 for it from the second
    assert made_by["a" * 16].etag != made_by["b" * 16].etag


def test_head_answers_the_headers_without_a_body(cutouts):
    got = cutouts.get("products/astronaut.jpg")
    head = cutouts.head("products/astronaut.jpg")
    assert head.status == 200 and head.body == b""
    assert head.content_type == "image/png" and head.headers["ETag"] == got.headers["ETag"]


def test_if_none_match_with_the_current_etag_is_a_304_without_decoding(cutouts, offline):
    etag = cutouts.get("products/astronaut.jpg").headers["ETag"]
    api = offline()
    reply = api.get("products/astronaut.jpg", headers={"If-None-Match": etag})
    assert reply.status == 304 and reply.body == b"" and reply.headers["ETag"] == etag
    # A weak comparison and a list of tags match too; another tag does not.
    assert api.get("products/astronaut.jpg", headers={"If-None-Match": f'"other", W/{etag}'}).status == 304
    # AND the same API does fail (500) where a request must decode: the check above could fail
    assert_refused(api.get("products/astronaut.jpg", {"crop": "1"}, headers={"If-None-Match": etag}), 500, "internal_error")


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        ("image/avif,image/webp,*/*;q=0.8", "image/webp"),
        ("image/png,*/*", "image/png"),
        ("image/webp;q=0, image/png", "image/png"),
        ("image/webp;q=0.5, image/png", "image/webp"),
    ],
)
def test_format_auto_follows_accept_and_says_so(cutouts, accept, media_type):
    reply = cutouts.get("products/astronaut.jpg", {"format": "auto"}, headers={"Accept": accept})
    assert reply.status == 200 and reply.content_type == media_type
    assert Image.open(io.BytesIO(reply.body)).format == media_type.split("/")[1].upper()
    assert reply.headers["Vary"] == "Accept"


def test_format_auto_gives_each_format_its_own_etag_and_object(cutouts, s3):
    webp = cutouts.get("products/astronaut.jpg", {"format": "auto"}, headers={"Accept": "image/webp"})
    png = cutouts.get("products/astronaut.jpg", {"format": "auto"}, headers={"Accept": "*/*"})
    assert webp.headers["ETag"] != png.headers["ETag"]
    keys = sorted(item["Key"] for item in stored_objects(s3))
    assert sorted(key.rsplit(".", 1)[1] for key in keys) == ["png", "webp"]


def test_equivalent_spellings_share_one_stored_result(cutouts, s3):
    first = cutouts.get("products/astronaut.jpg", {"crop": "1", "background": "#FFFFFF", "format": "jpg"})
    second = cutouts.get("products/astronaut.jpg", {"format": "jpeg", "background": "ffffff", "crop": "true"})
    assert first.status == second.status == 200 and first.content_type == "image/jpeg"
    assert first.headers["ETag"] == second.headers["ETag"] and first.body == second.body
    assert len(stored_objects(s3)) == 1


def test_a_replaced_source_gives_a_new_result_and_etag(cutouts, s3):
    first = cutouts.get("products/astronaut.jpg")
    s3.put_object(Bucket=INPUT_BUCKET, Key="products/astronaut.jpg", Body=encode(example_photo("coffee", (100, 80)), "JPEG"))
    second = cutouts.get("products/astronaut.jpg")
    assert second.status == 200 and second.headers["ETag"] != first.headers["ETag"]
    assert Image.open(io.BytesIO(second.body)).size == (100, 80)
    # AND the new version's result is stored beside the old one's (which the retention rule deletes)
    assert len(stored_objects(s3)) == 2
    assert s3.get_object(Bucket=OUTPUT_BUCKET, Key=stored_key(s3, "products/astronaut.jpg"))["Body"].read() == second.body
    # AND the old ETag no longer earns a 304
    assert cutouts.get("products/astronaut.jpg", headers={"If-None-Match": first.headers["ETag"]}).status == 200


def assert_refused(reply, status: int, code: str) -> None:
    assert (reply.status, reply.error_code) == (status, code), reply.body[:300]
    assert reply.headers["Cache-Control"] == "no-store"


def test_a_source_replaced_while_its_cutout_is_made_is_a_409_and_asking_again_gives_the_new_one(api_with, s3):
    # GIVEN a source that another writer replaces between the request's HEAD (the ETag it answers) and its GET
    storage = Storage()
    cutouts = Cutouts(api_with(settings=SETTINGS, storage=storage))
    s3.put_object(Bucket=INPUT_BUCKET, Key="products/mug.jpg", Body=PHOTO)
    replace_before_get(storage.client, INPUT_BUCKET, "products/mug.jpg", encode(example_photo("coffee", (100, 80)), "JPEG"))
    # THEN no answer pairs the old ETag with the new photo, nothing is stored, and asking again works
    assert_refused(cutouts.get("products/mug.jpg"), 409, "object_changed")
    assert stored_objects(s3) == []
    again = cutouts.get("products/mug.jpg")
    assert again.status == 200 and Image.open(io.BytesIO(again.body)).size == (100, 80)


def test_an_older_photos_cut_out_finished_last_never_replaces_what_the_newer_ones_redirect_serves(api_with, s3, monkeypatch):
    # GIVEN results too large for a response (so each answer redirects to the stored result, as a 12 MP
    # photo's does), and two environments answering cut-out URLs of the same photo
    monkeypatch.setattr(responses, "RESPONSE_BODY_LIMIT", 100)
    s3.put_object(Bucket=INPUT_BUCKET, Key="products/p.jpg", Body=PHOTO)
    slow_storage = Storage()
    slow = Cutouts(api_with(settings=SETTINGS, storage=slow_storage))
    fast = Cutouts(api_with(settings=SETTINGS, storage=Storage()))
    # WHEN the photo is replaced while the slow one cuts out the old version, and the fast one answers
    # for the new version before the slow one writes its result
    new = encode(example_photo("coffee", (100, 80)), "JPEG")
    replaced = replace_before_put(
        slow_storage.client, INPUT_BUCKET, "products/p.jpg", new, into=OUTPUT_BUCKET, then=lambda: fast.get("products/p.jpg")
    )
    old_reply = slow.get("products/p.jpg")
    # THEN each redirect serves the cut-out of the version it answered for. Regression: both versions
    # shared one key, and the old one's result, written last, was what the new one's redirect (kept
    # by CloudFront for half an hour) served
    for reply, size in ((replaced["meanwhile"], (100, 80)), (old_reply, (120, 90))):
        assert reply.status == 302
        with urllib.request.urlopen(reply.headers["Location"]) as stored:
            assert Image.open(io.BytesIO(stored.read())).size == size


def test_tampered_missing_or_wrong_signatures_are_refused(cutouts, s3):
    s3.put_object(Bucket=INPUT_BUCKET, Key="products/other.jpg", Body=PHOTO)
    # a signature for another key, for other options, none at all, and one made with another secret
    assert_refused(cutouts.get("products/other.jpg", signed_key="products/astronaut.jpg"), 403, "bad_signature")
    reply = cutouts.get(
        "products/astronaut.jpg", {"crop": "true"}, secret=None, signature=sign(SECRET, "products/astronaut.jpg", {})
    )
    assert_refused(reply, 403, "bad_signature")
    assert_refused(cutouts.get("products/astronaut.jpg", secret=None), 403, "bad_signature")
    assert_refused(cutouts.get("products/astronaut.jpg", secret="another secret"), 403, "bad_signature")
    assert stored_objects(s3) == []


def test_a_signature_for_a_key_cannot_pass_for_a_shorter_key_with_the_rest_as_an_option(cutouts, s3):
    # GIVEN a URL signed for a key that holds a newline and what reads like an option (no such object)
    signed = sign(SECRET, "products/astronaut.jpg\nmask=true", {})
    assert_refused(cutouts.get("products/astronaut.jpg\nmask=true", secret=None, signature=signed), 404, "not_found")
    # WHEN its signature is sent with the key cut at the newline and the rest as an option,
    # whose value Options.parse takes once stripped: the string to sign is the same
    reply = cutouts.get("products/astronaut.jpg", secret=None, mask="true\n", signature=signed)
    # THEN it is refused, and nothing is computed
    assert_refused(reply, 403, "bad_signature")
    assert stored_objects(s3) == []


def test_expiry_is_signed_and_enforced(cutouts):
    now = int(time.time())
    assert cutouts.get("products/astronaut.jpg", {"expires": now + 600}).status == 200
    assert_refused(cutouts.get("products/astronaut.jpg", {"expires": now - 1}), 403, "expired")
    # moving a signed expiry forward breaks the signature
    signed = sign(SECRET, "products/astronaut.jpg", {"expires": str(now - 1)})
    reply = cutouts.get("products/astronaut.jpg", secret=None, expires=str(now + 600), signature=signed)
    assert_refused(reply, 403, "bad_signature")
    assert_refused(cutouts.get("products/astronaut.jpg", {"expires": "tomorrow"}), 400, "invalid_option")
    # an expiry past any float lasts as long as it says: not a 500 (OverflowError) that trips the error alarm
    assert cutouts.get("products/astronaut.jpg", {"expires": "9" * 400}).status == 200


def test_no_cache_keeps_an_answer_past_its_urls_expiry(cutouts):
    # GIVEN a URL that expires in a minute, and the same options with no expiry
    expiring = cutouts.get("products/astronaut.jpg", {"expires": int(time.time()) + 60})
    lasting = cutouts.get("products/astronaut.jpg")
    # THEN a cache (CloudFront answers without asking the function) may keep the first for at most that minute
    assert expiring.status == lasting.status == 200
    assert 50 <= int(expiring.headers["Cache-Control"].removeprefix("public, max-age=")) <= 60
    assert lasting.headers["Cache-Control"] == f"public, max-age={SETTINGS.cutout_max_age}"


def cloudfront_cache_key(key: str, query: dict[str, str]) -> tuple:
    """The query part of the key under which CloudFront keeps an answer, as template.yaml's
    cache policy builds it (no Accept or Origin here: these requests send neither)."""
    policy = sam_template.load()["Resources"]["CutoutCachePolicy"]["Properties"]["CachePolicyConfig"]
    config = policy["ParametersInCacheKeyAndForwardedToOrigin"]["QueryStringsConfig"]
    behaviour, named = config["QueryStringBehavior"], set(config.get("QueryStrings", []))
    kept = {"all": lambda name: True, "whitelist": lambda name: name in named, "allExcept": lambda name: name not in named}
    return key, tuple((name, value) for name, value in query.items() if kept[behaviour](name))


def test_requests_cloudfront_keeps_under_one_key_get_one_answer(cutouts):
    # GIVEN a signed URL as a page puts it in <img src>, and the same URL with a parameter added
    # on the way (a cache buster, a tracking tag, an option misspelt in case)
    key, options = "products/astronaut.jpg", {"crop": "true"}
    signed = {**options, "signature": sign(SECRET, key, options)}
    variants = [signed, {**signed, "v": "2"}, {**signed, "utm_source": "mail"}, {**signed, "Crop": "false"}]
    # WHEN each is fetched
    answers = {}
    for query in variants:
        reply = cutouts.get(key, secret=None, **query)
        answers.setdefault(cloudfront_cache_key(key, query), set()).add((reply.status, reply.body))
    # THEN requests CloudFront would answer from one cache entry get one answer from the function:
    # else the 403 for the added parameter, which CloudFront keeps despite no-store, is every viewer's
    assert all(len(replies) == 1 for replies in answers.values()), answers.keys()


def test_each_answer_is_counted_and_a_cutout_the_model_made_is_logged(cutouts, app, capsys, log_lines):
    # WHEN a cut-out URL is fetched, fetched again, and revalidated by a cache holding it
    first = cutouts.get("products/astronaut.jpg")
    again = cutouts.get("products/astronaut.jpg")
    revalidated = cutouts.get("products/astronaut.jpg", headers={"If-None-Match": first.headers["ETag"]})
    assert (first.status, again.status, revalidated.status) == (200, 200, 304)
    app.metrics.flush_metrics()
    # THEN CloudWatch counts one of each answer, and the one the model made has its latency and size
    (blob,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [blob[name] for name in ("CutoutsMade", "CutoutsFromStore", "CutoutsNotModified")] == [[1.0]] * 3
    assert blob["InputPixels"] == [120 * 90] and blob["OutputBytes"] == [len(first.body)] and len(blob["Latency"]) == 1
    # AND it is logged as POST /remove's are, with the route that made it
    (made,) = [line for line in log_lines() if line.get("message") == "cut-out made"]
    assert (made["route"], made["status"], made["output_bytes"]) == ("GET /cutouts", 200, len(first.body))
    assert {"decode", "inference", "encoding"} <= set(made["stage_ms"])


def test_logs_hold_no_credential_signature_or_secret_of_a_request(cutouts, log_lines):
    # GIVEN requests that carry credentials in their headers, as browsers and API clients send them
    credentials = {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.c3ViamVjdA.dG9rZW4", "Cookie": "session=c00k1e5ecret"}
    credentials["x-api-key"] = "k3y0f7h3ca11er"
    signature = sign(SECRET, "products/astronaut.jpg", {"crop": "true"})
    # WHEN they are answered: a cut-out made, a wrong signature, an unknown option, a missing
    # object, and a photo and a bad body to POST /remove
    replies = [
        cutouts.get("products/astronaut.jpg", {"crop": "true"}, headers=credentials),
        cutouts.get("products/astronaut.jpg", {"crop": "true"}, headers=credentials, secret="another secret"),
        cutouts.get("products/astronaut.jpg", {"bogus": "1"}, headers=credentials),
        cutouts.get("products/missing.jpg", headers=credentials),
        cutouts.api.post(PHOTO, content_type="image/jpeg", headers=credentials),
        cutouts.api.post(b"plain text", content_type="image/jpeg", headers=credentials),
    ]
    assert [reply.status for reply in replies] == [200, 403, 400, 404, 200, 415]
    # THEN each is logged, and no log line holds a credential, a signature or the signing secret
    logged = json.dumps(log_lines())
    assert logged.count('"request refused"') == 4 and logged.count('"cut-out made"') == 2
    wrong_signature = sign("another secret", "products/astronaut.jpg", {"crop": "true"})
    assert [value for value in (*credentials.values(), signature, wrong_signature) if value in logged] == []
    assert SECRET not in logged and "Signature" not in logged


def test_the_signing_secret_is_not_in_the_printed_form_of_the_settings():
    # GIVEN settings read from an environment that gives the secret directly, as scripts/serve.py does
    settings = Settings.from_env({"URL_SIGNING_SECRET": SECRET, "SOURCE_BUCKET": INPUT_BUCKET})
    # WHEN they are printed, as a debugger, a log call or an assertion message would print them
    printed = repr(settings)
    # THEN the secret is not there; the rest is
    assert SECRET not in printed and f"source_bucket='{INPUT_BUCKET}'" in printed


def test_a_missing_object_is_a_404(cutouts):
    assert_refused(cutouts.get("products/missing.jpg"), 404, "not_found")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [(b"plain text, no image", 415, "unsupported_media_type"), (PHOTO[: len(PHOTO) // 3], 422, "undecodable_image")],
    ids=["not an image", "truncated JPEG"],
)
def test_an_object_that_is_no_usable_image_gets_the_same_error_as_post_remove(cutouts, s3, body, status, code):
    s3.put_object(Bucket=INPUT_BUCKET, Key="products/bad.jpg", Body=body)
    assert_refused(cutouts.get("products/bad.jpg"), status, code)
    assert stored_objects(s3) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "the image is empty (0 bytes): it must be a JPEG, PNG, WebP, GIF, BMP, TIFF or HEIC image"),
        (b"plain text, no image", "the bytes are not an image in a supported format (JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC)"),
    ],
    ids=["empty", "not an image"],
)
def test_an_object_that_is_no_image_is_refused_without_talk_of_a_request_body(cutouts, s3, body, message):
    # A GET sends no body: the refusal of the source object's bytes must not tell the client to send one
    s3.put_object(Bucket=INPUT_BUCKET, Key="products/bad.jpg", Body=body)
    reply = cutouts.get("products/bad.jpg")
    assert_refused(reply, 415, "unsupported_media_type")
    assert reply.json()["error"]["message"] == message


def test_an_object_over_max_object_bytes_is_a_413_as_openapi_shows_it(api_with, s3, repo_root):
    # GIVEN a deployment whose objects may be at most 1,000 bytes
    s3.put_object(Bucket=INPUT_BUCKET, Key="products/astronaut.jpg", Body=PHOTO)
    cutouts = Cutouts(api_with(settings=replace(SETTINGS, max_object_bytes=1000), storage=Storage()))
    # WHEN a cut-out of a larger photo is asked for
    reply = cutouts.get("products/astronaut.jpg")
    # THEN it is a 413 naming the object and the limit (a GET has no body to be too large)
    assert_refused(reply, 413, "too_large")
    shape = re.compile(r"s3://\S+ is [\d,]+ bytes; the limit is [\d,]+")
    assert shape.fullmatch(reply.json()["error"]["message"])
    # AND openapi.json's example for both methods has that shape
    operations = json.loads((repo_root / "openapi.json").read_text())["paths"]["/cutouts/{key}"]
    for method in ("get", "head"):
        example = operations[method]["responses"]["413"]["content"]["application/json"]["examples"]["too_large"]
        assert shape.fullmatch(example["value"]["error"]["message"]), method


def test_unknown_repeated_and_invalid_options_are_400s(cutouts):
    assert_refused(cutouts.get("products/astronaut.jpg", {"store": "true"}), 400, "invalid_option")
    assert_refused(cutouts.get("products/astronaut.jpg", {"colour": "red"}), 400, "invalid_option")
    assert_refused(cutouts.get("products/astronaut.jpg", {"max_size": "huge"}), 400, "invalid_option")
    assert_refused(cutouts.get("products/astronaut.jpg", {"format": "jpeg"}), 400, "invalid_option")
    repeated = cutouts.api.event(method="GET", path="/cutouts/products/astronaut.jpg", query={"crop": ["1", "0"]})
    assert_refused(cutouts.api.call(repeated), 400, "invalid_option")


@pytest.mark.parametrize("key", ["products/" + "a" * 1016, "products/" + "é" * 508], ids=["1025-bytes", "517-characters"])
def test_a_key_longer_than_s3_takes_is_a_400(cutouts, key):
    # S3 keys are at most 1,024 bytes of UTF-8: such a path can name no object, and S3 would answer it with an error
    assert_refused(cutouts.get(key), 400, "bad_request")


def test_a_key_that_is_not_utf_8_is_a_400(cutouts):
    # REST APIs deliver the path percent-encoded; an HTTP API's decoded rawPath can hold a lone surrogate
    path = "/cutouts/products/%ED%A0%80.jpg" if cutouts.api.version == "v1" else "/cutouts/products/\ud800.jpg"
    assert_refused(cutouts.api.call(cutouts.api.event(method="GET", path=path)), 400, "bad_request")


@pytest.mark.parametrize("key", ["a b/photo 1.jpg", "c++/x+y.jpg", "100% real.jpg", "café/ünï 写真.jpg", "a%2Fb.jpg"])
def test_keys_with_spaces_plus_percent_and_non_ascii(cutouts, s3, key):
    s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=PHOTO)
    reply = cutouts.get(key)
    assert reply.status == 200 and Image.open(io.BytesIO(reply.body)).size == (120, 90)
    (stored,) = stored_objects(s3)
    assert stored["Key"] == stored_key(s3, key) and stored["Key"].startswith("results/cutouts/" + key + ".")


def test_two_simultaneous_first_requests_both_succeed_and_leave_one_object(cutouts, s3):
    replies = []

    def fetch():
        replies.append(cutouts.get("products/astronaut.jpg", {"max_size": "64"}))

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [reply.status for reply in replies] == [200, 200]
    assert replies[0].body == replies[1].body and replies[0].headers["ETag"] == replies[1].headers["ETag"]
    assert len(stored_objects(s3)) == 1


def test_a_stored_result_deleted_between_its_head_and_get_is_made_again(api_with, s3):
    # GIVEN a stored result that the retention rule deletes just after the route's HEAD found it
    s3.put_object(Bucket=INPUT_BUCKET, Key="products/astronaut.jpg", Body=PHOTO)
    storage = Storage()
    api = Cutouts(api_with(settings=SETTINGS, storage=storage))
    first = api.get("products/astronaut.jpg")
    (stored,) = stored_objects(s3)
    deleter = boto3.client("s3")

    def expire(params, **_):
        if params["Bucket"] == OUTPUT_BUCKET and params["Key"] == stored["Key"]:
            deleter.delete_object(Bucket=OUTPUT_BUCKET, Key=stored["Key"])

    storage.client.meta.events.register("before-parameter-build.s3.GetObject", expire)
    # WHEN the URL is asked for again
    reply = api.get("products/astronaut.jpg")
    # THEN the cut-out is made again and stored again, not a 404 naming the output bucket
    assert first.status == reply.status == 200 and reply.body == first.body
    assert [item["Key"] for item in stored_objects(s3)] == [stored["Key"]]


def test_a_result_too_large_for_a_response_redirects_for_less_than_the_links_life(rest_api, api_with, s3):
    # GIVEN a noisy 2400x1600 photo: its RGBA PNG is ~6-7 MB, over Lambda's response limit
    rng = np.random.default_rng(0)
    pixels = np.asarray(example_photo("coffee", (2400, 1600))).astype(np.int16) + rng.integers(-40, 41, (1600, 2400, 3))
    s3.put_object(
        Bucket=INPUT_BUCKET, Key="big.jpg", Body=encode(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), "JPEG")
    )
    api = Cutouts(api_with(settings=SETTINGS, storage=Storage()))
    if api.api.version != "v1":
        pytest.skip("one payload version is enough: a 4 MP cut-out takes seconds and the decision is shared")
    for attempt in ("computed", "stored"):
        reply = api.get("big.jpg")
        assert reply.status == 302, attempt
        max_age = int(reply.headers["Cache-Control"].removeprefix("public, max-age="))
        assert 0 < max_age < SETTINGS.url_expires_in
        with urllib.request.urlopen(reply.headers["Location"]) as response:
            png = response.read()
        assert len(png) > 4_700_000 and Image.open(io.BytesIO(png)).size == (2400, 1600)


def test_unsigned_urls_work_where_no_secret_is_configured(api_with, s3):
    s3.put_object(Bucket=INPUT_BUCKET, Key="open.jpg", Body=PHOTO)
    unsigned = Cutouts(api_with(settings=Settings(source_bucket=INPUT_BUCKET, output_bucket=OUTPUT_BUCKET), storage=Storage()))
    assert unsigned.get("open.jpg", secret=None).status == 200
    assert_refused(unsigned.get("open.jpg", {"expires": int(time.time()) - 5}, secret=None), 403, "expired")


def test_the_deployed_secret_is_read_from_secrets_manager(api_with, s3, aws):
    import boto3

    arn = boto3.client("secretsmanager").create_secret(Name="bgremove-url-signing", SecretString="from-secrets-manager")["ARN"]
    s3.put_object(Bucket=INPUT_BUCKET, Key="s.jpg", Body=PHOTO)
    settings = Settings(source_bucket=INPUT_BUCKET, output_bucket=OUTPUT_BUCKET, url_signing_secret_arn=arn)
    deployed = Cutouts(api_with(settings=settings, storage=Storage()))
    assert deployed.get("s.jpg", secret="from-secrets-manager").status == 200
    assert_refused(deployed.get("s.jpg", secret=SECRET), 403, "bad_signature")


def deployed_with_secret(api_with, s3, name: str, value: str) -> tuple[Cutouts, str]:
    """A warm API reading its signing secret from Secrets Manager, as deployed, that has read
    ``value`` there once (a photo served); and the secret's ARN."""
    import boto3

    arn = boto3.client("secretsmanager").create_secret(Name=name, SecretString=value)["ARN"]
    s3.put_object(Bucket=INPUT_BUCKET, Key="s.jpg", Body=PHOTO)
    settings = Settings(source_bucket=INPUT_BUCKET, output_bucket=OUTPUT_BUCKET, url_signing_secret_arn=arn)
    deployed = Cutouts(api_with(settings=settings, storage=Storage()))
    assert deployed.get("s.jpg", secret=value).status == 200
    return deployed, arn


def test_a_new_secret_value_is_used_once_the_one_read_is_max_age_old(api_with, s3, aws, monkeypatch):
    import boto3

    # GIVEN a deployed API that has read its secret, with Powertools keeping a read for 1 s (deployed: 300)
    monkeypatch.setenv("POWERTOOLS_PARAMETERS_MAX_AGE", "1")
    deployed, arn = deployed_with_secret(api_with, s3, "bgremove-url-signing-new-value", "first value")
    # WHEN the secret gets a new value, to revoke every URL signed with the first, and that time passes
    boto3.client("secretsmanager").put_secret_value(SecretId=arn, SecretString="second value")
    time.sleep(1.5)
    # THEN the same warm API takes URLs signed with the new value and refuses the old ones
    assert deployed.get("s.jpg", secret="second value").status == 200
    assert_refused(deployed.get("s.jpg", secret="first value"), 403, "bad_signature")


def test_until_the_secret_read_is_max_age_old_old_urls_are_answered_and_cacheable(api_with, s3, aws, monkeypatch):
    import boto3

    # GIVEN a deployed API that has read its secret, keeping the read as deployed (300 s)
    monkeypatch.setenv("POWERTOOLS_PARAMETERS_MAX_AGE", "300")
    deployed, arn = deployed_with_secret(api_with, s3, "bgremove-url-signing-rotated", "old value")
    # WHEN the secret gets a new value, and URLs come in at once
    boto3.client("secretsmanager").put_secret_value(SecretId=arn, SecretString="new value")
    old, new = deployed.get("s.jpg", secret="old value"), deployed.get("s.jpg", secret="new value")
    # THEN the old URL is still a cacheable 200 and the new one a 403: so the README's revocation
    # waits out the max age before it drops CloudFront's copies (tests/unit/test_docs.py)
    assert old.status == 200 and old.headers["Cache-Control"] == f"public, max-age={Settings().cutout_max_age}"
    assert_refused(new, 403, "bad_signature")


def test_without_source_and_output_buckets_the_route_says_it_is_not_enabled(api_with):
    reply = Cutouts(api_with(settings=Settings(url_signing_secret=SECRET))).get("x.jpg")
    assert_refused(reply, 404, "not_found")
    assert "SOURCE_BUCKET" in reply.json()["error"]["message"]
