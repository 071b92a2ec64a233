"""batch_handler (S3 Batch Operations, "Invoke AWS Lambda function") on the committed invocation
events, against the local S3 server: result codes, result strings, result objects."""

import io
from urllib.parse import quote

import boto3
import pytest
from botocore.config import Config
from helpers import encode, example_photo
from localaws import INPUT_BUCKET, OUTPUT_BUCKET, replace_before_get
from PIL import Image

from handler.settings import Settings
from handler.storage import Storage
from handler.worker import Worker
from s3.support import PHOTO, SETTINGS, Injector, LambdaContext, load_event, output_keys


def batch_event(schema: str, bucket: str, key: str, user_arguments: dict | None = None) -> dict:
    """A committed invocation event (1.0: made by `sam local generate-event s3 batch-invocation`;
    2.0: the AWS documentation's example) pointed at ``bucket``/``key``, URL-encoded as in a manifest."""
    event = load_event("s3-batch-invocation.json" if schema == "1.0" else "s3-batch-invocation-v2.json")
    (task,) = event["tasks"]
    task["s3Key"] = quote(key)
    if schema == "1.0":
        task["s3BucketArn"] = f"arn:aws:s3:::{bucket}"
    else:
        task["s3Bucket"] = bucket
    if user_arguments is not None:
        event["job"]["userArguments"] = user_arguments
    return event


def only_result(response: dict, event: dict) -> dict:
    """The one result, after checking the envelope Batch Operations reads."""
    assert response["invocationSchemaVersion"] == event["invocationSchemaVersion"]
    assert response["invocationId"] == event["invocationId"]
    assert response["treatMissingKeysAs"] == "PermanentFailure"
    (result,) = response["results"]
    assert result["taskId"] == event["tasks"][0]["taskId"]
    return result


@pytest.fixture
def model_runs(segmenter, monkeypatch) -> list[int]:
    """Counts the model's runs (the shared segmenter, run for real)."""
    runs = []
    real_run = segmenter.run

    def counted(*args, **kwargs):
        runs.append(1)
        return real_run(*args, **kwargs)

    monkeypatch.setattr(segmenter, "run", counted)
    return runs


def test_the_committed_events_name_their_object_the_way_the_task_accessor_reads_it():
    from aws_lambda_powertools.utilities.data_classes import S3BatchOperationEvent

    v1 = S3BatchOperationEvent(load_event("s3-batch-invocation.json")).task
    v2 = S3BatchOperationEvent(load_event("s3-batch-invocation-v2.json"))
    assert (v1.s3_bucket, v1.s3_key) == (INPUT_BUCKET, "uploads/holiday photos/beach (1).jpg")
    assert (v2.task.s3_bucket, v2.task.s3_key) == (INPUT_BUCKET, "customerImage1.jpg")
    assert v2.job.user_arguments == {"format": "webp", "max_size": "1024"}


def test_a_photo_succeeds_with_its_result_and_a_second_run_is_up_to_date(app, use_storage, s3, model_runs):
    # GIVEN the schema 1.0 event (as SAM generates it) and its photo in the input bucket
    event = load_event("s3-batch-invocation.json")
    key = "uploads/holiday photos/beach (1).jpg"
    s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=PHOTO)
    # WHEN Batch Operations invokes the function
    result = only_result(app.batch_handler(event, LambdaContext()), event)
    # THEN the task succeeded and names the result, which is the queue worker's result for that key
    location = f"s3://{OUTPUT_BUCKET}/results/uploads/holiday photos/beach (1).jpg.png"
    assert result == {"taskId": event["tasks"][0]["taskId"], "resultCode": "Succeeded", "resultString": location}
    stored = s3.get_object(Bucket=OUTPUT_BUCKET, Key="results/uploads/holiday photos/beach (1).jpg.png")
    image = Image.open(io.BytesIO(stored["Body"].read()))
    assert (image.format, image.mode, image.size) == ("PNG", "RGBA", (96, 96))
    assert stored["Metadata"]["source-etag"] == s3.head_object(Bucket=INPUT_BUCKET, Key=key)["ETag"].strip('"')
    assert len(model_runs) == 1
    # WHEN the job runs again (a retried task, a second job over the same manifest)
    again = only_result(app.batch_handler(event, LambdaContext()), event)
    # THEN it is up to date, without running the model or writing anything
    assert again["resultCode"] == "Succeeded" and again["resultString"] == f"up to date: {location}"
    assert len(model_runs) == 1
    assert output_keys(s3) == ["results/uploads/holiday photos/beach (1).jpg.png"]


