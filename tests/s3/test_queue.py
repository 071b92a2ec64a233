"""handler.app.queue_handler and s3_handler: S3 notifications through a real local SQS queue into results."""

import gc
import io
import json

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError
from helpers import encode, example_photo
from localaws import INPUT_BUCKET, OUTPUT_BUCKET
from PIL import Image

from handler.storage import Storage
from s3.support import PHOTO, SETTINGS, LambdaContext, load_event, output_keys, s3_notification, sqs_event


def message(body: dict, number: int) -> dict:
    return {"MessageId": f"m-{number}", "ReceiptHandle": f"r-{number}", "Body": json.dumps(body), "MD5OfBody": "x"}


def test_committed_sqs_event_gives_a_result(app, use_storage, s3):
    # GIVEN the object the committed SQS event names (key URL-encoded with '+' for spaces)
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/holiday photos/beach (1).jpg", Body=PHOTO)
    # WHEN the queue worker gets the committed event
    response = app.queue_handler(load_event("sqs-s3-put.json"), LambdaContext())
    # THEN nothing failed and the result is where the key maps to
    assert response == {"batchItemFailures": []}
    assert output_keys(s3) == ["results/uploads/holiday photos/beach (1).jpg.png"]


def test_committed_sqs_event_for_a_photo_deleted_since_is_no_failure(app, use_storage, s3):
    # GIVEN no object where the committed SQS event points (deleted after its upload, or never put
    # there when the event is run locally, as README's "Locally" does)
    # WHEN the queue worker gets the committed event
    response = app.queue_handler(load_event("sqs-s3-put.json"), LambdaContext())
    # THEN the message succeeds without a result: a retry could not find the photo either
    assert response == {"batchItemFailures": []}
    assert output_keys(s3) == []


def test_one_corrupt_image_in_a_batch_fails_alone(app, use_storage, s3):
    keys = ["uploads/a.jpg", "uploads/broken.jpg", "uploads/c.jpg"]
    s3.put_object(Bucket=INPUT_BUCKET, Key=keys[0], Body=PHOTO)
    s3.put_object(Bucket=INPUT_BUCKET, Key=keys[1], Body=PHOTO[: len(PHOTO) // 3])
    s3.put_object(Bucket=INPUT_BUCKET, Key=keys[2], Body=PHOTO)
    event = sqs_event([message(s3_notification(INPUT_BUCKET, key), n) for n, key in enumerate(keys)])

    response = app.queue_handler(event, LambdaContext())

    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert output_keys(s3) == ["results/uploads/a.jpg.png", "results/uploads/c.jpg.png"]


def test_a_failed_record_does_not_keep_its_half_decoded_photo_alive(app, use_storage, s3):
    # GIVEN a batch whose first upload is a PNG cut short in its pixels: it fails in its full-size
    # decode, once Pillow has allocated the image (160 MB at 40 MP), and a good upload after it
    size = (641, 479)
    data = encode(example_photo("chelsea", size), "PNG")
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/cut.png", Body=data[: len(data) * 3 // 4])
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/good.jpg", Body=PHOTO)
    keys = ["uploads/cut.png", "uploads/good.jpg"]
    event = sqs_event([message(s3_notification(INPUT_BUCKET, key), n) for n, key in enumerate(keys)])

    # WHEN the queue worker has processed the batch
    response = app.queue_handler(event, LambdaContext())

    # THEN the cut-short upload failed alone
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    # AND its image is gone: kept, a batch of big broken photos piled them up past the function's memory
    gc.collect()
    assert [obj for obj in gc.get_objects() if isinstance(obj, Image.Image) and obj.size == size] == []


def test_s3_test_event_is_ignored(app, use_storage, s3):
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-25T00:00:00Z", "Bucket": INPUT_BUCKET}
    assert app.queue_handler(sqs_event([message(test_event, 0)]), LambdaContext()) == {"batchItemFailures": []}
    assert output_keys(s3) == []


class TickingContext(LambdaContext):
    """A context whose clock loses a millisecond each time it is read, as a real one does."""

    def get_remaining_time_in_millis(self) -> int:
        self.remaining_ms -= 1
        return self.remaining_ms + 1


def test_no_image_is_started_without_enough_time_left(app, use_storage, s3, log_lines):
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/a.jpg", Body=PHOTO)
    event = sqs_event([message(s3_notification(INPUT_BUCKET, "uploads/a.jpg"), 0)])
    # A batch in which every message failed is a function error (Powertools' default): Lambda retries it all.
    with pytest.raises(BatchProcessingError):
        app.queue_handler(event, TickingContext(remaining_ms=SETTINGS.min_remaining_ms - 1))
    assert output_keys(s3) == []
    # AND the log says which upload was left for a retry, and why: the time it was refused on
    (line,) = [line for line in log_lines() if line.get("key") == "uploads/a.jpg"]
    assert (line["level"], line["message"]) == ("WARNING", "upload not started")
    assert line["reason"] == f"{SETTINGS.min_remaining_ms - 1} ms left, {SETTINGS.min_remaining_ms} ms needed"


NOT_NOTIFICATIONS = [
    "hello",
    '{"Records": [',
    json.dumps({"hello": "world"}),
    json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}),
    json.dumps({"Records": "x"}),
    json.dumps({"Records": [{"eventName": 5}]}),
]


