"""scripts/backfill.py against a real local S3 and SQS server."""

import io
import json
import sys
from pathlib import Path

import pytest
from localaws import INPUT_BUCKET

from handler.storage import ObjectRef
from handler.worker import created_objects

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import backfill  # noqa: E402


def drain(sqs, queue_url):
    bodies = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
        bodies += [json.loads(message["Body"]) for message in messages]
        sqs.delete_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        )
    return bodies


def test_backfill_enqueues_one_s3_shaped_message_per_object(s3, sqs):
    # GIVEN 23 existing uploads (more than one SQS batch), a folder marker, and an object outside the prefix
    keys = [f"uploads/photo {i}+x.jpg" for i in range(23)]
    for key in keys:
        s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=b"jpeg")
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/folder/", Body=b"")
    s3.put_object(Bucket=INPUT_BUCKET, Key="other/skip.jpg", Body=b"jpeg")
    queue_url = sqs.create_queue(QueueName="work")["QueueUrl"]

    # WHEN the backfill runs
    sent = backfill.backfill(
        s3=s3, sqs=sqs, bucket=INPUT_BUCKET, prefix="uploads/", queue_url=queue_url, dry_run=False, out=io.StringIO()
    )

    # THEN each object is one message the worker reads back to its real key
    bodies = drain(sqs, queue_url)
    assert sent == 23
    assert sorted(ref for body in bodies for ref in created_objects(body)) == sorted(ObjectRef(INPUT_BUCKET, key) for key in keys)


def test_dry_run_sends_nothing(s3, sqs):
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/a.jpg", Body=b"jpeg")
    queue_url = sqs.create_queue(QueueName="work")["QueueUrl"]
    out = io.StringIO()
    assert (
        backfill.backfill(s3=s3, sqs=sqs, bucket=INPUT_BUCKET, prefix="uploads/", queue_url=queue_url, dry_run=True, out=out) == 1
    )
    assert "would enqueue s3://bgremove-input/uploads/a.jpg" in out.getvalue()
    assert drain(sqs, queue_url) == []


def as_a_terminal_shows(text: str) -> list[str]:
    """The lines of ``text`` as a terminal leaves them: what follows a carriage return overwrites the line's start."""
    lines = []
    for line in text.split("\n"):
        shown = ""
        for part in line.split("\r"):
            shown = part + shown[len(part) :]
        lines.append(shown)
    return lines


def test_a_dry_run_shows_every_key_it_would_enqueue(s3, sqs):
    # GIVEN more objects than one SQS batch
    keys = [f"uploads/{i:02d}.jpg" for i in range(12)]
    for key in keys:
        s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=b"jpeg")
    out = io.StringIO()
    # WHEN the dry run lists them
    backfill.backfill(s3=s3, sqs=sqs, bucket=INPUT_BUCKET, prefix="uploads/", queue_url=None, dry_run=True, out=out)
    # THEN each has a line of its own on the operator's terminal, and the count ends the listing
    shown = as_a_terminal_shows(out.getvalue())
    listed = [line for line in shown if line.startswith("would enqueue")]
    assert listed == [f"would enqueue s3://{INPUT_BUCKET}/{key}" for key in keys]
    assert shown[-2:] == ["12 objects listed (dry run)", ""]


def test_without_a_region_it_says_what_to_set_instead_of_a_traceback(monkeypatch, tmp_path, capsys):
    # GIVEN no region anywhere boto3 looks: environment, config file
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    # WHEN the backfill is started
    with pytest.raises(SystemExit) as exit_status:
        backfill.main(["--bucket", INPUT_BUCKET, "--queue-url", "https://sqs.eu-west-1.amazonaws.com/123456789012/q"])
    # THEN it stops with a usage error that names the setting
    assert exit_status.value.code == 2
    assert "set AWS_REGION" in capsys.readouterr().err
