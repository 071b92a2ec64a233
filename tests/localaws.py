"""A real S3 and SQS server on 127.0.0.1 (moto's), reached by real boto3 clients over HTTP.

The fixtures are registered for every test by tests/conftest.py; the bucket names are
the ones the fixtures create.
"""

import urllib.request

import boto3
import pytest

INPUT_BUCKET = "bgremove-input"
OUTPUT_BUCKET = "bgremove-output"


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
    """Environment for boto3 pointing at the local server, with fresh server state for each test."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")).read()
    return moto_endpoint


@pytest.fixture
def s3(aws):
    """A boto3 S3 client on the local server, with INPUT_BUCKET and OUTPUT_BUCKET created."""
    client = boto3.client("s3")
    client.create_bucket(Bucket=INPUT_BUCKET)
    client.create_bucket(Bucket=OUTPUT_BUCKET)
    return client


@pytest.fixture
def sqs(aws):
    return boto3.client("sqs")


def replace_before_get(client, bucket: str, key: str, body: bytes) -> dict[str, str]:
    """Have another writer replace s3://bucket/key once, just before ``client`` sends its next
    GetObject of it: the race between a HEAD and the GET that follows it.

    The returned dict gets the new version's ``etag`` when the replacement has happened.
    """
    writer = boto3.client("s3")
    replaced = {}

    def replace(params, **_):
        if not replaced and params["Bucket"] == bucket and params["Key"] == key:
            replaced["etag"] = writer.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')

    client.meta.events.register("before-parameter-build.s3.GetObject", replace)
    return replaced


def replace_before_put(client, bucket: str, key: str, body: bytes, *, into: str, then) -> dict:
    """Have another writer replace s3://bucket/key once, just before ``client`` sends its first
    PutObject into the bucket ``into``, and then run ``then()``: another execution environment
    handling the new version to the end, between a request's GET and the PUT of its result.

    The returned dict gets the new version's ``etag`` and what ``then()`` answered, as ``meanwhile``.
    """
    writer = boto3.client("s3")
    replaced = {}

    def replace(params, **_):
        if not replaced and params["Bucket"] == into:
            replaced["etag"] = writer.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')
            replaced["meanwhile"] = then()

    client.meta.events.register("before-parameter-build.s3.PutObject", replace)
    return replaced
