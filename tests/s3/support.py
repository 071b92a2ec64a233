"""Shared pieces of the S3-path tests: the committed S3 and SQS events pointed at other objects,
a Lambda context, handler.app with its queue worker on the local S3 server (the fixtures
are registered for every test by tests/conftest.py), and an injector of S3 faults."""

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
from helpers import encode, example_photo
from localaws import INPUT_BUCKET, OUTPUT_BUCKET

from handler.settings import Settings
from handler.storage import Storage
from handler.worker import Worker

EVENTS = Path(__file__).resolve().parent.parent / "events"
SLOW_DOWN = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
PHOTO = encode(example_photo("astronaut", (96, 96)), "JPEG", quality=85)
SETTINGS = Settings(input_buckets=(INPUT_BUCKET,), output_bucket=OUTPUT_BUCKET)


@dataclass
class LambdaContext:
    remaining_ms: int = 60_000
    function_name: str = "bgremove-worker-test"
    memory_limit_in_mb: int = 3008
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:bgremove-worker-test"
    aws_request_id: str = "5e1b2c3d-0000-4000-8000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def app(monkeypatch, segmenter):
    """handler.app, imported with the Powertools environment template.yaml sets."""
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "bgremove")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "BackgroundRemoval")
    import handler.app

    return handler.app


@pytest.fixture
def use_storage(app, monkeypatch, segmenter, s3):
    """Run the app's worker on the local S3 server; ``use_storage(storage)`` swaps in another Storage."""

    def use(storage: Storage | None = None) -> Storage:
        storage = storage or Storage()
        monkeypatch.setattr(app, "worker", Worker(storage=storage, segmenter=segmenter, settings=SETTINGS))
        return storage

    use()
    return use


def output_keys(s3) -> list[str]:
    return sorted(item["Key"] for item in s3.list_objects_v2(Bucket=OUTPUT_BUCKET).get("Contents", []))


def load_event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def s3_notification(bucket: str, key: str) -> dict:
    """The committed S3 put event, pointed at ``bucket``/``key`` (URL-encoded as S3 does)."""
    from urllib.parse import quote_plus

    event = load_event("s3-put.json")
    record = event["Records"][0]
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    record["s3"]["object"]["key"] = quote_plus(key, safe="/")
    return event


def sqs_event(messages: list[dict], queue_arn: str = "arn:aws:sqs:us-east-1:123456789012:bgremove-queue") -> dict:
    """A Lambda SQS event (the committed fixture's shape) from messages as ReceiveMessage returns them."""
    template = load_event("sqs-s3-put.json")["Records"][0]
    records = []
    for message in messages:
        record = dict(template)
        record.update(
            messageId=message["MessageId"],
            receiptHandle=message["ReceiptHandle"],
            body=message["Body"],
            md5OfBody=message["MD5OfBody"],
            eventSourceARN=queue_arn,
            attributes={**template["attributes"], **message.get("Attributes", {})},
        )
        records.append(record)
    return {"Records": records}


@dataclass
class Injector:
    """A botocore before-send hook: answers the first ``times`` attempts of each key with ``fault``."""

    times: int
    fault: str  # "slowdown" (HTTP 503 SlowDown) or "timeout" (the read times out)
    attempts: dict[str, int] = field(default_factory=dict)
    injected: int = 0

    def __call__(self, request, **_):
        key = request.url.split("?")[0]
        self.attempts[key] = self.attempts.get(key, 0) + 1
        if self.attempts[key] > self.times:
            return None  # send it for real
        self.injected += 1
        if self.fault == "timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        return AWSResponse(request.url, 503, {"Content-Type": "application/xml"}, _Raw(SLOW_DOWN))


class _Raw:
    """The raw stream of an injected response, as botocore reads it."""

    def __init__(self, body: bytes):
        self.body = body

    def stream(self, **_):
        yield self.body
