"""The error contract: every failure is JSON {"error": {"code", "message"}} with its documented status."""

import base64
import io

import numpy as np
import pytest
from helpers import example_photo, phone_photo
from PIL import Image

from handler.api import deliver
from handler.errors import SHOWN_CHARS, TooLarge
from handler.options import Options
from handler.pipeline import Result
from handler.request import RemoveRequest
from handler.responses import RESPONSE_BODY_LIMIT
from handler.settings import BUNDLED_MODEL, Settings
from handler.storage import Storage

MAX_INPUT_BYTES = 10 * 1024 * 1024  # Settings' default, which the tests' handler runs with


def too_many_pixels() -> bytes:
    """A 1-bit PNG of 8000x5001 = 40,008,000 pixels (the default limit is 40,000,000): a few KB."""
    buffer = io.BytesIO()
    Image.new("1", (8000, 5001)).save(buffer, format="PNG")
    return buffer.getvalue()


def assert_error(reply, status: int, code: str, *words: str) -> str:
    """The reply is the JSON error contract with this status and code; its message names ``words``."""
    assert reply.status == status, reply.body[:300]
    assert reply.content_type == "application/json"
    assert reply.raw["isBase64Encoded"] is False
    body = reply.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    for word in words:
        assert word in body["error"]["message"]
    return body["error"]["message"]


def test_invalid_json(api):
    reply = api.post('{"image": "abc",', content_type="application/json")
    assert_error(reply, 400, "bad_request", "not valid JSON")


@pytest.mark.parametrize(
    "document, words",
    [
        ([1, 2], ("must be an object", "list")),
        ({"format": "png"}, ('exactly one of "image"',)),
        ({"image": "AAAA", "s3": {"bucket": "b", "key": "k"}}, ('exactly one of "image"',)),
        ({"image": 12}, ("image must be a base64 string", "int")),
        ({"s3": "s3://bucket/key"}, ('"bucket" and "key"',)),
        ({"s3": {"bucket": "b", "key": "k", "version": "1"}}, ("unknown field 'version'",)),
    ],
    ids=["not-an-object", "no-source", "two-sources", "image-not-string", "s3-not-object", "s3-extra-field"],
)
def test_malformed_json_body(api, document, words):
    assert_error(api.post_json(document), 400, "bad_request", *words)


def test_a_photo_sent_as_the_s3_reference_is_quoted_cut_short_in_the_error_and_the_log(api, log_lines):
    # GIVEN a phone photo (EXIF with GPS, serial number, a thumbnail) sent by mistake as base64 in "s3"
    photo = base64.b64encode(phone_photo("JPEG")).decode()
    # WHEN it is refused
    message = assert_error(api.post_json({"s3": photo}), 400, "bad_request", '"bucket" and "key"')
    # THEN the message, and the log line that records it, quote the value as every message quotes
    # a client's (SECURITY.md: at most SHOWN_CHARS): they took its first 200 characters into the
    # logs, 149 bytes of the photo's headers (here its IPTC by-line, its EXIF's start)
    (refused,) = [line for line in log_lines() if line.get("message") == "request refused"]
    assert refused["reason"] == message
    assert photo[: SHOWN_CHARS - 1] not in message and len(message) < 200


@pytest.mark.parametrize(
    "key, quoted",
    [("uploads/Фото 2024.jpg", "uploads/Фото 2024.jpg"), ("uploads/" + "\U0001f600" * 40, "uploads/" + "\U0001f600" * 20)],
    ids=["cyrillic", "emoji-cut-short"],
)
def test_an_s3_reference_without_a_bucket_quotes_its_key_as_the_client_wrote_it(api, log_lines, key, quoted):
    # GIVEN an s3 reference with an empty bucket (a client's unset setting) and a key that is not ASCII
    message = assert_error(api.post_json({"s3": {"bucket": "", "key": key}}), 400, "bad_request", '"bucket" and "key"')
    # THEN the message quotes the key's own characters, not JSON's \u escapes of them (six
    # characters for a Cyrillic letter, twelve for an emoji, whose pair of escapes a cut split)
    assert quoted in message and "\\u" not in message
    (refused,) = [line for line in log_lines() if line.get("message") == "request refused"]
    assert refused["reason"] == message


