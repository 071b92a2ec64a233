"""Enqueue objects that already exist in a bucket, as if S3 had just notified about them.

For a deployment onto a bucket that already holds photos: each object under the prefix
becomes one message shaped exactly like S3's own ObjectCreated notification, so the queue
worker treats it like any upload (and skips objects whose result is up to date: made from their
current version by this version of the code).

    python scripts/backfill.py --bucket my-input --prefix uploads/ --queue-url https://sqs.../queue
    python scripts/backfill.py --bucket my-input --dry-run
"""

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from urllib.parse import quote_plus

import boto3
from botocore.exceptions import NoRegionError

SQS_BATCH = 10


def notification(bucket: str, key: str, *, size: int, etag: str, region: str) -> dict:
    """The body S3 sends to SQS for a created object (keys URL-encoded, '+' for space)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "backfill"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "backfill", "x-amz-id-2": "backfill"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "backfill",
                    "bucket": {"name": bucket, "ownerIdentity": {"principalId": "backfill"}, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag.strip('"'), "sequencer": "0"},
                },
            }
        ]
    }


def objects(s3, bucket: str, prefix: str):
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def backfill(*, s3, sqs, bucket: str, prefix: str, queue_url: str | None, dry_run: bool, out=sys.stderr) -> int:
    """Send one message per object under ``prefix``; returns how many were (or would be) sent."""
    region = s3.meta.region_name
    batch, sent = [], 0

    def flush():
        nonlocal batch, sent
        if batch and not dry_run:
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=batch)
            if response.get("Failed"):
                raise SystemExit(f"SQS refused {len(response['Failed'])} messages: {response['Failed'][0]}")
        sent += len(batch)
        batch = []
        # A dry run's count comes once, at the end: a progress line carriage-returned over the
        # listing would hide every tenth key behind it in a terminal.
        if not dry_run:
            out.write(f"\r{sent} objects enqueued")
            out.flush()

    for item in objects(s3, bucket, prefix):
        if item["Key"].endswith("/"):
            continue  # folder placeholder, not a photo
        body = notification(bucket, item["Key"], size=item["Size"], etag=item["ETag"], region=region)
        batch.append({"Id": str(len(batch)), "MessageBody": json.dumps(body)})
        if dry_run:
            out.write(f"would enqueue s3://{bucket}/{item['Key']}\n")
        if len(batch) == SQS_BATCH:
            flush()
    flush()
    out.write(f"{sent} objects listed (dry run)\n" if dry_run else "\n")
    return sent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bucket", required=True, help="the input bucket")
    parser.add_argument("--prefix", default="uploads/", help="only objects under this prefix (default: uploads/)")
    parser.add_argument("--queue-url", default=os.environ.get("QUEUE_URL"), help="the work queue (default: $QUEUE_URL)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be enqueued, send nothing")
    args = parser.parse_args(argv)
    if not args.dry_run and not args.queue_url:
        parser.error("--queue-url (or QUEUE_URL) is required unless --dry-run")
    try:
        s3, sqs = boto3.client("s3"), boto3.client("sqs")
    except NoRegionError:
        parser.error("no AWS region is configured: set AWS_REGION (or the profile's region) to the stack's region")
    backfill(
        s3=s3,
        sqs=sqs,
        bucket=args.bucket,
        prefix=args.prefix,
        queue_url=args.queue_url,
        dry_run=args.dry_run,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
