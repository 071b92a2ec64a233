"""Faults in the S3 pipeline, driven through queue_handler from a real local SQS queue with a DLQ.

Each test injects one kind of fault (S3 throttling, timeouts, a result write that fails after the
model ran, a redelivery while the first attempt still runs, running out of Lambda time mid-batch),
drains the queue the way Lambda's event source mapping does, and counts: every object ends with
exactly one result or with its message in the dead-letter queue, never both, never two results.
"""

import json
import threading
from dataclasses import dataclass

import pytest
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError, ReadTimeoutError
from localaws import INPUT_BUCKET, OUTPUT_BUCKET
from s3.support import PHOTO, SETTINGS, Injector, LambdaContext, output_keys, s3_notification, sqs_event

from handler.storage import Storage

MAX_RECEIVES = 3
MAX_INVOCATIONS = 100


class LambdaKilled(BaseException):
    """Lambda's own timeout: the process stops mid-image, nothing is returned, no message is deleted."""


@dataclass
class Queues:
    url: str
    arn: str
    dlq_url: str


@pytest.fixture
def queues(sqs) -> Queues:
    """A work queue that dead-letters after MAX_RECEIVES receives, as template.yaml's does."""
    dlq_url = sqs.create_queue(QueueName="faults-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVES)})
    url = sqs.create_queue(QueueName="faults-work", Attributes={"RedrivePolicy": redrive})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return Queues(url, arn, dlq_url)


def upload(s3, sqs, queues: Queues, keys: list[str], body: bytes = PHOTO) -> None:
    for key in keys:
        s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=body)
        sqs.send_message(QueueUrl=queues.url, MessageBody=json.dumps(s3_notification(INPUT_BUCKET, key)))


def drain(app, sqs, queues: Queues, context=LambdaContext) -> int:
    """Receive batches and hand them to queue_handler until the queue is empty; returns the invocations.

    Failed messages go back at once (visibility 0) instead of after the visibility timeout; a
    killed invocation returns nothing, so its whole batch goes back.
    """
    invocations = 0
    while invocations < MAX_INVOCATIONS:
        messages = sqs.receive_message(QueueUrl=queues.url, MaxNumberOfMessages=5, AttributeNames=["All"]).get("Messages", [])
        if not messages:
            return invocations
        invocations += 1
        try:
            response = app.queue_handler(sqs_event(messages, queues.arn), context())
            failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        except BatchProcessingError:  # every message failed: Lambda returns the whole batch
            failed = {message["MessageId"] for message in messages}
        except LambdaKilled:
            failed = {message["MessageId"] for message in messages}
        for message in messages:
            if message["MessageId"] in failed:
                sqs.change_message_visibility(QueueUrl=queues.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
            else:
                sqs.delete_message(QueueUrl=queues.url, ReceiptHandle=message["ReceiptHandle"])
    raise AssertionError(f"the queue was not drained in {MAX_INVOCATIONS} invocations")


def dead_letters(sqs, queues: Queues) -> list[str]:
    keys = []
    while batch := sqs.receive_message(QueueUrl=queues.dlq_url, MaxNumberOfMessages=10).get("Messages", []):
        keys += [json.loads(message["Body"])["Records"][0]["s3"]["object"]["key"] for message in batch]
        for message in batch:
            sqs.delete_message(QueueUrl=queues.dlq_url, ReceiptHandle=message["ReceiptHandle"])
    return keys


def result_key(key: str) -> str:
    return f"results/{key}.png"


def assert_accounted(s3, sqs, queues: Queues, keys: list[str], *, dead: set[str] = frozenset()) -> None:
    """objects in = results + dead letters; every result once, from its object's current ETag."""
    results = output_keys(s3)
    dead_keys = dead_letters(sqs, queues)
    assert sorted(dead_keys) == sorted(dead)
    assert results == sorted(result_key(key) for key in keys if key not in dead)  # a list: a duplicate would show
    assert len(results) + len(dead_keys) == len(keys)
    for key in keys:
        if key not in dead:
            stored = s3.head_object(Bucket=OUTPUT_BUCKET, Key=result_key(key))["Metadata"]["source-etag"]
            assert stored == s3.head_object(Bucket=INPUT_BUCKET, Key=key)["ETag"].strip('"')


@pytest.mark.parametrize("fault", ["slowdown", "timeout"])
@pytest.mark.parametrize("operation", ["GetObject", "PutObject", "HeadObject"])
def test_throttling_and_timeouts_within_the_retry_budget_are_absorbed(app, use_storage, s3, sqs, queues, fault, operation):
    # GIVEN S3 that throttles (503 SlowDown) or times out on the first 2 attempts of every request of one kind
    storage = use_storage(Storage())
    injector = Injector(times=2, fault=fault)
    storage.client.meta.events.register(f"before-send.s3.{operation}", injector)
    keys = [f"uploads/throttled-{n}.jpg" for n in range(4)]
    upload(s3, sqs, queues, keys)
    # WHEN the queue is drained
    invocations = drain(app, sqs, queues)
    # THEN botocore's retries absorbed every fault: one invocation per batch, every object has its result
    assert injector.injected >= 2 * len(keys)
    assert invocations == 1
    assert_accounted(s3, sqs, queues, keys)


class FailingStorage(Storage):
    """Real S3, except that chosen operations on chosen keys fail a number of times, past botocore's retries."""

    def __init__(self, *, get_fails: dict[str, int] | None = None, put_fails: dict[str, int] | None = None):
        super().__init__()
        self.get_fails = dict(get_fails or {})
        self.put_fails = dict(put_fails or {})
        self.puts_refused = 0

    def get(self, bucket, key, **kwargs):
        if self.get_fails.get(key, 0) > 0:
            self.get_fails[key] -= 1
            raise ReadTimeoutError(endpoint_url=f"http://s3/{bucket}/{key}")
        return super().get(bucket, key, **kwargs)

    def put(self, bucket, key, data, **kwargs):
        source = key.removeprefix("results/").removesuffix(".png")
        match = next((name for name in self.put_fails if name == source), None)
        if match and self.put_fails[match] > 0:
            self.put_fails[match] -= 1
            self.puts_refused += 1
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "PutObject")
        super().put(bucket, key, data, **kwargs)


