"""Property-based tests (hypothesis) of cut-out URLs: whatever path, query string and signature
arrive, the parser answers a request or a typed 4xx error; a URL signed for a key and options is
accepted exactly as signed, and any change to its key or a parameter is refused."""

import time

from hypothesis import given
from hypothesis import strategies as st
from integration.conftest import Api

from handler.errors import BadSignature, ServiceError
from handler.options import Options
from handler.request import CUTOUT_OPTIONS, CutoutRequest, parse_cutout_request
from handler.signing import SIGNATURE, cutout_path, sign

SECRET = "fuzz-secret"
MAX_MESSAGE = 400
# Any Unicode an S3 key may hold (UTF-8, so no lone surrogates), "/" and "%" included.
keys = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40)
raw_paths = st.text(st.sampled_from("abc/%2520Fé+ \n?#&=.") | st.characters(exclude_categories=("Cs",)), max_size=40)
names = st.sampled_from([*CUTOUT_OPTIONS, "expires", "signature", "store", "Format"]) | st.text(max_size=10)
values = st.sampled_from(["png", "webp", "auto", "jpeg", "true", "0", "#ffffff", "64", "", "1e3", "9" * 30]) | st.text(
    max_size=20
)
# Valid options of a signed URL (no commas: an HTTP API joins repeated values with them).
valid_options = st.fixed_dictionaries(
    {},
    optional={
        "format": st.sampled_from(["png", "webp", "auto"]),
        "crop": st.sampled_from(["1", "true", "no"]),
        "max_size": st.integers(1, 5000).map(str),
        "refine": st.sampled_from(["on", "off"]),
        "hard": st.sampled_from(["yes", "false"]),
    },
)
versions = st.sampled_from(["v1", "v2"])


def parse(version: str, path: str, query: dict, *, secret: str | None = SECRET) -> CutoutRequest:
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent, APIGatewayProxyEventV2

    event = Api(version, handler=None).event(method="GET", path=path, query=query)
    proxy_event = APIGatewayProxyEventV2(event) if version == "v2" else APIGatewayProxyEvent(event)
    return parse_cutout_request(proxy_event, secret=secret, now=time.time())


def path_of(version: str, key: str) -> str:
    """The path API Gateway hands over: percent-encoded by a REST API, decoded by an HTTP API."""
    return cutout_path(key) if version == "v1" else "/cutouts/" + key


@given(versions, raw_paths, st.dictionaries(names, values | st.lists(values, min_size=1, max_size=3), max_size=5))
def test_any_path_and_query_is_a_request_or_a_typed_error(version, path, query):
    for secret in (SECRET, None):
        try:
            request = parse(version, "/cutouts/" + path, query, secret=secret)
        except ServiceError as error:
            assert 400 <= error.status < 500 and error.code in {"bad_request", "invalid_option", "bad_signature", "expired"}
            assert 0 < len(error.message) <= MAX_MESSAGE, error.message
        else:
            assert request.key and set(request.options.to_dict()) >= set(CUTOUT_OPTIONS)


@given(versions, keys, valid_options)
def test_a_signed_url_is_accepted_for_exactly_its_key_and_options(version, key, options):
    query = options | {SIGNATURE: sign(SECRET, key, options)}
    request = parse(version, path_of(version, key), query)
    assert request.key == key
    assert request.varies_by_accept == (options.get("format") == "auto")
    # AND the request carries the options as signed (format=auto is PNG for the events' Accept: */*)
    flag = {"1": True, "true": True, "yes": True, "on": True, "no": False, "false": False, "off": False}
    assert request.options == Options(
        format="png" if options.get("format", "auto") == "auto" else options["format"],
        crop=flag[options.get("crop", "no")],
        max_size=int(options["max_size"]) if "max_size" in options else None,
        refine=flag[options["refine"]] if "refine" in options else None,
        hard=flag[options.get("hard", "no")],
    )


@given(versions, keys, valid_options, st.data())
def test_any_change_to_a_signed_url_is_refused(version, key, options, data):
    query = options | {SIGNATURE: sign(SECRET, key, options)}
    changed = data.draw(st.sampled_from(["key", "option", "signature"] if options else ["key", "signature"]))
    if changed == "key":
        key = key + data.draw(st.characters(exclude_categories=("Cs",)))
    elif changed == "option":
        name = data.draw(st.sampled_from(sorted(options)))
        query[name] = query[name] + "0"
    else:
        query[SIGNATURE] = sign(SECRET + "x", key, options)
    try:
        parse(version, path_of(version, key), query)
    except BadSignature:
        return
    raise AssertionError(f"a URL with a changed {changed} was accepted")