def test_an_s3_reference_with_a_lone_surrogate_is_quoted_escaped_and_logged(api, log_lines):
    # GIVEN JSON's escape of half a surrogate pair in the key, which no UTF-8 text holds
    message = assert_error(api.post_json({"s3": {"bucket": "", "key": "a\ud800.jpg"}}), 400, "bad_request")
    # THEN the message quotes it escaped, and the log line that records it is written
    assert "a\\ud800.jpg" in message
    (refused,) = [line for line in log_lines() if line.get("message") == "request refused"]
    assert refused["reason"] == message


@pytest.mark.parametrize(
    "path, body",
    [("/remove", '{"image": "aGk=", "max_size": %s}'), ("/uploads", '{"content_type": "image/jpeg", "size": %s}')],
    ids=["remove", "uploads"],
)
def test_a_number_longer_than_python_reads_is_a_bad_request(api_with, path, body):
    # json.loads refuses integers over 4,300 digits with a plain ValueError, not a JSONDecodeError
    api = api_with(settings=Settings(upload_bucket="uploads-bucket"))
    reply = api.post(body % ("9" * 4301), content_type="application/json", path=path)
    assert_error(reply, 400, "bad_request", "a number of more than 4,300 digits")


def test_invalid_base64_image(api):
    assert_error(api.post_json({"image": "not base64 at all!"}), 400, "bad_request", "image is not valid base64")


def test_invalid_base64_event_body(api):
    event = api.event(content_type="image/jpeg")
    event["body"] = "%%%% this is not base64"
    assert_error(api.call(event), 400, "bad_request", "the body is not valid base64")


@pytest.mark.parametrize(
    "query, words",
    [
        ({"colour": "#ffffff"}, ("unknown option 'colour'", "background")),
        ({"background": "red"}, ("background must be a colour like #RRGGBB", "'red'")),
        ({"background": "#ff00zz"}, ("#RRGGBB", "'#ff00zz'")),
        ({"format": "gif"}, ("format must be png, webp or jpeg", "'gif'")),
        ({"format": "jpeg"}, ("jpeg has no alpha channel",)),
        ({"max_size": "big"}, ("max_size must be a whole number", "'big'")),
        ({"crop": "maybe"}, ("crop must be true or false", "'maybe'")),
        ({"mask": "true", "background": "#000000"}, ("cannot be combined",)),
        ({"format": ["png", "webp"]}, ("'format' is given 2 times",)),
        # one value with commas, which HTTP API (v2) events also use to join a repeated parameter's values
        ({"background": "255,255,255"}, ("background must be a colour like #RRGGBB", "'255,255,255'")),
    ],
    ids=[
        "unknown",
        "colour-name",
        "colour-digits",
        "format",
        "jpeg-alpha",
        "max-size",
        "flag",
        "mask-background",
        "repeated",
        "commas",
    ],
)
def test_invalid_query_option(api, query, words):
    assert_error(api.post(query=query), 400, "invalid_option", *words)


def test_invalid_json_option(api, photo):
    image = base64.b64encode(photo).decode()
    assert_error(api.post_json({"image": image, "background": 255}), 400, "invalid_option", "255")
    assert_error(api.post_json({"image": image, "bucket": "x"}), 400, "invalid_option", "unknown option 'bucket'")
    both = api.post_json({"image": image, "format": "webp"}, query={"format": "png"})
    assert_error(both, 400, "invalid_option", "both in the query string and in the JSON body")


def test_store_without_an_output_bucket(api):
    assert_error(api.post(query={"store": "true"}), 400, "bad_request", "OUTPUT_BUCKET")


def test_foreign_bucket_is_forbidden(api):
    # INPUT_BUCKETS is empty in the tests' environment: no bucket may be read
    reply = api.post_json({"s3": {"bucket": "someone-elses-bucket", "key": "photo.jpg"}})
    assert_error(reply, 403, "bucket_not_allowed", "'someone-elses-bucket'", "INPUT_BUCKETS")