def test_timeouts_that_outlast_retries_are_retried_by_the_queue(app, use_storage, s3, sqs, queues):
    # GIVEN one object whose reads time out twice (a retry later succeeds) and one that never answers
    keys = ["uploads/slow.jpg", "uploads/dead.jpg", "uploads/fine.jpg"]
    use_storage(FailingStorage(get_fails={"uploads/slow.jpg": 2, "uploads/dead.jpg": 99}))
    upload(s3, sqs, queues, keys)
    # WHEN the queue is drained
    drain(app, sqs, queues)
    # THEN the slow one got its result on a later delivery, the dead one is in the DLQ after 3 receives
    assert_accounted(s3, sqs, queues, keys, dead={"uploads/dead.jpg"})


def test_a_result_write_that_fails_after_the_model_ran(app, use_storage, s3, sqs, queues):
    # GIVEN result writes that fail after the cut-out was made: once for one object, always for another
    keys = [f"uploads/write-{n}.jpg" for n in range(4)]
    storage = use_storage(FailingStorage(put_fails={keys[1]: 1, keys[2]: MAX_RECEIVES}))
    upload(s3, sqs, queues, keys)
    # WHEN the queue is drained
    drain(app, sqs, queues)
    # THEN the once-failed object was written on redelivery, the always-failing one is dead-lettered
    assert storage.puts_refused == 1 + MAX_RECEIVES
    assert_accounted(s3, sqs, queues, keys, dead={keys[2]})


