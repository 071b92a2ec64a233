"""Property-based tests (hypothesis) of the request parser and the options: whatever arrives, the
answer is a valid request or one of the project's typed errors with a short message."""

import base64
import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from integration.conftest import Api

from handler.errors import SHOWN_CHARS, BadRequest, ServiceError
from handler.options import MAX_SIZE_LIMIT, Options
from handler.request import RemoveRequest, parse_remove_request
from handler.settings import Settings

SETTINGS = Settings(max_input_bytes=4096, input_buckets=("allowed-bucket",), output_bucket="out-bucket")
OPTION_NAMES = ["format", "mask", "background", "crop", "max_size", "store", "refine", "hard"]
# The longest message a typed error may carry: rules are short, echoed values are cut to SHOWN_CHARS.
MAX_MESSAGE = 400

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
option_names = st.sampled_from(OPTION_NAMES) | st.text(max_size=12)
option_text = st.sampled_from(["png", "webp", "jpeg", "jpg", "true", "no", "#00ff00", "ffffff", "64", "0", ""]) | st.text(
    max_size=30
)


def parse_event(event: dict, settings: Settings = SETTINGS):
    """parse_remove_request on an event of either payload version, through Powertools' data classes."""
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent, APIGatewayProxyEventV2

    proxy_event = APIGatewayProxyEventV2(event) if event.get("version") == "2.0" else APIGatewayProxyEvent(event)
    return parse_remove_request(proxy_event, settings)


def assert_typed(error: ServiceError) -> None:
    assert 400 <= error.status < 500
    assert 0 < len(error.message) <= MAX_MESSAGE, error.message


def request_or_typed_error(event: dict) -> RemoveRequest | None:
    """The event's request, or None once its error is checked to be one of the project's typed 4xx."""
    try:
        return parse_event(event)
    except ServiceError as error:
        assert_typed(error)
        return None


@given(st.dictionaries(option_names, json_values | option_text, max_size=5))
def test_options_parse_to_options_or_an_invalid_option(values):
    try:
        options = Options.parse(values)
    except ServiceError as error:
        assert error.code == "invalid_option"
        assert_typed(error)
        return
    # A parsed value survives its own round trip: to_dict() is what results and metadata record.
    assert Options.parse(options.to_dict()) == options


@given(st.integers())
def test_max_size_is_accepted_exactly_within_its_range(size):
    for given_value in (size, str(size)):
        try:
            assert Options.parse({"max_size": given_value}).max_size == size
            assert 1 <= size <= MAX_SIZE_LIMIT
        except ServiceError:
            assert not 1 <= size <= MAX_SIZE_LIMIT


@given(st.tuples(*[st.integers(0, 255)] * 3), st.booleans(), st.booleans())
def test_every_rrggbb_colour_is_read_back(rgb, upper, hash_sign):
    text = ("#" if hash_sign else "") + "".join(f"{value:02x}" for value in rgb)
    assert Options.parse({"background": text.upper() if upper else text}).background == rgb


@given(st.text(alphabet=string.printable, max_size=200))
def test_error_messages_never_echo_more_than_a_short_quote(value):
    try:
        Options.parse({"background": value, "format": value})
    except ServiceError as error:
        assert len(error.message) <= MAX_MESSAGE
        assert repr(value) in error.message or len(repr(value)) > SHOWN_CHARS


@given(
    st.binary(max_size=3000),
    st.sampled_from(["standard", "urlsafe", "wrapped", "unpadded", "data-url"]),
    st.sampled_from(["v1", "v2"]),
)
def test_base64_image_in_any_lossless_spelling_gives_back_its_bytes(data, spelling, version):
    text = base64.b64encode(data).decode()
    text = {
        "standard": text,
        "urlsafe": base64.urlsafe_b64encode(data).decode(),
        "wrapped": "\n".join(text[i : i + 76] for i in range(0, len(text), 76)),
        "unpadded": text.rstrip("="),
        "data-url": "data:image/png;base64," + text,
    }[spelling]
    event = Api(version, handler=None).event(json.dumps({"image": text}), content_type="application/json")
    assert parse_event(event).source == data


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["v1", "v2"]),
    st.binary(max_size=6000) | st.text(max_size=300),
    st.sampled_from(["application/json", "application/json; charset=utf-8", "image/jpeg", "text/plain", "", "APPLICATION/JSON"]),
    st.dictionaries(option_names, st.lists(option_text, min_size=1, max_size=2), max_size=3),
    st.sampled_from(["", "application/json", "image/*"]),
)
def test_any_event_is_a_request_or_a_typed_error(version, body, content_type, query, accept):
    event = Api(version, handler=None).event(body, content_type=content_type, query=query, headers={"Accept": accept})
    request = request_or_typed_error(event)
    assert request is None or request.wants_json == ("application/json" in accept)


