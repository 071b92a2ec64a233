"""The real api_handler driven with API Gateway events built from the committed fixtures.

Every reply a test gets through ``api`` is also checked against openapi.json: its status,
its Content-Type and, for errors, its code must be documented for that operation.
"""

import base64
import copy
import io
import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import urlencode

import pytest
from aws_lambda_powertools.utilities.data_classes.common import CaseInsensitiveDict

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
EVENTS = REPO_ROOT / "tests" / "events"
EVENT_FILES = {"v1": "apigw-rest.json", "v2": "apigw-http.json"}
OPENAPI = json.loads((REPO_ROOT / "openapi.json").read_text())


def load_event(name: str) -> dict:
    """A fresh copy of a committed event from tests/events/."""
    return json.loads((EVENTS / name).read_text())


@dataclass
class LambdaContext:
    function_name: str = "bgremove-test"
    memory_limit_in_mb: int = 3008
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:bgremove-test"
    aws_request_id: str = "0b3c5e2a-1f1e-4d3a-9a77-3f0c2f1d2e4b"


@dataclass
class Reply:
    """A Lambda proxy response read the way API Gateway reads it."""

    raw: dict

    @property
    def status(self) -> int:
        return self.raw["statusCode"]

    @cached_property
    def headers(self) -> CaseInsensitiveDict:
        headers = CaseInsensitiveDict(self.raw.get("headers") or {})
        headers.update({name: ", ".join(values) for name, values in (self.raw.get("multiValueHeaders") or {}).items()})
        return headers

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    @property
    def body(self) -> bytes:
        body = self.raw.get("body") or ""
        return base64.b64decode(body) if self.raw.get("isBase64Encoded") else body.encode()

    def json(self):
        return json.loads(self.body)

    @property
    def error_code(self) -> str:
        return self.json()["error"]["code"]


def documented_path(path: str) -> str | None:
    """The openapi.json path template a request path falls under (``{key}`` spans slashes, as the route does)."""
    for template in OPENAPI["paths"]:
        if re.fullmatch(re.sub(r"\\{\w+\\}", ".+", re.escape(template)), path, re.DOTALL):
            return template
    return None


def assert_documented(method: str, path: str, reply: Reply) -> None:
    """The reply's status, Content-Type and error code are ones openapi.json lists for the operation."""
    operation = OPENAPI["paths"].get(documented_path(path), {}).get(method.lower())
    if operation is None:  # no such route: the documented 404
        assert (reply.status, reply.error_code) == (404, "not_found"), f"{method} {path} is undocumented"
        return
    documented = operation["responses"].get(str(reply.status))
    assert documented, f"status {reply.status} of {method} {path} is not in openapi.json"
    content = documented.get("content", {})
    if not content:
        assert not reply.body, f"{method} {path} {reply.status} is documented without a body"
        return
    assert reply.content_type in content, f"{reply.content_type!r} is not documented for {method} {path} {reply.status}"
    if reply.status >= 400:
        codes = {example["value"]["error"]["code"] for example in content["application/json"]["examples"].values()}
        assert reply.error_code in codes, f"code {reply.error_code!r} is not documented for {reply.status}: {sorted(codes)}"


