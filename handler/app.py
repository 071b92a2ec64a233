"""Lambda entry points. Everything here is built once per execution environment, at import."""

import warnings

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, APIGatewayRestResolver
from aws_lambda_powertools.logging import correlation_paths

from .api import build_resolver
from .segmenter import Segmenter
from .settings import Settings
from .storage import Storage

# Refused requests and CORS preflights have no metrics to publish; that is expected, not worth a warning.
warnings.filterwarnings("ignore", "No application metrics to publish")

logger = Logger()
metrics = Metrics()
settings = Settings.from_env()
segmenter = Segmenter(settings.model_path, threads=settings.threads)
storage = Storage()

_collaborators = dict(segmenter=segmenter, settings=settings, storage=storage, logger=logger, metrics=metrics)
rest_api = build_resolver(APIGatewayRestResolver, **_collaborators)
http_api = build_resolver(APIGatewayHttpResolver, **_collaborators)


# Both payload versions keep the request id at requestContext.requestId.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics(capture_cold_start_metric=True)
def api_handler(event: dict, context) -> dict:
    """API Gateway: REST API (payload v1) and HTTP API (payload v2) events alike."""
    resolver = http_api if event.get("version") == "2.0" else rest_api
    return resolver.resolve(event, context)
