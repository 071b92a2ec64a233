"""Lambda entry points. Everything here is built once per execution environment, at import."""

import traceback
import warnings

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from .api import build_api
from .batch import handle_batch_event
from .parallel import StripPool
from .segmenter import Segmenter
from .settings import Settings
from .storage import Storage
from .worker import Worker, process_notification

# Refused requests and CORS preflights have no metrics to publish; that is expected, not worth a warning.
warnings.filterwarnings("ignore", "No application metrics to publish")

logger = Logger()
metrics = Metrics()
settings = Settings.from_env()
segmenter = Segmenter(settings.model_path, threads=settings.threads)
strips = StripPool(settings.threads)  # the full-resolution steps get the same cores as the model
storage = Storage()

_collaborators = dict(segmenter=segmenter, settings=settings, storage=storage, logger=logger, metrics=metrics, strips=strips)
api = build_api(**_collaborators)
worker = Worker(storage=storage, segmenter=segmenter, settings=settings, strips=strips)
batch_processor = BatchProcessor(event_type=EventType.SQS)


# Both payload versions keep the request id at requestContext.requestId.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics(capture_cold_start_metric=True)
def api_handler(event: dict, context) -> dict:
    """API Gateway: REST API (payload v1) and HTTP API (payload v2) events alike."""
    return api.resolve(event, context)


def _process(notification: dict | str, context) -> None:
    process_notification(worker, notification, get_remaining_ms=context.get_remaining_time_in_millis, logger=logger)


@logger.inject_lambda_context
def s3_handler(event: dict, context) -> None:
    """S3 event notification, delivered directly: a failure raises so Lambda retries the event."""
    _process(event, context)


def _queue_record(record: SQSRecord, lambda_context) -> None:
    """One SQS message whose body is an S3 notification; raising sends it back for a retry."""
    try:
        _process(record.body, lambda_context)
    except Exception as error:
        # The batch processor keeps every failed record's exception until the next batch, and
        # with it the frames it was raised through: their locals held the record's photo, its
        # bytes and its half-decoded pixels (48 MB at 12 MP) while the next records ran.
        while error is not None:
            traceback.clear_frames(error.__traceback__)
            error = error.__cause__ or error.__context__
        raise


@logger.inject_lambda_context
def queue_handler(event: dict, context) -> dict:
    """SQS batch of S3 notifications: only the messages that failed are retried (then dead-lettered)."""
    return process_partial_response(event=event, record_handler=_queue_record, processor=batch_processor, context=context)


@logger.inject_lambda_context
def batch_handler(event: dict, context) -> dict:
    """S3 Batch Operations "Invoke AWS Lambda function" (schemas 1.0 and 2.0): one task, one result code."""
    return handle_batch_event(event, worker=worker, remaining_ms=context.get_remaining_time_in_millis(), logger=logger)
