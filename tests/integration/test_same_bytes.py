"""One photo with the same options through every entry point gives the same bytes.

The CLI's file, POST /remove's answer (raw body, a form, base64 in JSON, an S3 reference; REST
and HTTP API events), a cut-out URL's answer, the queue worker's result object and an S3 Batch
task's result object: each transport spells the options its own way, and each must reach
remove_background with the same Options.
"""

import base64
import json

import pytest
from helpers import cli_output, encode, example_photo
from localaws import INPUT_BUCKET, OUTPUT_BUCKET
from s3.support import load_event
from urllib3 import encode_multipart_formdata

from handler.batch import handle_batch_event
from handler.options import Options
from handler.settings import Settings
from handler.storage import ObjectRef, Storage
from handler.worker import Worker

KEY = "photos/cup.jpg"
PHOTO = encode(example_photo("coffee", (360, 240)), "JPEG", quality=90)
SETTINGS = Settings(input_buckets=(INPUT_BUCKET,), output_bucket=OUTPUT_BUCKET, source_bucket=INPUT_BUCKET)
# Each case as a query string (and JSON body, and batch user arguments) spells it, and as CLI arguments.
CASES = {
    "defaults": ({}, []),
    "mask-jpeg-hard": ({"mask": "yes", "format": "JPG", "hard": "1"}, ["--mask", "--format", "jpeg", "--hard"]),
    "background-crop-size-webp-refine": (
        {"background": "00FF00", "crop": "on", "max_size": "150", "format": "webp", "refine": "TRUE"},
        ["--background", "#00ff00", "--crop", "--max-size", "150", "--format", "webp", "--refine"],
    ),
}
_outside_the_api: dict[str, dict[str, bytes]] = {}


def batch_output(worker: Worker, query: dict, s3, logger) -> bytes:
    event = load_event("s3-batch-invocation-v2.json")
    event["job"]["userArguments"] = query
    event["tasks"][0].update(s3Bucket=INPUT_BUCKET, s3Key=KEY)
    response = handle_batch_event(event, worker=worker, remaining_ms=60_000, logger=logger)
    (result,) = response["results"]
    assert result["resultCode"] == "Succeeded", result
    bucket, key = result["resultString"].removeprefix("s3://").split("/", 1)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def outside_the_api(case: str, app, s3, tmp_path) -> dict[str, bytes]:
    """The CLI's file, the queue worker's result and a batch task's result (once per case)."""
    if case not in _outside_the_api:
        query, arguments = CASES[case]
        worker = Worker(storage=Storage(), segmenter=app.segmenter, settings=SETTINGS, options=Options.parse(query))
        source = ObjectRef(INPUT_BUCKET, KEY)
        assert worker.process(source) == "written"
        target = worker.target(source)
        queued = s3.get_object(Bucket=target.bucket, Key=target.key)["Body"].read()
        s3.delete_object(Bucket=target.bucket, Key=target.key)
        _outside_the_api[case] = {
            "cli": cli_output(PHOTO, arguments, tmp_path),
            "queue worker": queued,
            "batch": batch_output(worker, query, s3, app.logger),
        }
    return _outside_the_api[case]


@pytest.mark.parametrize("case", CASES)
def test_every_entry_point_gives_the_same_bytes(case, api_with, app, s3, tmp_path):
    # GIVEN the photo as an object in the input (and source) bucket, and the case's options
    s3.put_object(Bucket=INPUT_BUCKET, Key=KEY, Body=PHOTO)
    query, _ = CASES[case]
    api = api_with(settings=SETTINGS, storage=Storage())
    # WHEN each entry point makes the result
    outputs = dict(outside_the_api(case, app, s3, tmp_path))
    form, form_type = encode_multipart_formdata({"image": ("cup.jpg", PHOTO, "image/jpeg"), **query})
    replies = {
        "POST raw": api.post(PHOTO, content_type="image/jpeg", query=query),
        "POST form": api.post(form, content_type=form_type),
        "POST base64": api.post_json({"image": base64.b64encode(PHOTO).decode(), **query}),
        "POST s3": api.post_json({"s3": {"bucket": INPUT_BUCKET, "key": KEY}, **query}),
        "GET cut-out": api.call(api.event(method="GET", path=f"/cutouts/{KEY}", query=query)),
        "GET cut-out, stored": api.call(api.event(method="GET", path=f"/cutouts/{KEY}", query=query)),
    }
    for name, reply in replies.items():
        assert reply.status == 200, (name, json.loads(reply.body) if reply.status >= 400 else reply.status)
        outputs[f"{api.version} {name}"] = reply.body
    # THEN every one is byte for byte the CLI's file
    different = sorted(name for name, data in outputs.items() if data != outputs["cli"])
    assert different == [], f"{case}: {different} differ from the CLI's {len(outputs['cli']):,} bytes"
