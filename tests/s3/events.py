"""Event helpers for the S3 path: the committed S3 and SQS events, pointed at other objects."""

import json
from pathlib import Path

EVENTS = Path(__file__).resolve().parent.parent / "events"


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