def test_redelivery_while_the_first_attempt_is_still_running(app, use_storage, s3, sqs, queues):
    # GIVEN an upload whose first attempt is held at its result write until a redelivery has finished
    key = "uploads/twice.jpg"
    redelivery_done = threading.Event()

    class HeldStorage(Storage):
        def put(self, bucket, key, data, **kwargs):
            if threading.current_thread().name == "first-attempt":
                assert redelivery_done.wait(timeout=60), "the redelivery did not finish"
            super().put(bucket, key, data, **kwargs)

    use_storage(HeldStorage())
    upload(s3, sqs, queues, [key])
    first = sqs.receive_message(QueueUrl=queues.url, AttributeNames=["All"])["Messages"]
    # The visibility timeout passes while the first attempt runs: SQS hands the message out again.
    sqs.change_message_visibility(QueueUrl=queues.url, ReceiptHandle=first[0]["ReceiptHandle"], VisibilityTimeout=0)
    second = sqs.receive_message(QueueUrl=queues.url, AttributeNames=["All"])["Messages"]
    assert second[0]["MessageId"] == first[0]["MessageId"]

    def invoke(messages) -> dict:
        # Two execution environments: each has its own batch processor, as each Lambda instance does.
        processor = BatchProcessor(event_type=EventType.SQS)
        return process_partial_response(
            event=sqs_event(messages, queues.arn), record_handler=app._queue_record, processor=processor, context=LambdaContext()
        )

    # WHEN both run at once, the second finishing first
    answers = {}
    first_attempt = threading.Thread(target=lambda: answers.update(first=invoke(first)), name="first-attempt")
    first_attempt.start()
    answers["second"] = invoke(second)
    redelivery_done.set()
    first_attempt.join(timeout=120)
    for message in first + second:
        sqs.delete_message(QueueUrl=queues.url, ReceiptHandle=message["ReceiptHandle"])

    # THEN both succeed and there is one result, from the object's ETag
    assert answers == {"first": {"batchItemFailures": []}, "second": {"batchItemFailures": []}}
    assert_accounted(s3, sqs, queues, [key])


@dataclass
class Clock:
    """A Lambda context whose remaining time drops by ``step_ms`` each time it is asked."""

    remaining_ms: int
    step_ms: int

    def __getattr__(self, name):
        return getattr(LambdaContext(), name)

    def get_remaining_time_in_millis(self) -> int:
        self.remaining_ms -= self.step_ms
        return self.remaining_ms


def test_running_out_of_time_mid_batch_leaves_the_rest_for_a_retry(app, use_storage, s3, sqs, queues):
    # GIVEN batches of 5 and invocations with time for 3 images each
    keys = [f"uploads/late-{n}.jpg" for n in range(7)]
    step = SETTINGS.min_remaining_ms // 2
    clocks, time_left_at_start = [], []

    def invocation() -> Clock:
        clocks.append(Clock(remaining_ms=SETTINGS.min_remaining_ms + 3 * step, step_ms=step))
        return clocks[-1]

    class TimedStorage(Storage):
        """Notes the invocation's time left (without looking at its clock) as each image's photo is read."""

        def get(self, bucket, key, **kwargs):
            time_left_at_start.append(clocks[-1].remaining_ms)
            return super().get(bucket, key, **kwargs)

    use_storage(TimedStorage())
    upload(s3, sqs, queues, keys)

    # WHEN each invocation starts 3 steps above the minimum and loses one step per look at the clock
    invocations = drain(app, sqs, queues, context=invocation)

    # THEN no image was started without enough time, the rest were retried, all have one result
    assert len(time_left_at_start) == len(keys) and min(time_left_at_start) >= SETTINGS.min_remaining_ms, time_left_at_start
    assert invocations > 2
    assert_accounted(s3, sqs, queues, keys)


def test_lambda_killed_mid_image_loses_nothing(app, use_storage, s3, sqs, queues):
    # GIVEN an invocation killed by Lambda's timeout during the third image, once
    keys = [f"uploads/killed-{n}.jpg" for n in range(4)]
    killed = []

    class KilledStorage(Storage):
        def put(self, bucket, key, data, **kwargs):
            if key.endswith("killed-2.jpg.png") and not killed:
                killed.append(key)
                raise LambdaKilled()
            super().put(bucket, key, data, **kwargs)

    use_storage(KilledStorage())
    upload(s3, sqs, queues, keys)
    # WHEN the queue is drained: the killed batch returns nothing, so all its messages come back
    drain(app, sqs, queues)
    # THEN images done before the kill are skipped on redelivery (same ETag), and each object has one result
    assert killed == ["results/uploads/killed-2.jpg.png"]
    assert_accounted(s3, sqs, queues, keys)