def test_store_in_the_user_arguments_leaves_the_queues_result_up_to_date(app, use_storage, s3, model_runs):
    # GIVEN a photo whose result was made with the default options (as the queue worker makes it)
    key = "uploads/shoe.jpg"
    s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=PHOTO)
    first = batch_event("1.0", INPUT_BUCKET, key)
    assert only_result(app.batch_handler(first, LambdaContext()), first)["resultCode"] == "Succeeded"
    # WHEN a job over it says store=true, an API option that changes neither the result's bytes nor its key
    event = batch_event("2.0", INPUT_BUCKET, key, user_arguments={"store": "true"})
    result = only_result(app.batch_handler(event, LambdaContext()), event)
    # THEN the stored result stands for it: up to date, the model not run again (regression: the
    # recorded options held store, so each side took the other's result for another one and made it again)
    assert result["resultString"] == f"up to date: s3://{OUTPUT_BUCKET}/results/{key}.png"
    assert len(model_runs) == 1


def test_schema_2_user_arguments_are_the_options_and_keys_may_hold_spaces_and_non_ascii(app, use_storage, s3):
    # GIVEN the documentation's schema 2.0 event, asking for WebP at most 64 px, for a key with spaces and accents
    key = "uploads/été 2026/café au lait + croissant №1.jpg"
    s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=encode(example_photo("coffee", (160, 120)), "JPEG"))
    event = batch_event("2.0", INPUT_BUCKET, key, user_arguments={"format": "webp", "max_size": "64"})
    # WHEN it is invoked
    result = only_result(app.batch_handler(event, LambdaContext()), event)
    # THEN the result has those options, at the key the queue worker gives the same object and options
    assert result["resultCode"] == "Succeeded", result
    (result_key,) = output_keys(s3)
    assert result_key.startswith("results/uploads/été 2026/café au lait + croissant №1.") and result_key.endswith(".webp")
    assert result["resultString"] == f"s3://{OUTPUT_BUCKET}/{result_key}"
    image = Image.open(io.BytesIO(s3.get_object(Bucket=OUTPUT_BUCKET, Key=result_key)["Body"].read()))
    assert (image.format, image.size) == ("WEBP", (64, 48))


def test_schema_1_has_no_user_arguments_and_takes_the_default_options(app, use_storage, s3):
    key = "uploads/ünï cödé.jpg"
    s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=PHOTO)
    event = batch_event("1.0", INPUT_BUCKET, key)
    result = only_result(app.batch_handler(event, LambdaContext()), event)
    assert result["resultString"] == f"s3://{OUTPUT_BUCKET}/results/uploads/ünï cödé.jpg.png"


