"""The API's routes over API Gateway (POST /remove, POST /uploads, GET /cutouts/{key}), the error
contract, and how a /remove result is delivered.

``build_resolver`` is called once per payload version (REST v1, HTTP API v2) with the same
collaborators, so both answer the same way.
"""

import base64
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import (
    APIGatewayHttpResolver,
    APIGatewayRestResolver,
    CORSConfig,
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.metrics import MetricUnit

from .cutouts import Served, serve_cutout
from .errors import ServiceError, TooLarge, cut_short
from .options import Options
from .parallel import SERIAL, StripPool
from .pipeline import Result, remove_background, result_version
from .request import (
    UPLOAD_TYPES,
    RemoveRequest,
    UploadRequest,
    parse_cutout_request,
    parse_remove_request,
    parse_upload_request,
)
from .responses import RESPONSE_BODY_LIMIT, fits_in_response
from .segmenter import MODEL_NAME, Segmenter
from .settings import Settings
from .signing import SigningSecret
from .storage import SOURCE_ETAG, ObjectRef, Storage, content_source, result_key, result_location, result_metadata


def error_response(status: int, code: str, message: str) -> Response:
    """The error contract: JSON ``{"error": {"code", "message"}}`` with the HTTP status; never cached."""
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body={"error": {"code": code, "message": message}},
        headers={"Cache-Control": "no-store"},
    )


def _link(
    result: Result,
    request: RemoveRequest,
    source: str,
    *,
    source_etag: str | None,
    model_path: Path,
    storage: Storage,
    settings: Settings,
) -> dict:
    """Store the result under its deterministic key, recording the version of what made it (the
    code, and the model at ``model_path``), and answer where it is, with a presigned GET."""
    key = result_key(settings.output_prefix, source, request.options, source_etag=source_etag)
    location = ObjectRef(settings.output_bucket, key)
    version = result_version(model_path)
    made_from = {"source": source}
    if source_etag is not None:
        made_from[SOURCE_ETAG] = source_etag
    metadata = result_metadata(made_from, request.options, model=MODEL_NAME, version=version)
    storage.put(location.bucket, location.key, result.data, content_type=result.media_type, metadata=metadata)
    url = storage.presign_get(location.bucket, location.key, expires_in=settings.url_expires_in)
    return {"bucket": location.bucket, "key": location.key, "url": url, "expires_in": settings.url_expires_in}


