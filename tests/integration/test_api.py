"""POST /remove through the real api_handler, REST (v1) and HTTP API (v2) events alike.

Results are compared with what the CLI writes for the same photo and options.
"""

import base64
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import cli_output, encode, example_photo
from PIL import Image

# Options as the API takes them (query string) -> the same options as CLI arguments.
OPTION_CASES = {
    "defaults": ({}, []),
    "format": ({"format": "webp"}, ["--format", "webp"]),
    "mask": ({"mask": "true"}, ["--mask"]),
    "background": ({"background": "#00ff00", "format": "jpeg"}, ["--background", "#00ff00", "--format", "jpeg"]),
    "crop": ({"crop": "true"}, ["--crop"]),
    "max_size": ({"max_size": "64"}, ["--max-size", "64"]),
    # refine=true: on the events' 120x80 photo refine=false is the default, and would show nothing
    "refine": ({"refine": "true"}, ["--refine"]),
    "hard": ({"hard": "1"}, ["--hard"]),
}
REPO_ROOT = Path(__file__).resolve().parent.parent.parent
MEDIA_TYPES = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg"}
_cli_outputs: dict[str, bytes] = {}


def cli_case(case: str, photo: bytes, tmp_path) -> bytes:
    """What `python -m handler` writes for the photo with the case's options (computed once per case)."""
    if case not in _cli_outputs:
        _cli_outputs[case] = cli_output(photo, OPTION_CASES[case][1], tmp_path)
    return _cli_outputs[case]


def pixels(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    image.load()
    return np.asarray(image)


def test_raw_jpeg_comes_back_as_a_png_cut_out(api, photo, tmp_path):
    # GIVEN the committed event: a small JPEG as a base64 body, Content-Type image/jpeg
    # WHEN the handler answers it
    reply = api.post()
    # THEN the body is a PNG of the photo's size, flagged base64 for API Gateway
    assert reply.status == 200, reply.body[:300]
    assert (reply.content_type, reply.raw["isBase64Encoded"]) == ("image/png", True)
    image = Image.open(io.BytesIO(reply.body))
    assert (image.format, image.mode, image.size) == ("PNG", "RGBA", Image.open(io.BytesIO(photo)).size)
    # AND its alpha separates subject from background, exactly as the CLI's does
    alpha = np.asarray(image.getchannel("A"))
    assert alpha.min() == 0 and alpha.max() == 255
    assert np.array_equal(np.asarray(image), pixels(cli_case("defaults", photo, tmp_path)))


@pytest.mark.parametrize("case", sorted(set(OPTION_CASES) - {"defaults"}))
def test_each_query_option_matches_the_cli(api, photo, tmp_path, case):
    # GIVEN the committed event with the case's options in the query string
    query, _ = OPTION_CASES[case]
    # WHEN the handler answers it
    reply = api.post(query=query)
    # THEN the body is the image in the requested format
    assert reply.status == 200, reply.body[:300]
    assert reply.raw["isBase64Encoded"] is True
    assert reply.content_type == MEDIA_TYPES[query.get("format", "png")]
    # AND its pixels, alpha included, are what the CLI writes for the same photo and options
    assert np.array_equal(pixels(reply.body), pixels(cli_case(case, photo, tmp_path)))
    # AND the option changed the result: both sides did not just ignore it alike
    assert cli_case(case, photo, tmp_path) != cli_case("defaults", photo, tmp_path)


def test_json_base64_body_gives_the_same_result_as_the_raw_body(api, photo, tmp_path):
    # GIVEN the same photo as base64 in a JSON body, options beside it
    reply = api.post_json({"image": base64.b64encode(photo).decode(), "max_size": 64})
    # THEN the result is the raw body's result for the same options
    assert reply.status == 200
    assert reply.content_type == "image/png"
    assert np.array_equal(pixels(reply.body), pixels(cli_case("max_size", photo, tmp_path)))


def test_json_body_as_text_and_data_url(api, photo, tmp_path):
    # GIVEN a JSON body that API Gateway passed as text (not base64) with a browser's data: URL
    data_url = "data:image/jpeg;base64," + base64.b64encode(photo).decode()
    event = api.event(json.dumps({"image": data_url}), content_type="application/json; charset=utf-8")
    assert event["isBase64Encoded"] is False
    reply = api.call(event)
    assert reply.status == 200
    assert np.array_equal(pixels(reply.body), pixels(cli_case("defaults", photo, tmp_path)))


def test_json_options_and_query_options_combine(api, photo, tmp_path):
    reply = api.post_json({"image": base64.b64encode(photo).decode(), "format": "jpeg"}, query={"background": "#00ff00"})
    assert reply.status == 200
    assert reply.content_type == "image/jpeg"
    assert np.array_equal(pixels(reply.body), pixels(cli_case("background", photo, tmp_path)))


def test_accept_json_gets_the_envelope(api, photo, tmp_path):
    # GIVEN a raw JPEG with Accept: application/json and WebP asked for
    reply = api.post(query={"format": "webp"}, headers={"Accept": "application/json"})
    # THEN the answer is the JSON envelope, not base64-flagged, with the image inside
    assert reply.status == 200
    assert reply.content_type == "application/json"
    assert reply.raw["isBase64Encoded"] is False
    envelope = reply.json()
    assert set(envelope) == {"image", "format", "width", "height"}
    image = Image.open(io.BytesIO(base64.b64decode(envelope["image"])))
    assert (envelope["format"], envelope["width"], envelope["height"]) == ("webp", *image.size)
    assert np.array_equal(np.asarray(image), pixels(cli_case("format", photo, tmp_path)))


@pytest.mark.parametrize(
    "accept", ["image/png, application/json;q=0", "application/json; Q=0.000", "image/*;q=0.5, application/json ;q=0"]
)
def test_accept_that_refuses_json_with_q_0_gets_the_image(api, accept):
    reply = api.post(headers={"Accept": accept})
    assert reply.status == 200 and reply.content_type == "image/png"
    assert reply.body.startswith(b"\x89PNG")
    # AND any other weight still asks for the envelope
    weighted = api.post(headers={"Accept": "image/png, application/json;q=0.1"})
    assert weighted.status == 200 and weighted.content_type == "application/json"


def test_cors_headers_for_a_browser_origin(api):
    # The committed events carry Origin: https://example.com; CORS_ORIGINS defaults to *
    reply = api.post(query={"max_size": "32"})
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    preflight = api.post(method="OPTIONS", headers={"Access-Control-Request-Method": "POST"})
    assert preflight.status == 204
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]


