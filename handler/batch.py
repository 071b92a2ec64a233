"""S3 Batch Operations' "Invoke AWS Lambda function": one task in, one result code out.

A task is the queue worker's unit of work (``Worker.process``: the same result key and
options, the same skip when the stored result records the source's ETag, the options and
this version of the code). What Batch Operations needs on top is a result code that tells it
what to do next:

- ``Succeeded``: the result's location, or "up to date: <location>" when it already existed;
- ``PermanentFailure``, with the reason: a photo that can never succeed (not an image, too
  large, gone, in a bucket outside INPUT_BUCKETS) or user arguments that are not options;
- ``TemporaryFailure``: S3 throttling, 5xx and timeouts that outlasted boto3's retries, a photo
  replaced while it was being read, and a task not started because too little of the
  invocation was left. The job retries these.

Batch Operations sends one task per invocation; keys arrive URL-encoded, as in the manifest,
in both schemas (the Powertools accessor decodes them). Options come from the job's user
arguments (schema 2.0) under the API's names, else the defaults.
"""

from dataclasses import replace

from aws_lambda_powertools.utilities.data_classes import S3BatchOperationEvent, S3BatchOperationResponse
from aws_lambda_powertools.utilities.data_classes.s3_batch_operation_event import (
    S3BatchOperationResponseRecord,
    S3BatchOperationTask,
)

from .errors import BucketNotAllowed, ObjectChanged, ObjectNotFound, ServiceError
from .options import Options
from .storage import ObjectRef
from .worker import Worker

# S3 error codes that mean "not now" rather than "never" (5xx statuses are retried as well).
_RETRY_LATER = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "TooManyRequests"}


def _client_error(error) -> tuple[str, str]:
    """Result code and reason for an error S3 answered: throttling and 5xx are temporary."""
    details = error.response.get("Error", {})
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    code = details.get("Code", "unknown")
    result_code = "TemporaryFailure" if status >= 500 or status == 429 or code in _RETRY_LATER else "PermanentFailure"
    return result_code, f"S3 {error.operation_name} failed: {code} ({status}) {details.get('Message', '')}".rstrip()


def process_task(worker: Worker, task: S3BatchOperationTask, *, remaining_ms: int, logger) -> S3BatchOperationResponseRecord:
    """The result record for one task. Raises only for what no retry of this task can mend
    (missing credentials, a bug), so that Lambda reports it and the job's failure threshold stops it."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    settings = worker.settings
    source = ObjectRef(task.s3_bucket, task.s3_key)
    where = f"s3://{source.bucket}/{source.key}"
    if remaining_ms < settings.min_remaining_ms:
        reason = f"not started: {remaining_ms:,} ms of the invocation left, {settings.min_remaining_ms:,} ms needed"
        return _record(task, "TemporaryFailure", reason, where, logger)
    if source.bucket not in settings.input_buckets:
        error = BucketNotAllowed(f"bucket {source.bucket} is not one this function may read (INPUT_BUCKETS)")
        return _never(task, error, where, logger)
    if reason := worker.not_a_photo(source):
        return _record(task, "Succeeded", f"skipped: {where} is {reason}", where, logger)
    try:
        target = worker.target(source)
        outcome = worker.process(source)
    except ObjectChanged as error:  # a retry reads the new version
        return _record(task, "TemporaryFailure", f"{error.code}: {error.message}", where, logger)
    except ServiceError as error:
        return _never(task, error, where, logger)
    except (ConnectionError, HTTPClientError) as error:  # timeouts, resets, an unreachable endpoint
        return _record(task, "TemporaryFailure", f"S3 did not answer: {type(error).__name__}", where, logger)
    except ClientError as error:
        return _record(task, *_client_error(error), where, logger)
    if outcome == "gone":
        return _never(task, ObjectNotFound(f"{where} does not exist"), where, logger)
    location = f"s3://{target.bucket}/{target.key}"
    return _record(task, "Succeeded", location if outcome == "written" else f"up to date: {location}", where, logger)


def _record(task: S3BatchOperationTask, result_code: str, reason: str, where: str, logger) -> S3BatchOperationResponseRecord:
    log = logger.info if result_code == "Succeeded" else logger.warning
    log("batch task done", extra={"object": where, "result_code": result_code, "result": reason})
    return task.build_task_batch_response(result_code, reason)


def _never(task: S3BatchOperationTask, error: ServiceError, where: str, logger) -> S3BatchOperationResponseRecord:
    """A task no retry can mend, with the error's stable code and message as the reason."""
    return _record(task, "PermanentFailure", f"{error.code}: {error.message}", where, logger)


def handle_batch_event(event: dict, *, worker: Worker, remaining_ms: int, logger) -> dict:
    """The response Batch Operations expects for one invocation (its one task).

    ``treatMissingKeysAs`` is PermanentFailure: a task the response does not mention is not
    silently counted as done.
    """
    batch = S3BatchOperationEvent(event)
    response = S3BatchOperationResponse(batch.invocation_schema_version, batch.invocation_id, "PermanentFailure")
    task = batch.task
    try:
        options = Options.parse(batch.job.user_arguments)
    except ServiceError as error:
        response.add_result(_never(task, error, f"s3://{task.s3_bucket}/{task.s3_key}", logger))
    else:
        response.add_result(process_task(replace(worker, options=options), task, remaining_ms=remaining_ms, logger=logger))
    return response.asdict()