class Api:
    """Builds events of one payload version from its committed fixture and calls the handler."""

    def __init__(self, version: str, handler):
        self.version = version
        self.handler = handler

    def fixture_event(self) -> dict:
        """The committed event of this payload version, unchanged."""
        return load_event(EVENT_FILES[self.version])

    def event(
        self,
        body: bytes | str | None = None,
        *,
        content_type: str | None = None,
        query: dict | None = None,
        headers: dict | None = None,
        method: str = "POST",
        path: str = "/remove",
    ) -> dict:
        """The fixture event with a new body (bytes are base64-encoded, str sent as text), query and headers.

        ``query`` values may be lists (a repeated parameter); a header set to None is removed.
        """
        event = self.fixture_event()
        if body is not None:
            encoded = isinstance(body, bytes)
            event["body"] = base64.b64encode(body).decode() if encoded else body
            event["isBase64Encoded"] = encoded
        changes = dict(headers or {})
        if content_type is not None:
            changes["Content-Type"] = content_type
        query = {name: value if isinstance(value, list) else [value] for name, value in (query or {}).items()}
        return (
            self._v1(event, changes, query, method, path)
            if self.version == "v1"
            else self._v2(event, changes, query, method, path)
        )

    @staticmethod
    def _v1(event: dict, headers: dict, query: dict, method: str, path: str) -> dict:
        for name, value in headers.items():
            for field in ("headers", "multiValueHeaders"):
                event[field] = {key: old for key, old in event[field].items() if key.lower() != name.lower()}
            if value is not None:
                event["headers"][name] = value
                event["multiValueHeaders"][name] = [value]
        if query:
            event["queryStringParameters"] = {name: values[-1] for name, values in query.items()}
            event["multiValueQueryStringParameters"] = query
        event["httpMethod"] = event["requestContext"]["httpMethod"] = method
        event["path"] = event["resource"] = path
        return event

    @staticmethod
    def _v2(event: dict, headers: dict, query: dict, method: str, path: str) -> dict:
        for name, value in headers.items():
            event["headers"].pop(name.lower(), None)
            if value is not None:
                event["headers"][name.lower()] = value
        if query:
            event["rawQueryString"] = urlencode([(name, value) for name, values in query.items() for value in values])
            event["queryStringParameters"] = {name: ",".join(values) for name, values in query.items()}
        event["requestContext"]["http"]["method"] = method
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
        return event

    def call(self, event: dict) -> Reply:
        reply = Reply(self.handler(copy.deepcopy(event), LambdaContext()))
        method = event["httpMethod"] if self.version == "v1" else event["requestContext"]["http"]["method"]
        path = event["path"] if self.version == "v1" else event["rawPath"]
        assert_documented(method, path, reply)
        return reply

    def post(self, body: bytes | str | None = None, **kwargs) -> Reply:
        return self.call(self.event(body, **kwargs))

    def post_json(self, document, **kwargs) -> Reply:
        return self.post(json.dumps(document), content_type="application/json", **kwargs)


@pytest.fixture(autouse=True)
def powertools_env(monkeypatch):
    """What template.yaml's Globals set; Powertools state is reset so tests do not leak metrics."""
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "bgremove")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "BackgroundRemoval")
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics.provider import cold_start

    metrics = Metrics()
    metrics.clear_metrics()
    metrics.clear_default_dimensions()
    cold_start.is_cold_start = True


@pytest.fixture
def app(powertools_env):
    """handler.app, imported once the Powertools environment is set."""
    import handler.app

    return handler.app


@pytest.fixture(params=sorted(EVENT_FILES))
def api(request, app) -> Api:
    """The handler behind a REST API (v1) and, in a second run of the test, an HTTP API (v2)."""
    return Api(request.param, app.api_handler)


@pytest.fixture
def log_lines(app):
    """``log_lines()``: the JSON lines handler.app's Logger wrote during the test.

    The Logger binds its stream at import, before any capture fixture exists, so the test
    points it at a buffer of its own.
    """
    buffer = io.StringIO()
    previous = app.logger.registered_handler.setStream(buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    app.logger.registered_handler.setStream(previous)


@pytest.fixture
def rest_api(app) -> Api:
    """The handler behind a REST API (v1) only, for v1-specific event shapes."""
    return Api("v1", app.api_handler)


@pytest.fixture
def api_with(api, app):
    """``api_with(settings=...)``: the same API built by build_api with some collaborators replaced,
    its requests logged with their request id as api_handler logs them."""
    from aws_lambda_powertools.logging import correlation_paths

    from handler.api import build_api

    def build(**replacements) -> Api:
        collaborators = dict(
            segmenter=app.segmenter, settings=app.settings, storage=app.storage, logger=app.logger, metrics=app.metrics
        )
        resolvers = build_api(**(collaborators | replacements))
        with_request_id = app.logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
        return Api(api.version, with_request_id(resolvers.resolve))

    return build


@pytest.fixture(scope="session")
def photo() -> bytes:
    """The small JPEG that the committed API events carry as their body."""
    return base64.b64decode(load_event(EVENT_FILES["v1"])["body"])