def test_configured_origins_only(api_with):
    from handler.settings import Settings

    api = api_with(settings=Settings(cors_origins=("https://app.example", "https://admin.example")))
    allowed = api.post(method="OPTIONS", headers={"Origin": "https://admin.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://admin.example"
    refused = api.post(query={"format": "gif"}, headers={"Origin": "https://example.com"})
    assert refused.status == 400
    assert "Access-Control-Allow-Origin" not in refused.headers
    # Every answer depends on the Origin, so shared caches are told to key on it
    assert allowed.headers["Vary"] == refused.headers["Vary"] == "Origin"
    no_origin = api.post(query={"format": "gif"}, headers={"Origin": None})
    assert no_origin.headers["Vary"] == "Origin"


def test_vary_keeps_what_the_route_says_and_adds_origin(api_with, s3):
    from handler.settings import Settings

    settings = Settings(cors_origins=("https://shop.example",), source_bucket="bgremove-input", output_bucket="bgremove-output")
    api = api_with(settings=settings)
    s3.put_object(Bucket="bgremove-input", Key="a.jpg", Body=encode(example_photo("chelsea", (40, 30)), "JPEG"))
    reply = api.call(api.event(method="GET", path="/cutouts/a.jpg", query={"format": "auto"}))
    assert reply.status == 200 and reply.headers["Vary"] == "Accept, Origin"


def test_any_origin_is_allowed_on_every_answer_without_vary(api):
    # CloudFront does not forward Origin to a cut-out URL: its cached answers must suit every page
    reply = api.post(query={"format": "gif"}, headers={"Origin": None})
    assert reply.headers["Access-Control-Allow-Origin"] == "*" and "Vary" not in reply.headers


def test_rest_headers_only_in_multi_value_headers_any_case(rest_api, photo, tmp_path):
    # GIVEN a REST event whose headers are only in multiValueHeaders, names in lower case
    event = rest_api.fixture_event()
    event["headers"] = None
    event["multiValueHeaders"] = {"content-type": ["application/json"], "accept": ["application/json"]}
    event["body"] = base64.b64encode(json.dumps({"image": base64.b64encode(photo).decode()}).encode()).decode()
    # WHEN the handler answers it
    reply = rest_api.call(event)
    # THEN it read the body as JSON and answered JSON
    assert reply.status == 200
    assert np.array_equal(pixels(base64.b64decode(reply.json()["image"])), pixels(cli_case("defaults", photo, tmp_path)))


def test_metrics_in_emf_and_request_id_in_logs(api, capsys, log_lines):
    # WHEN one image is cut out and one request is refused
    reply = api.post()
    refused = api.post(query={"max_size": "0"})
    assert (reply.status, refused.status) == (200, 400)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    # THEN the EMF blob has latency, input pixels and output bytes for the image
    blobs = [line for line in lines if "_aws" in line and "Latency" in line]
    assert len(blobs) == 1, lines
    names = {metric["Name"]: metric["Unit"] for metric in blobs[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert names == {"Latency": "Milliseconds", "InputPixels": "Count", "OutputBytes": "Bytes"}
    assert blobs[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "BackgroundRemoval"
    assert blobs[0]["InputPixels"] == [120 * 80]
    assert blobs[0]["OutputBytes"] == [len(reply.body)]
    assert blobs[0]["Latency"][0] > 0
    # AND the cut-out is logged with the request id, its size and where its time went
    request_id = api.fixture_event()["requestContext"]["requestId"]
    (made,) = [line for line in log_lines() if line.get("message") == "cut-out made"]
    assert made["correlation_id"] == request_id and (made["route"], made["status"]) == ("POST /remove", 200)
    assert (made["input_pixels"], made["output_bytes"]) == (120 * 80, len(reply.body))
    assert {"decode", "inference", "encoding"} <= set(made["stage_ms"]) and all(ms >= 0 for ms in made["stage_ms"].values())
    # AND the refusal is logged with the request id as the correlation id
    refusals = [line for line in log_lines() if line.get("message") == "request refused"]
    assert refusals and refusals[0]["correlation_id"] == request_id
    assert refusals[0]["code"] == "invalid_option"


def test_image_requests_and_foreign_buckets_do_not_import_boto3():
    # boto3 costs ~0.7 s of cold start: only a request that really reads S3 may load it,
    # and a bucket outside INPUT_BUCKETS is refused before anything touches S3.
    code = """
import json, sys
sys.path.insert(0, "scripts")
from invoke import LambdaContext, load_handler
handler = load_handler("api")
event = json.load(open("tests/events/apigw-http.json"))
image = handler(event, LambdaContext())["statusCode"]
event.update(body=json.dumps({"s3": {"bucket": "elsewhere", "key": "a.jpg"}}), isBase64Encoded=False)
event["headers"]["content-type"] = "application/json"
foreign = handler(event, LambdaContext())["statusCode"]
print(image, foreign, "boto3" in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-1] == "200 403 False"
