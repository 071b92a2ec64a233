"""A real S3 and SQS server on 127.0.0.1 (moto's), reached by real boto3 clients over HTTP."""

import json
from pathlib import Path

import boto3
import pytest

INPUT_BUCKET = "bgremove-input"
OUTPUT_BUCKET = "bgremove-output"
EVENTS = Path(__file__).resolve().parent.parent / "events"


@pytest.fixture(scope="session")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint, monkeypatch):
    """Environment for boto3 pointing at the local server, with fresh state for each test."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")).read()
    return moto_endpoint


@pytest.fixture
def s3(aws):
    client = boto3.client("s3")
    client.create_bucket(Bucket=INPUT_BUCKET)
    client.create_bucket(Bucket=OUTPUT_BUCKET)
    return client


@pytest.fixture
def sqs(aws):
    return boto3.client("sqs")


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