def test_oversize_raw_body_is_refused_before_decoding(api):
    # GIVEN a base64 event body longer than any 10 MiB body could encode to, and not even valid base64
    event = api.event(content_type="image/jpeg")
    event["body"] = "!" * (MAX_INPUT_BYTES * 4 // 3 + 8)
    # THEN it is refused for its size (413), not for its content (400): nothing was decoded
    assert_error(api.call(event), 413, "too_large", "13,981,021 characters of base64", "the limit is 10,485,760")


def test_oversize_decoded_body(api):
    reply = api.post(b"\xff" * (MAX_INPUT_BYTES + 1), content_type="application/octet-stream")
    assert_error(reply, 413, "too_large", "10,485,761 bytes", "10,485,760")


def test_oversize_base64_image_is_refused_before_decoding(api):
    assert_error(
        api.post_json({"image": "!" * (MAX_INPUT_BYTES * 4 // 3 + 8)}),
        413,
        "too_large",
        "the image is about",
        "the limit is 10,485,760",
    )


def test_too_many_pixels(api):
    reply = api.post(too_many_pixels(), content_type="image/png")
    assert_error(reply, 413, "too_large", "8000x5001", "40,000,000")


@pytest.mark.parametrize("body", [b"hello, this is text", b""], ids=["text", "empty"])
def test_not_an_image(api, body):
    assert_error(api.post(body, content_type="image/jpeg"), 415, "unsupported_media_type")


def test_truncated_image(api, photo):
    assert_error(api.post(photo[: len(photo) // 2], content_type="image/jpeg"), 422, "undecodable_image", "JPEG")


@pytest.mark.parametrize("method, path", [("GET", "/remove"), ("POST", "/nowhere")])
def test_unknown_route(api, method, path):
    assert_error(api.post(method=method, path=path), 404, "not_found", f"there is no {method} {path} in this API")


def test_an_unknown_route_quotes_a_long_path_cut_short(api):
    # API Gateway passes paths of up to 8 KB on: the 404 quotes the path as it quotes any client value
    reply = api.post(method="GET", path="/nowhere/" + "a" * 4000)
    assert_error(reply, 404, "not_found", "there is no GET /nowhere/aaa")
    assert "(4,009 characters)" in reply.json()["error"]["message"] and len(reply.json()["error"]["message"]) < 200


class BrokenSegmenter:
    """A model that fails unexpectedly, as a bug or a corrupt session would."""

    def predict_small(self, image, **_):
        raise RuntimeError("segfault-ish failure in /opt/secret/path.py")


def test_unexpected_error_is_a_generic_500_with_the_request_id(api_with, log_lines):
    # GIVEN the API built over a segmenter that raises something no one planned for
    api = api_with(segmenter=BrokenSegmenter())
    request_id = api.fixture_event()["requestContext"]["requestId"]
    # WHEN a valid image comes in
    reply = api.post()
    # THEN the client gets the JSON contract with the request id, and nothing of the failure
    message = assert_error(reply, 500, "internal_error", request_id)
    assert "secret" not in message and "Traceback" not in reply.body.decode()
    # AND the log has the stack trace, tagged with the request id
    errors = [line for line in log_lines() if line["level"] == "ERROR"]
    assert errors and "RuntimeError: segfault-ish" in errors[0]["exception"]
    assert errors[0]["correlation_id"] == request_id


def test_result_too_large_for_a_lambda_response(rest_api):
    # GIVEN a noisy 2400x1600 photo: its RGBA PNG is ~5.8 MB, more than the ~4.7 MB that fit in 6 MB of base64
    # (one payload version only: the decision is the same code for both, and a 4 MP image costs seconds)
    rng = np.random.default_rng(0)
    photo = example_photo("coffee", (2400, 1600))
    noisy = np.clip(np.asarray(photo).astype(np.int16) + rng.integers(-40, 41, (1600, 2400, 3)), 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(noisy.astype(np.uint8)).save(buffer, format="JPEG", quality=90)
    # WHEN it is sent with no output bucket configured
    reply = rest_api.post(buffer.getvalue(), content_type="image/jpeg")
    # THEN the answer says how to get it anyway
    assert_error(reply, 413, "too_large", "format=webp", "max_size", "store=true")


def result_of(size: int) -> Result:
    return Result(data=b"\x00" * size, format="png", width=10, height=10, input_pixels=100)


@pytest.mark.parametrize("wants_json", [False, True], ids=["binary", "envelope"])
def test_deliver_draws_the_line_at_lambdas_response_limit(wants_json):
    # GIVEN the largest result whose base64 fits under the response limit, and one byte more
    request = RemoveRequest(source=b"", options=Options(), wants_json=wants_json)
    largest = RESPONSE_BODY_LIMIT * 3 // 4
    # THEN the first is returned inline and the second refused
    no_bucket = dict(model_path=BUNDLED_MODEL, storage=Storage(), settings=Settings())
    assert deliver(result_of(largest), request, "api/x", **no_bucket).status_code == 200
    with pytest.raises(TooLarge, match="store=true"):
        deliver(result_of(largest + 1), request, "api/x", **no_bucket)