@pytest.mark.parametrize("schema", ["1.0", "2.0"])
@pytest.mark.parametrize(
    ("body", "bucket", "key", "reason"),
    [
        (b"a text file, not a photo", INPUT_BUCKET, "uploads/not-a-photo.jpg", "unsupported_media_type: "),
        (PHOTO[: len(PHOTO) // 2], INPUT_BUCKET, "uploads/truncated.jpg", "undecodable_image: "),
        (None, INPUT_BUCKET, "uploads/deleted since the manifest.jpg", "not_found: s3://bgremove-input/uploads/deleted"),
        (PHOTO, OUTPUT_BUCKET, "someone else's.jpg", "bucket_not_allowed: bucket bgremove-output is not one"),
    ],
    ids=["not-an-image", "corrupt", "missing", "bucket-not-allowed"],
)
def test_photos_that_can_never_succeed_fail_permanently_with_the_reason(app, use_storage, s3, schema, body, bucket, key, reason):
    # GIVEN an object that is no usable photo, or none at all, or one in a bucket the function may not read
    if body is not None:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    event = batch_event(schema, bucket, key)
    # WHEN its task runs
    result = only_result(app.batch_handler(event, LambdaContext()), event)
    # THEN Batch Operations is told not to retry it, and why (its completion report shows the string)
    assert result["resultCode"] == "PermanentFailure"
    assert result["resultString"].startswith(reason), result["resultString"]
    assert not [k for k in output_keys(s3) if k.startswith("results/")]


def test_user_arguments_that_are_not_options_fail_every_task_permanently(app, use_storage, s3):
    s3.put_object(Bucket=INPUT_BUCKET, Key="customerImage1.jpg", Body=PHOTO)
    event = load_event("s3-batch-invocation-v2.json")
    event["job"]["userArguments"] = {"k1": "v1"}  # the documentation's own placeholder
    result = only_result(app.batch_handler(event, LambdaContext()), event)
    assert result["resultCode"] == "PermanentFailure"
    assert result["resultString"].startswith("invalid_option: unknown option 'k1'")
    assert output_keys(s3) == []


@pytest.mark.parametrize(
    ("fault", "operation", "reason"),
    [
        ("slowdown", "HeadObject", "S3 HeadObject failed: SlowDown (503)"),
        ("slowdown", "GetObject", "S3 GetObject failed: SlowDown (503)"),
        ("slowdown", "PutObject", "S3 PutObject failed: SlowDown (503)"),
        ("timeout", "GetObject", "S3 did not answer: ReadTimeoutError"),
    ],
)
def test_throttling_and_timeouts_past_the_retries_are_temporary(app, use_storage, s3, fault, operation, reason):
    # GIVEN S3 that throttles or times out on every attempt of one kind of request; a client
    # with 2 attempts instead of the service's 5, so the test does not wait out the backoff
    client = boto3.client("s3", config=Config(retries={"mode": "standard", "total_max_attempts": 2}))
    storage = use_storage(Storage(client=client))
    injector = Injector(times=99, fault=fault)
    storage.client.meta.events.register(f"before-send.s3.{operation}", injector)
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/busy.jpg", Body=PHOTO)
    event = batch_event("2.0", INPUT_BUCKET, "uploads/busy.jpg", user_arguments={})
    # WHEN its task runs
    result = only_result(app.batch_handler(event, LambdaContext()), event)
    # THEN the job is told to retry it later, and nothing was written
    assert injector.injected == 2
    assert result["resultCode"] == "TemporaryFailure"
    assert result["resultString"].startswith(reason), result["resultString"]
    assert output_keys(s3) == []


def test_a_photo_replaced_while_it_is_read_is_temporary_and_its_retry_takes_the_new_photo(app, use_storage, s3):
    # GIVEN a photo that another writer replaces between the task's HEAD and its GET
    storage = use_storage()
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/edited.jpg", Body=PHOTO)
    replacement = encode(example_photo("coffee", (120, 80)), "JPEG")
    replaced = replace_before_get(storage.client, INPUT_BUCKET, "uploads/edited.jpg", replacement)
    event = batch_event("2.0", INPUT_BUCKET, "uploads/edited.jpg", user_arguments={})
    # WHEN its task runs: the job is told to retry, and nothing was written
    result = only_result(app.batch_handler(event, LambdaContext()), event)
    assert result["resultCode"] == "TemporaryFailure"
    assert result["resultString"] == (
        f"object_changed: s3://{INPUT_BUCKET}/uploads/edited.jpg was replaced while it was being read; try again"
    )
    assert output_keys(s3) == []
    # THEN the retry succeeds with the new photo's cut-out
    result = only_result(app.batch_handler(event, LambdaContext()), event)
    assert result["resultCode"] == "Succeeded"
    stored = s3.get_object(Bucket=OUTPUT_BUCKET, Key="results/uploads/edited.jpg.png")
    assert stored["Metadata"]["source-etag"] == replaced["etag"]
    assert Image.open(io.BytesIO(stored["Body"].read())).size == (120, 80)


def test_a_task_started_with_too_little_time_left_is_temporary(app, use_storage, s3, model_runs):
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/late.jpg", Body=PHOTO)
    event = batch_event("1.0", INPUT_BUCKET, "uploads/late.jpg")
    context = LambdaContext(remaining_ms=SETTINGS.min_remaining_ms - 1)
    result = only_result(app.batch_handler(event, context), event)
    assert result["resultCode"] == "TemporaryFailure"
    assert result["resultString"] == f"not started: {SETTINGS.min_remaining_ms - 1:,} ms of the invocation left, 10,000 ms needed"
    assert model_runs == [] and output_keys(s3) == []


def test_a_result_listed_in_the_manifest_is_not_processed_again(app, s3, segmenter, monkeypatch):
    # GIVEN a manifest of a bucket shared by photos and results (no output bucket of its own)
    shared = Settings(input_buckets=(INPUT_BUCKET,), output_bucket="", output_prefix="results/")
    monkeypatch.setattr(app, "worker", Worker(storage=Storage(), segmenter=segmenter, settings=shared))
    s3.put_object(Bucket=INPUT_BUCKET, Key="results/a.png", Body=PHOTO)
    event = batch_event("1.0", INPUT_BUCKET, "results/a.png")
    result = only_result(app.batch_handler(event, LambdaContext()), event)
    assert result["resultCode"] == "Succeeded"
    assert result["resultString"] == f"skipped: s3://{INPUT_BUCKET}/results/a.png is a result of this service, not a photo"


def test_a_folder_marker_listed_in_the_manifest_is_skipped(app, use_storage, s3):
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/2026/", Body=b"")
    event = batch_event("2.0", INPUT_BUCKET, "uploads/2026/")
    result = only_result(app.batch_handler(event, LambdaContext()), event)
    assert result["resultCode"] == "Succeeded"
    assert result["resultString"] == f"skipped: s3://{INPUT_BUCKET}/uploads/2026/ is a folder marker, not a photo"
    assert output_keys(s3) == []


def test_a_key_too_long_for_its_result_is_a_permanent_failure(app, use_storage, s3):
    key = "uploads/" + "k" * 1010 + ".jpg"  # a valid key, whose result key would pass 1,024 bytes
    s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=PHOTO)
    event = batch_event("1.0", INPUT_BUCKET, key)
    result = only_result(app.batch_handler(event, LambdaContext()), event)
    assert result["resultCode"] == "PermanentFailure"
    assert result["resultString"].startswith("bad_request: the result's key would be longer than S3's 1,024 bytes")
