"""Hostile cut-out URLs through api_handler (REST v1 and HTTP API v2 events): odd keys, query
strings and signatures, each with the answer the contract gives it, over the local S3 server.

A case's path is what the client sends after /cutouts/, percent-encoded; the REST API passes it
on as sent and the HTTP API decodes it, as API Gateway does. Unless a case says otherwise, the
URL is signed correctly for the decoded key and its parameters.
"""

import io
import time
from dataclasses import dataclass, field
from urllib.parse import unquote

import pytest
from corpus.test_corpus import LEAKS, MAX_MESSAGE_CHARS
from helpers import encode, example_photo
from localaws import INPUT_BUCKET, OUTPUT_BUCKET
from PIL import Image

from handler.settings import Settings
from handler.signing import sign
from handler.storage import Storage

SECRET = "corpus-url-signing-secret"
PHOTO = encode(example_photo("chelsea", (80, 60)), "JPEG")
SOURCE_KEYS = ["cat.jpg", "a b/c d.jpg", "c++.jpg", "100%.jpg", "café/ü.jpg", "../../etc/cat.jpg", "x/%2F.jpg"]
NOW = int(time.time())


@dataclass(frozen=True)
class Case:
    path: str
    query: list[tuple[str, str]] = field(default_factory=list)
    status: int = 200
    code: str | None = None
    signature: str = "valid"  # valid | none | wrong | upper | as given in the query
    versions: tuple[str, ...] = ("v1", "v2")
    method: str = "GET"


CASES = {
    "plain": Case("cat.jpg"),
    "head": Case("cat.jpg", method="HEAD"),
    "encoded_spaces": Case("a%20b/c%20d.jpg"),
    "plus_is_a_plus": Case("c%2B%2B.jpg"),
    "literal_plus_in_path": Case("c++.jpg"),
    "percent_in_key": Case("100%25.jpg"),
    "utf8_key": Case("caf%C3%A9/%C3%BC.jpg"),
    "dotdot_key_is_opaque": Case("..%2F..%2Fetc%2Fcat.jpg"),
    "dotdot_literal_segments": Case("../../etc/cat.jpg"),
    "encoded_percent_2f_is_literal": Case("x/%252F.jpg"),
    "missing_object": Case("dog.jpg", status=404, code="not_found"),
    "invalid_utf8_key": Case("%FF%FE.jpg", status=400, code="bad_request", versions=("v1",)),
    "empty_key": Case("", status=404, code="not_found"),
    "newline_in_key": Case("a%0Ab.jpg", status=404, code="not_found"),
    "all_options": Case(
        "cat.jpg",
        [("format", "jpeg"), ("background", "#336699"), ("crop", "1"), ("max_size", "40"), ("refine", "on"), ("hard", "yes")],
    ),
    "format_auto": Case("cat.jpg", [("format", "AUTO")]),
    "unknown_option": Case("cat.jpg", [("colour", "red")], 400, "invalid_option"),
    "store_is_not_a_cutout_option": Case("cat.jpg", [("store", "true")], 400, "invalid_option"),
    "format_gif": Case("cat.jpg", [("format", "gif")], 400, "invalid_option"),
    "jpeg_with_alpha": Case("cat.jpg", [("format", "jpeg")], 400, "invalid_option"),
    "repeated_option": Case("cat.jpg", [("crop", "1"), ("crop", "0"), ("signature", "0" * 64)], 400, "invalid_option", "given"),
    "repeated_signature": Case("cat.jpg", [("signature", "a" * 64), ("signature", "b" * 64)], 400, "invalid_option", "given"),
    "huge_option_value": Case("cat.jpg", [("background", "#" + "f" * 100_000)], 400, "invalid_option"),
    "missing_signature": Case("cat.jpg", status=403, code="bad_signature", signature="none"),
    "wrong_signature": Case("cat.jpg", status=403, code="bad_signature", signature="wrong"),
    "uppercase_signature": Case("cat.jpg", status=403, code="bad_signature", signature="upper"),
    "huge_signature": Case("cat.jpg", [("signature", "0" * 100_000)], 403, "bad_signature", "given"),
    "non_ascii_signature": Case("cat.jpg", [("signature", "ü" * 64)], 403, "bad_signature", "given"),
    "empty_signature": Case("cat.jpg", [("signature", "")], 403, "bad_signature", "given"),
    "signature_for_missing_object": Case("dog.jpg", status=403, code="bad_signature", signature="wrong"),
    "expired": Case("cat.jpg", [("expires", str(NOW - 60))], 403, "expired"),
    "expires_far_future": Case("cat.jpg", [("expires", "9" * 30)]),
    "expires_not_a_number": Case("cat.jpg", [("expires", "soon")], 400, "invalid_option"),
    "expires_float": Case("cat.jpg", [("expires", f"{NOW + 60}.5")], 400, "invalid_option"),
}


def event_for(case: Case, api):
    params = dict(case.query)
    if case.signature != "given":
        key = unquote(case.path)
        signature = sign(SECRET, key, params)
        params["signature"] = {"valid": signature, "upper": signature.upper(), "wrong": sign("other", key, params)}.get(
            case.signature
        )
        params = {name: value for name, value in params.items() if value is not None}
    query = {}
    for name, value in case.query if case.signature == "given" else params.items():
        query.setdefault(name, []).append(value)
    path = "/cutouts/" + (case.path if api.version == "v1" else unquote(case.path))
    return api.event(method=case.method, path=path, query=query)


@pytest.fixture
def corpus_api(api_with, s3):
    for key in SOURCE_KEYS:
        s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=PHOTO)
    settings = Settings(source_bucket=INPUT_BUCKET, output_bucket=OUTPUT_BUCKET, url_signing_secret=SECRET)
    return api_with(settings=settings, storage=Storage())


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_cutout_url_gets_the_answer_the_contract_gives_it(name, corpus_api, s3, log_lines):
    case = CASES[name]
    if corpus_api.version not in case.versions:
        pytest.skip(f"an {corpus_api.version} event cannot carry this path")
    reply = corpus_api.call(event_for(case, corpus_api))
    assert reply.status == case.status, f"{name}: got {reply.status} {reply.body[:300]!r}"
    assert SECRET.encode() not in reply.body
    if case.status != 200:
        error = reply.json()["error"]
        assert error["code"] == case.code and 0 < len(error["message"]) <= MAX_MESSAGE_CHARS, error
        assert not LEAKS.search(error["message"]) and reply.headers["Cache-Control"] == "no-store"
    elif case.method == "HEAD":
        assert reply.body == b"" and reply.content_type == "image/png"
    else:
        assert Image.open(io.BytesIO(reply.body)).format in ("PNG", "WEBP", "JPEG")
        assert reply.headers["Cache-Control"].startswith("public, max-age=")
    # Nothing is ever read or written outside the two buckets, and results stay under the prefix.
    for bucket in s3.list_buckets()["Buckets"]:
        assert bucket["Name"] in (INPUT_BUCKET, OUTPUT_BUCKET)
    for item in s3.list_objects_v2(Bucket=OUTPUT_BUCKET).get("Contents", []):
        assert item["Key"].startswith("results/cutouts/"), item["Key"]
    assert SECRET not in str(log_lines())
