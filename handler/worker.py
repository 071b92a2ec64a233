"""The S3 path's unit of work: one uploaded object in, one result object out.

Used by the direct S3 notification handler, the SQS queue worker and S3 Batch Operations
(batch.py) alike. Deliveries are at least once, so the result key is deterministic and an
object whose result already records the same source ETag, options and version of the code is
skipped.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event

from .errors import ObjectChanged, ObjectNotFound, ServiceError, cut_short
from .options import Options
from .parallel import SERIAL, StripPool
from .pipeline import remove_background, result_version
from .segmenter import MODEL_NAME, Segmenter
from .settings import Settings
from .storage import ObjectRef, Storage, object_result_metadata, result_location


def created_objects(notification: dict | str) -> list[ObjectRef]:
    """The objects an S3 event notification (or an SQS message body holding one) reports as
    created, keys URL-decoded.

    S3 URL-encodes keys in notifications, with '+' for a space. The ``s3:TestEvent``
    that S3 sends when a notification is configured has no records and yields nothing.

    :raises ValueError: anything else without records (a message sent by hand, an SNS
        envelope, text that is not JSON), so that it fails and reaches the dead-letter queue
        instead of vanishing.
    """
    if isinstance(notification, str):
        try:
            notification = json.loads(notification)
        except (ValueError, RecursionError):
            raise ValueError("not an S3 event notification: the message body is not JSON") from None
    if not isinstance(notification, dict):
        raise ValueError(f"not an S3 event notification: a JSON {type(notification).__name__}")
    if notification.get("Event") == "s3:TestEvent":
        return []
    if "Records" not in notification:
        raise ValueError(f"not an S3 event notification (no Records): {sorted(notification)[:5]}")
    try:
        return [
            ObjectRef(bucket=record.s3.bucket.name, key=unquote_plus(record.s3.get_object.key))
            for record in S3Event(notification).records
            if record.event_name.startswith("ObjectCreated")
        ]
    except (KeyError, TypeError, AttributeError) as error:  # Records of another shape
        raise ValueError(f"not an S3 event notification: its Records are not S3 records ({error!r})") from None


@dataclass(frozen=True)
class Worker:
    """Turns input objects into result objects with the shared pipeline."""

    storage: Storage
    segmenter: Segmenter
    settings: Settings
    options: Options = Options()
    strips: StripPool = SERIAL

    def target(self, source: ObjectRef) -> ObjectRef:
        return result_location(
            source, self.options, output_bucket=self.settings.output_bucket, output_prefix=self.settings.output_prefix
        )

    def not_a_photo(self, source: ObjectRef) -> str | None:
        """Why an object is no photo to cut out, or None: results never count as inputs (also
        when input and output share a bucket), nor do folder markers (the zero-byte key ending
        in "/" that the S3 console's "Create folder" makes)."""
        output_bucket = self.settings.output_bucket or source.bucket
        if source.bucket == output_bucket and source.key.startswith(self.settings.output_prefix):
            return "a result of this service, not a photo"
        if source.key.endswith("/"):
            return "a folder marker, not a photo"
        return None

    def process(self, source: ObjectRef) -> str:
        """Write the result of one object; answers what happened: written, skipped or gone.

        Raises ServiceError for an object that is not a usable image or was replaced while
        it was read or cut out (ObjectChanged), and botocore's errors for S3 failures: the
        caller decides whether to retry.
        """
        if self.not_a_photo(source):
            return "skipped"
        info = self.storage.head(source.bucket, source.key)
        if info is None:
            return "gone"
        target = self.target(source)
        version = result_version(self.segmenter.model_path)
        metadata = object_result_metadata(source, info.etag, self.options, model=MODEL_NAME, version=version)
        if self.storage.stored_result(target, metadata) is not None:
            return "skipped"
        try:
            # The HEAD above pins the version: the result's recorded ETag is the one the skip checked.
            data, _ = self.storage.get(source.bucket, source.key, max_bytes=self.settings.max_object_bytes, info=info)
        except ObjectNotFound:
            return "gone"
        result = remove_background(
            data, self.options, segmenter=self.segmenter, max_pixels=self.settings.max_input_pixels, strips=self.strips
        )
        self.storage.put(target.bucket, target.key, result.data, content_type=result.media_type, metadata=metadata)
        # A photo replaced since the GET has its own notification, which another environment may
        # have finished before this PUT overwrote its result: the retry this asks for makes the
        # new photo's result again, or finds it already up to date.
        now = self.storage.head(source.bucket, source.key)
        if now is not None and now.etag != info.etag:
            where = cut_short(f"s3://{source.bucket}/{source.key}")
            raise ObjectChanged(f"{where} was replaced while it was being cut out; try again")
        return "written"


class OutOfTime(Exception):
    """Too little of the invocation is left to process another image: leave it for a retry."""


def process_notification(worker: Worker, notification: dict | str, *, get_remaining_ms: Callable[[], int], logger) -> None:
    """Process every object an S3 notification reports, checking the time left before each
    against ``worker.settings.min_remaining_ms``.

    :param get_remaining_ms: the invocation's clock, e.g. ``context.get_remaining_time_in_millis``.
    Raises on the first object that fails, after logging which one and why.
    """
    min_remaining_ms = worker.settings.min_remaining_ms
    try:
        sources = created_objects(notification)
    except ValueError as error:
        logger.error("message not processed", extra={"reason": str(error)})
        raise
    for source in sources:
        where = {"bucket": source.bucket, "key": source.key}
        remaining_ms = get_remaining_ms()
        if remaining_ms < min_remaining_ms:
            reason = f"{remaining_ms} ms left, {min_remaining_ms} ms needed"
            logger.warning("upload not started", extra=where | {"reason": reason})
            raise OutOfTime(f"{reason} for s3://{source.bucket}/{source.key}")
        try:
            outcome = worker.process(source)
        except ServiceError as error:
            logger.error("upload not processed", extra=where | {"code": error.code, "reason": error.message})
            raise
        except Exception:  # S3 failing past boto3's retries, or a bug: the batch reports only the message id
            logger.exception("upload not processed", extra=where)
            raise
        logger.info("upload processed", extra=where | {"outcome": outcome})