def deliver(
    result: Result,
    request: RemoveRequest,
    source: str,
    *,
    source_etag: str | None = None,
    model_path: Path,
    storage: Storage,
    settings: Settings,
) -> Response:
    """The HTTP answer for a result: its bytes, the JSON envelope, or a link to it in S3.

    ``source`` names where the photo came from, and ``source_etag`` the version read when it
    came from an S3 object (``storage.result_key``).

    ``store`` asks for a link. A result whose base64 would not fit in Lambda's response is
    stored and linked when the deployment has an output bucket (a client that expects image
    bytes gets 303 See Other to it), and refused with a 413 that says what to do otherwise.
    """
    too_large = not fits_in_response(len(result.data))
    if too_large and not settings.output_bucket:
        raise TooLarge(
            f"the {result.format} result is {len(result.data):,} bytes, more than a Lambda response can carry "
            f"({RESPONSE_BODY_LIMIT * 3 // 4:,} bytes before base64): ask for format=webp or a smaller max_size, "
            "or send store=true to a deployment with an OUTPUT_BUCKET"
        )
    if request.options.store or too_large:
        link = _link(result, request, source, source_etag=source_etag, model_path=model_path, storage=storage, settings=settings)
        if request.options.store or request.wants_json:
            return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=link)
        return Response(
            status_code=303, content_type=content_types.APPLICATION_JSON, body=link, headers={"Location": link["url"]}
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


def upload_link(upload: UploadRequest, *, storage: Storage, settings: Settings) -> dict:
    """A presigned PUT for a new object under the upload prefix, and where its result will appear."""
    source = ObjectRef(settings.upload_bucket, f"{settings.upload_prefix}{uuid.uuid4().hex}{UPLOAD_TYPES[upload.content_type]}")
    result = result_location(source, Options(), output_bucket=settings.output_bucket, output_prefix=settings.output_prefix)
    expires_in = settings.url_expires_in
    return {
        "upload_url": storage.presign_put(
            source.bucket, source.key, content_type=upload.content_type, size=upload.size, expires_in=expires_in
        ),
        "method": "PUT",
        "headers": {"Content-Type": upload.content_type},
        "bucket": source.bucket,
        "key": source.key,
        "result": {"bucket": result.bucket, "key": result.key},
        "result_url": storage.presign_get(result.bucket, result.key, expires_in=expires_in),
        "expires_in": expires_in,
    }


# How a cut-out request was answered -> the count CloudWatch keeps of it.
CUTOUT_METRICS = {Served.MADE: "CutoutsMade", Served.STORED: "CutoutsFromStore", Served.NOT_MODIFIED: "CutoutsNotModified"}


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
    strips: StripPool = SERIAL,
) -> ApiGatewayResolver:
    """A Powertools resolver of ``resolver_class`` serving POST /remove, POST /uploads and GET (or HEAD)
    /cutouts/{key} with these collaborators, and mapping errors to the error contract."""
    app = resolver_class(cors=_cors(settings.cors_origins))
    signing_secret = SigningSecret(settings)

    def record_made(result: Result, response: Response, *, started: float, route: str) -> None:
        """The metrics and the log line of a cut-out the model made, by either route."""
        metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000)
        metrics.add_metric(name="InputPixels", unit=MetricUnit.Count, value=result.input_pixels)
        metrics.add_metric(name="OutputBytes", unit=MetricUnit.Bytes, value=len(result.data))
        # Where the time went on this function's CPU share: what `make bench` splits, in production.
        stage_ms = {stage: round(seconds * 1000, 1) for stage, seconds in result.stage_seconds.items()}
        logger.info(
            "cut-out made",
            extra={
                "route": route,
                "status": response.status_code,
                "input_pixels": result.input_pixels,
                "output_bytes": len(result.data),
                "stage_ms": stage_ms,
            },
        )

    @app.post("/remove")
    def remove() -> Response:
        started = time.perf_counter()
        request = parse_remove_request(app.current_event, settings)
        if isinstance(request.source, ObjectRef):
            data, source_etag = storage.get(request.source.bucket, request.source.key, max_bytes=settings.max_object_bytes)
            source = f"s3/{request.source.bucket}/{request.source.key}"
        else:
            data, source, source_etag = request.source, content_source(request.source), None
        result = remove_background(
            data, request.options, segmenter=segmenter, max_pixels=settings.max_input_pixels, strips=strips
        )
        response = deliver(
            result,
            request,
            source,
            source_etag=source_etag,
            model_path=segmenter.model_path,
            storage=storage,
            settings=settings,
        )
        record_made(result, response, started=started, route="POST /remove")
        return response

    @app.post("/uploads")
    def uploads() -> Response:
        upload = parse_upload_request(app.current_event, settings)
        return Response(
            status_code=200,
            content_type=content_types.APPLICATION_JSON,
            body=upload_link(upload, storage=storage, settings=settings),
        )

    # Keys contain "/" (and may contain newlines), so the route is a regex over the rest of the path:
    # Powertools' <name> stops at "/".
    @app.route("/cutouts/(?s:.+)", method=["GET", "HEAD"])
    def cutouts() -> Response:
        started = time.perf_counter()
        event = app.current_event
        request = parse_cutout_request(event, secret=signing_secret.value, now=time.time())
        head_only = event.http_method == "HEAD"
        answer = serve_cutout(
            request, head_only=head_only, storage=storage, segmenter=segmenter, settings=settings, strips=strips
        )
        # A CDN's requests that reach the function: how many ran the model is what they cost.
        metrics.add_metric(name=CUTOUT_METRICS[answer.how], unit=MetricUnit.Count, value=1)
        if answer.made is not None:
            record_made(answer.made, answer.response, started=started, route=f"{event.http_method} /cutouts")
        return answer.response

    @app.exception_handler(ServiceError)
    def refused(error: ServiceError) -> Response:
        logger.info("request refused", extra={"status": error.status, "code": error.code, "reason": error.message})
        return error_response(error.status, error.code, error.message)

    @app.not_found
    def no_route(_) -> Response:
        event = app.current_event
        return error_response(404, "not_found", f"there is no {event.http_method} {cut_short(event.path)} in this API")

    @app.exception_handler(Exception)
    def internal_error(error: Exception) -> Response:
        # The stack trace goes to the log, tagged with the request id; the client gets only the id.
        logger.exception("unhandled error")
        request_id = app.current_event.request_context.request_id
        return error_response(500, "internal_error", f"internal error; quote request id {request_id} when reporting it")

    return app


def _header(response: dict, name: str) -> str | None:
    """A proxy response's header as one value (REST API responses use multiValueHeaders)."""
    if "multiValueHeaders" in response:
        return ", ".join(response["multiValueHeaders"].get(name, [])) or None
    return (response.get("headers") or {}).get(name)


def _set_header(response: dict, name: str, value: str) -> None:
    if "multiValueHeaders" in response:
        response["multiValueHeaders"][name] = [value]
    else:
        response.setdefault("headers", {})[name] = value


@dataclass(frozen=True)
class ApiResolvers:
    """The API behind both kinds of API Gateway: REST API (payload v1) and HTTP API (payload v2).

    Answers are made cacheable across origins here. Any origin allowed: every answer says
    ``Access-Control-Allow-Origin: *``, also to a request without Origin (CloudFront does not
    forward it, and a cached answer is served to every page). Origins restricted: the CORS
    headers depend on the request's Origin, so every answer says ``Vary: Origin``.
    """

    rest: ApiGatewayResolver
    http: ApiGatewayResolver
    cors_origins: tuple[str, ...]

    def resolve(self, event: dict, context) -> dict:
        resolver = self.http if event.get("version") == "2.0" else self.rest
        response = resolver.resolve(event, context)
        if "*" in self.cors_origins:
            _set_header(response, "Access-Control-Allow-Origin", "*")
        elif self.cors_origins:
            _set_header(response, "Vary", ", ".join(filter(None, [_header(response, "Vary"), "Origin"])))
        return response


def build_api(**collaborators) -> ApiResolvers:
    """Both resolvers over the same collaborators (see ``build_resolver``)."""
    return ApiResolvers(
        rest=build_resolver(APIGatewayRestResolver, **collaborators),
        http=build_resolver(APIGatewayHttpResolver, **collaborators),
        cors_origins=collaborators["settings"].cors_origins,
    )