@pytest.mark.parametrize("body", NOT_NOTIFICATIONS)
def test_a_message_that_is_no_notification_fails_alone_and_is_logged(app, use_storage, s3, log_lines, body):
    # GIVEN a batch of an upload's notification and a message sent by hand
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/a.jpg", Body=PHOTO)
    by_hand = {"MessageId": "m-1", "ReceiptHandle": "r-1", "Body": body, "MD5OfBody": "x"}
    event = sqs_event([message(s3_notification(INPUT_BUCKET, "uploads/a.jpg"), 0), by_hand])
    # WHEN the queue worker gets it
    response = app.queue_handler(event, LambdaContext())
    # THEN only the message sent by hand fails, and the log says it was no notification
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert output_keys(s3) == ["results/uploads/a.jpg.png"]
    (line,) = [line for line in log_lines() if line["message"] == "message not processed"]
    assert line["level"] == "ERROR" and "not an S3 event notification" in line["reason"]


# Keys as users name their uploads; S3 notifications carry them URL-encoded, '+' for a space.
USER_KEYS = [
    "uploads/Фото 2024.jpg",
    "uploads/caf\u00e9.jpg",  # NFC
    "uploads/cafe\u0301.jpg",  # NFD, as macOS writes it: another key, another result
    "uploads/my photo+1 (copy).HEIC",
    "uploads/100%.png",
    "uploads/x%2By.jpg",
    "uploads/a#b?.jpg",
    "uploads/\U0001f600 smile.jpg",
    "uploads/a//b.jpg",
    "uploads/trailing space.jpg ",
]


def test_keys_as_users_name_photos_give_their_own_results_once(app, use_storage, s3):
    # GIVEN each photo uploaded, and a batch of their notifications
    for key in USER_KEYS:
        s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=PHOTO)
    event = sqs_event([message(s3_notification(INPUT_BUCKET, key), n) for n, key in enumerate(USER_KEYS)])
    # WHEN the queue worker gets it
    assert app.queue_handler(event, LambdaContext()) == {"batchItemFailures": []}
    # THEN every photo has its result under its own key
    results = output_keys(s3)
    assert results == sorted(f"results/{key}.png" for key in USER_KEYS)
    # AND a redelivery finds each up to date: a marker put in place of each result, with its metadata, stays
    for key in results:
        metadata = s3.head_object(Bucket=OUTPUT_BUCKET, Key=key)["Metadata"]
        s3.put_object(Bucket=OUTPUT_BUCKET, Key=key, Body=b"marker", Metadata=metadata)
    assert app.queue_handler(event, LambdaContext()) == {"batchItemFailures": []}
    assert [s3.get_object(Bucket=OUTPUT_BUCKET, Key=key)["Body"].read() for key in results] == [b"marker"] * len(results)


def test_direct_s3_notification(app, use_storage, s3):
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/x y+z.jpg", Body=PHOTO)
    app.s3_handler(s3_notification(INPUT_BUCKET, "uploads/x y+z.jpg"), LambdaContext())
    result = s3.get_object(Bucket=OUTPUT_BUCKET, Key="results/uploads/x y+z.jpg.png")["Body"].read()
    assert Image.open(io.BytesIO(result)).size == (96, 96)