json_documents = st.dictionaries(
    st.sampled_from(["image", "s3", *OPTION_NAMES]) | st.text(max_size=6),
    json_values
    | st.binary(max_size=200).map(lambda data: base64.b64encode(data).decode())
    | st.fixed_dictionaries(
        {"bucket": st.sampled_from(["allowed-bucket", "other-bucket"]) | st.text(max_size=10), "key": st.text(max_size=20)}
    ),
    max_size=4,
)


@given(json_documents, st.sampled_from(["v1", "v2"]))
def test_any_json_body_is_a_request_or_a_typed_error(document, version):
    request = request_or_typed_error(Api(version, handler=None).event(json.dumps(document), content_type="application/json"))
    # Only an allowed bucket is ever named in an accepted reference.
    if request is not None and not isinstance(request.source, bytes):
        assert request.source.bucket in SETTINGS.input_buckets


@given(st.integers(1, 60), st.sampled_from(["v1", "v2"]))
def test_nesting_of_any_depth_is_a_bad_request(depth_thousands, version):
    body = '{"image": "", "format": ' + "[" * (depth_thousands * 1000) + "]" * (depth_thousands * 1000) + "}"
    event = Api(version, handler=None).event(body, content_type="application/json")
    with pytest.raises(BadRequest) as raised:
        parse_event(event, Settings())
    assert_typed(raised.value)


form_fields = st.dictionaries(
    st.sampled_from(["image", *OPTION_NAMES]) | st.text(max_size=8),
    st.binary(max_size=300) | option_text,
    max_size=4,
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(form_fields, st.sampled_from(["v1", "v2"]), st.integers(0, 2000), st.text(alphabet=string.printable, max_size=20))
def test_any_form_body_cut_anywhere_is_a_request_or_a_typed_error(fields, version, cut, boundary):
    from urllib3 import encode_multipart_formdata

    whole, content_type = encode_multipart_formdata(fields)
    other_boundary = f"multipart/form-data; boundary={boundary}"
    for body, body_type in ((whole, content_type), (whole[:cut], content_type), (whole, other_boundary)):
        request = request_or_typed_error(Api(version, handler=None).event(body, content_type=body_type))
        assert request is None or isinstance(request.source, bytes)


@given(st.binary(max_size=3000).filter(lambda data: not data.startswith(b"data:")), st.sampled_from(["v1", "v2"]))
def test_a_forms_image_field_gives_back_its_bytes(data, version):
    # Bytes that start "data:" are a data: URL (no image format starts so): the property below
    from urllib3 import encode_multipart_formdata

    body, content_type = encode_multipart_formdata({"image": ("photo", data, "application/octet-stream")})
    event = Api(version, handler=None).event(body, content_type=content_type)
    assert parse_event(event).source == data


@given(st.binary(max_size=3000), st.sampled_from(["v1", "v2"]))
def test_a_forms_data_url_gives_back_the_bytes_it_encodes(data, version):
    from urllib3 import encode_multipart_formdata

    data_url = "data:application/octet-stream;base64," + base64.b64encode(data).decode()
    body, content_type = encode_multipart_formdata({"image": data_url})
    event = Api(version, handler=None).event(body, content_type=content_type)
    assert parse_event(event).source == data


# RFC 2231 parameters (name*=charset'language'text, continued in name*0, name*1*), as a part's
# Content-Disposition or the Content-Type's boundary may spell them: charsets Python's codecs know
# but decode only strictly, or that no codec lookup takes, and continuations with or without values.
rfc2231_parameters = st.tuples(
    st.sampled_from(["name*=", "name*0*=", "name="]),
    st.sampled_from(["utf-8", "latin-1", "idna", "punycode", "undefined", "utf\x008", "", '"', "no-such-codec"]),
    st.sampled_from(["''", "'en'", "'", ""]),
    st.sampled_from(["image", "%FF", "im%C3%A9", "", "a;b"]) | st.text(max_size=6),
    st.sampled_from(["", "; name*1", "; name*1=x", "; name*0", "; name*1*=%FF", "; filename*=idna''x"]),
).map("".join)


@given(rfc2231_parameters, st.sampled_from(["v1", "v2"]))
def test_any_part_name_or_boundary_parameter_is_a_request_or_a_typed_error(parameters, version):
    part = b"--x\r\nContent-Disposition: form-data; %s\r\n\r\n<photo>\r\n--x--"
    for body, content_type in (
        (part % parameters.encode(), "multipart/form-data; boundary=x"),
        (part % b"name=image", "multipart/form-data; " + parameters.replace("name", "boundary")),
    ):
        request = request_or_typed_error(Api(version, handler=None).event(body, content_type=content_type))
        assert request is None or request.source == b"<photo>"
