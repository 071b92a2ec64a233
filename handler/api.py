"""POST /remove over API Gateway: the route, the error contract, and how a result is delivered.

``build_resolver`` is called once per payload version (REST v1, HTTP API v2) with the same
collaborators, so both answer the same way.
"""

import base64
import time

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.metrics import MetricUnit

from .errors import ServiceError, TooLarge
from .pipeline import Result, remove_background
from .request import RemoveRequest, base64_length, parse_remove_request
from .segmenter import Segmenter
from .settings import Settings
from .storage import Storage

# Lambda returns at most 6 MB (6,291,456 bytes) from a synchronous call, status and headers
# included; 16 KiB of that is kept for them, the rest is the base64 body.
RESPONSE_LIMIT = 6 * 1024 * 1024
RESPONSE_BODY_LIMIT = RESPONSE_LIMIT - 16 * 1024


def error_response(status: int, code: str, message: str) -> Response:
    """The error contract: JSON ``{"error": {"code", "message"}}`` with the HTTP status."""
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body={"error": {"code": code, "message": message}}
    )


def deliver(result: Result, request: RemoveRequest) -> Response:
    """The HTTP answer for a result: its bytes, or the JSON envelope for ``Accept: application/json``.

    A result whose base64 would not fit in Lambda's response is refused with a 413 that says
    how to get it anyway.
    """
    if base64_length(len(result.data)) > RESPONSE_BODY_LIMIT:
        raise TooLarge(
            f"the {result.format} result is {len(result.data):,} bytes, more than a Lambda response can carry "
            f"({RESPONSE_BODY_LIMIT * 3 // 4:,} bytes before base64): ask for format=webp or a smaller max_size, "
            "or send store=true to a deployment with an OUTPUT_BUCKET"
        )
    if request.wants_json:
        envelope = {
            "image": base64.b64encode(result.data).decode(),
            "format": result.format,
            "width": result.width,
            "height": result.height,
        }
        return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=envelope)
    return Response(status_code=200, content_type=result.media_type, body=result.data)


def _cors(origins: tuple[str, ...]) -> CORSConfig | None:
    """Powertools' CORS for the configured origins; none configured means no CORS headers."""
    if not origins:
        return None
    return CORSConfig(allow_origin=origins[0], extra_origins=list(origins[1:]), max_age=600)


def build_resolver(
    resolver_class: type[ApiGatewayResolver],
    *,
    segmenter: Segmenter,
    settings: Settings,
    storage: Storage,
    logger: Logger,
    metrics: Metrics,
) -> ApiGatewayResolver:
    """A Powertools resolver of ``resolver_class`` serving POST /remove with these collaborators."""
    app = resolver_class(cors=_cors(settings.cors_origins))

    @app.post("/remove")
    def remove() -> Response:
        started = time.perf_counter()
        request = parse_remove_request(app.current_event, settings)
        data = request.source
        if not isinstance(data, bytes):
            data, _ = storage.get(data.bucket, data.key, max_bytes=settings.max_object_bytes)
        result = remove_background(data, request.options, segmenter=segmenter, max_pixels=settings.max_input_pixels)
        response = deliver(result, request)
        metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000)
        metrics.add_metric(name="InputPixels", unit=MetricUnit.Count, value=result.input_pixels)
        metrics.add_metric(name="OutputBytes", unit=MetricUnit.Bytes, value=len(result.data))
        return response

    @app.exception_handler(ServiceError)
    def refused(error: ServiceError) -> Response:
        logger.info("request refused", extra={"status": error.status, "code": error.code, "reason": error.message})
        return error_response(error.status, error.code, error.message)

    @app.not_found
    def no_route(_) -> Response:
        event = app.current_event
        return error_response(404, "not_found", f"there is no {event.http_method} {event.path} in this API")

    @app.exception_handler(Exception)
    def internal_error(error: Exception) -> Response:
        # The stack trace goes to the log, tagged with the request id; the client gets only the id.
        logger.exception("unhandled error")
        request_id = app.current_event.request_context.request_id
        return error_response(500, "internal_error", f"internal error; quote request id {request_id} when reporting it")

    return app