def test_direct_s3_notification_of_a_bad_image_raises_for_lambda_to_retry(app, use_storage, s3):
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/bad.jpg", Body=b"<html>not a photo</html>")
    with pytest.raises(Exception, match="not an image"):
        app.s3_handler(s3_notification(INPUT_BUCKET, "uploads/bad.jpg"), LambdaContext())


class FlakyStorage(Storage):
    """Real S3, except that the first result write of every 10th upload fails as S3 throttling would."""

    def __init__(self):
        super().__init__()
        self.failed: set[str] = set()

    def put(self, bucket, key, data, **kwargs):
        number = int(key.rsplit("-", 1)[1].split(".")[0])
        if number % 10 == 0 and key not in self.failed:
            self.failed.add(key)
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "PutObject")
        super().put(bucket, key, data, **kwargs)


def test_an_upload_s3_fails_for_is_logged_with_its_key_and_stack_trace(app, use_storage, s3, log_lines):
    # GIVEN two uploads in one batch, and S3 throttling the first one's result write past boto3's retries
    keys = ["uploads/photo-000.jpg", "uploads/photo-001.jpg"]
    for key in keys:
        s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=PHOTO)
    use_storage(FlakyStorage())
    event = sqs_event([message(s3_notification(INPUT_BUCKET, key), n) for n, key in enumerate(keys)])
    # WHEN the queue worker gets the batch
    response = app.queue_handler(event, LambdaContext())
    # THEN only the first goes back to the queue
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    # AND the log names that upload, with the stack trace that says why
    errors = [line for line in log_lines() if line["level"] == "ERROR"]
    assert [(line["message"], line["key"]) for line in errors] == [("upload not processed", keys[0])]
    assert errors[0]["exception"].startswith("Traceback") and "SlowDown" in errors[0]["exception"]


def test_burst_of_200_uploads_through_the_queue(app, use_storage, s3, sqs):
    # GIVEN a work queue with a dead-letter queue after 3 receives, like template.yaml's
    dlq_url = sqs.create_queue(QueueName="bgremove-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})
    queue_url = sqs.create_queue(QueueName="bgremove-work", Attributes={"RedrivePolicy": redrive})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # AND 200 uploads, 5 of them corrupt, each announced by its S3 notification
    keys = [f"uploads/photo-{n:03d}.jpg" for n in range(200)]
    corrupt = {keys[n] for n in (7, 51, 99, 142, 188)}
    for key in keys:
        s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=b"GIF89a garbage" if key in corrupt else PHOTO)
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(s3_notification(INPUT_BUCKET, key)))
    # AND the first result write of every 10th upload fails
    storage = FlakyStorage()
    use_storage(storage)

    # WHEN the queue is drained through queue_handler the way Lambda's event source mapping does
    invocations = 0
    while invocations < 200:
        received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"])
        messages = received.get("Messages", [])
        if not messages:
            break
        invocations += 1
        try:
            response = app.queue_handler(sqs_event(messages, queue_arn), LambdaContext())
            failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        except BatchProcessingError:  # every message failed: Lambda returns the whole batch
            failed = {sent["MessageId"] for sent in messages}
        for sent in messages:
            if sent["MessageId"] in failed:  # back to the queue at once instead of after the visibility timeout
                sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=sent["ReceiptHandle"], VisibilityTimeout=0)
            else:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=sent["ReceiptHandle"])

    # THEN every upload has exactly one result or its message is in the dead-letter queue
    results = output_keys(s3)
    dead = []
    while batch := sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10).get("Messages", []):
        dead += [json.loads(m["Body"])["Records"][0]["s3"]["object"]["key"] for m in batch]
        for m in batch:
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=m["ReceiptHandle"])
    expected = sorted(f"results/{key}.png" for key in keys if key not in corrupt)
    assert results == expected  # one object per good upload: no duplicates, none missing
    assert sorted(dead) == sorted(corrupt)
    assert len(results) + len(dead) == len(keys)
    assert len(storage.failed) == 20  # the injected failures happened, and were retried to a result
