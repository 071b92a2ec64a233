"""An API Gateway event (REST payload v1 or HTTP API payload v2) -> a validated request.

Cheap facts first: the body's length is checked before it is base64-decoded or parsed, the
image string's length before it is decoded, the S3 bucket and key before anything touches S3.
"""

import base64
import binascii
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, fields
from urllib.parse import parse_qsl, unquote

from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent, CaseInsensitiveDict

from .errors import BadRequest, BucketNotAllowed, InvalidOption, TooLarge, UnsupportedMediaType, shown
from .multipart import form_fields
from .options import Options
from .responses import base64_length
from .settings import Settings
from .signing import EXPIRES, SIGNATURE, verify
from .storage import MAX_KEY_BYTES, ObjectRef

JSON_MEDIA_TYPE = "application/json"
FORM_MEDIA_TYPE = "multipart/form-data"
URLENCODED_FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"  # an HTML form without enctype
# Room for the options and the JSON punctuation around the base64 image in a JSON body, or
# for the part headers and option fields around the image in a form.
JSON_OVERHEAD = 64 * 1024
_DATA_URL = re.compile(r"data:[\w.+/-]*(;[\w=.+-]+)*;base64,", re.ASCII)
_SOURCE_KEYS = ("image", "s3")
# What clients do to base64 that loses nothing: wrap lines (MIME, `base64`), use the URL-safe alphabet.
_BASE64_LENIENCY = str.maketrans("-_", "+/", " \t\r\n")


@dataclass(frozen=True)
class RemoveRequest:
    source: bytes | ObjectRef
    options: Options
    wants_json: bool


def header(event: BaseProxyEvent, name: str) -> str:
    """A request header by name in any case, or "" (REST v1 may carry it only in multiValueHeaders)."""
    value = event.headers.get(name)
    if value is None:
        values = CaseInsensitiveDict(event.get("multiValueHeaders") or {}).get(name)
        value = ", ".join(values) if values else None
    return value or ""


def _media_types(value: str) -> list[str]:
    """The media types of a Content-Type header, lower case, without parameters."""
    return [part.split(";")[0].strip().lower() for part in value.split(",")]


# An Accept header's weight of zero, "q=0" to "q=0.000": the client refuses that type.
_REFUSED = re.compile(r"\s*q=0(\.0{0,3})?\s*", re.IGNORECASE)


def _accepted(accept: str) -> list[str]:
    """The media types an Accept header names, lower case, but those it refuses with q=0.

    No fuller negotiation: any other weight counts as accepting the type, and wildcards name none.
    """
    return [
        media_type.strip().lower()
        for media_type, *parameters in (part.split(";") for part in accept.split(","))
        if not any(_REFUSED.fullmatch(parameter) for parameter in parameters)
    ]


def _decode_base64(text: str, what: str) -> bytes:
    """Standard or URL-safe base64, line-wrapped or not, padded or not; anything else is a 400."""
    compact = text.translate(_BASE64_LENIENCY)
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{what} is not valid base64") from None


def _check_size(size: int, limit: int, what: str) -> None:
    if size > limit:
        size_text = f"{size:,}" if size < 10**18 else shown(size)  # a client's number can run to thousands of digits
        raise TooLarge(f"{what} is {size_text} bytes; the limit is {limit:,}")


def _check_base64_size(text: str, limit: int, what: str) -> None:
    """Refuse base64 that would decode to more than ``limit`` bytes, without decoding it."""
    if len(text) > base64_length(limit):
        raise TooLarge(
            f"{what} is about {len(text) * 3 // 4:,} bytes ({len(text):,} characters of base64); the limit is {limit:,}"
        )


def body_bytes(event: BaseProxyEvent, *, limit: int) -> bytes:
    """The request body as bytes, at most ``limit`` of them, checked before decoding."""
    body = event.body or ""
    if not event.is_base64_encoded:
        data = body.encode()
        _check_size(len(data), limit, "the body")
        return data
    _check_base64_size(body, limit, "the body")
    data = _decode_base64(body, "the body")
    _check_size(len(data), limit, "the body")
    return data


def query_options(event: BaseProxyEvent) -> dict[str, str]:
    """Options from the query string, each given once, the same for v1 (multi-value) and v2 events.

    HTTP API (v2) events join a repeated parameter's values with commas, which one value may hold
    too (background=255,255,255): the raw query string tells how often each name was given.
    """
    if event.get("version") == "2.0":
        times = Counter(name for name, _ in parse_qsl(event.get("rawQueryString") or "", keep_blank_values=True))
        given = {name: (value, times[name]) for name, value in event.query_string_parameters.items()}
    else:
        given = {name: (values[0], len(values)) for name, values in event.resolved_query_string_parameters.items()}
    for name, (_, count) in given.items():
        if count > 1:
            raise InvalidOption(f"option {shown(name)} is given {count} times in the query string; give it once")
    return {name: value for name, (value, _) in given.items()}


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object whose keys are each given once: a repeated option is ambiguous, not last-wins."""
    seen = set()
    for key, _ in pairs:
        if key in seen:
            raise BadRequest(f"the JSON body gives {shown(key)} more than once; give it once")
        seen.add(key)
    return dict(pairs)


def _json_object(data: bytes) -> dict:
    try:
        document = json.loads(data, object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadRequest(f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise BadRequest("the JSON body is nested too deeply") from None
    except ValueError:  # valid JSON, but an integer longer than Python converts (sys.get_int_max_str_digits)
        raise BadRequest(f"the JSON body has a number of more than {sys.get_int_max_str_digits():,} digits") from None
    if not isinstance(document, dict):
        raise BadRequest(f"the JSON body must be an object with image or s3, not {type(document).__name__}")
    return document


def _image_bytes(text, *, limit: int) -> bytes:
    """Decode a JSON body's base64 image or a form field's data: URL (a data: prefix is accepted in both), size checked first."""
    if not isinstance(text, str):
        raise BadRequest(f"image must be a base64 string, not {type(text).__name__}")
    if prefix := _DATA_URL.match(text):
        text = text[prefix.end() :]
    _check_base64_size(text, limit, "the image")
    data = _decode_base64(text, "image")
    _check_size(len(data), limit, "the image")
    return data


def _check_s3_key(key: str, what: str) -> None:
    """Refuse, before S3 is asked, a key S3 cannot hold: botocore fails to send one that is not UTF-8,
    and S3 answers one over 1,024 bytes with an error of its own, not a 404."""
    try:
        size = len(key.encode())
    except UnicodeEncodeError:  # JSON's \ud800 escapes can spell a lone surrogate, which UTF-8 cannot
        raise BadRequest(f"{what} {shown(key)} is not valid Unicode: it has a lone surrogate") from None
    if size > MAX_KEY_BYTES:
        raise BadRequest(f"{what} is {size:,} bytes of UTF-8; S3 keys are at most {MAX_KEY_BYTES:,}: {shown(key)}")


def _s3_reference(value, *, allowed: tuple[str, ...]) -> ObjectRef:
    if not isinstance(value, dict) or not all(isinstance(value.get(name), str) and value[name] for name in ("bucket", "key")):
        raise BadRequest(f's3 must be an object with "bucket" and "key" strings, not {shown(value)}')
    unknown = sorted(set(value) - {"bucket", "key"})
    if unknown:
        raise BadRequest(f"s3 has unknown field {shown(unknown[0])}; it takes bucket and key")
    _check_s3_key(value["key"], "the s3 key")
    if value["bucket"] not in allowed:
        raise BucketNotAllowed(f"bucket {shown(value['bucket'])} is not one this API may read (INPUT_BUCKETS)")
    return ObjectRef(value["bucket"], value["key"])


def _merge(query: dict[str, str], body: dict, body_kind: str) -> dict:
    both = sorted(set(query) & set(body))
    if both:
        raise InvalidOption(f"option {shown(both[0])} is given both in the query string and in the {body_kind}; give it once")
    return {**query, **body}


def _form_options(form: dict[str, bytes]) -> dict[str, str]:
    """The form's fields other than the image, as option values (text, like a query string's).

    An empty field is an option left unset: an HTML form sends its empty inputs too."""
    options = {}
    for name, value in form.items():
        try:
            text = value.decode()
        except UnicodeDecodeError:
            raise BadRequest(f"the form field {shown(name)} is not UTF-8 text") from None
        if text:
            options[name] = text
    return options


def _fields_body(event: BaseProxyEvent, settings: Settings) -> bytes:
    """A JSON or form body: room for the largest image as base64 and the fields around it."""
    return body_bytes(event, limit=base64_length(settings.max_input_bytes) + JSON_OVERHEAD)


def _from_form(event: BaseProxyEvent, query: dict[str, str], settings: Settings) -> tuple[bytes, Options]:
    """The photo and options of a form: the "image" field holds the bytes (or a data: URL, as a
    canvas's toDataURL() gives them), the other fields options."""
    # As much body as a JSON one: the image field may hold a data: URL, base64 like JSON's image.
    form = form_fields(_fields_body(event, settings), header(event, "Content-Type"))
    source = form.pop("image", None)
    if source is None:
        raise BadRequest('the form must have an "image" field holding the photo\'s bytes')
    if source.startswith(b"data:"):  # no image format starts so
        source = _image_bytes(source.decode("latin-1"), limit=settings.max_input_bytes)
    _check_size(len(source), settings.max_input_bytes, "the image")
    return source, Options.parse(_merge(query, _form_options(form), "form"))


def _from_json(event: BaseProxyEvent, query: dict[str, str], settings: Settings) -> tuple[bytes | ObjectRef, Options]:
    """The photo (base64) or S3 reference, and the options, of a JSON body."""
    document = _json_object(_fields_body(event, settings))
    given = [key for key in _SOURCE_KEYS if key in document]
    if len(given) != 1:
        raise BadRequest('the JSON body must have exactly one of "image" (base64) or "s3" ({"bucket", "key"})')
    options = Options.parse(_merge(query, {k: v for k, v in document.items() if k not in _SOURCE_KEYS}, "JSON body"))
    if given == ["image"]:
        return _image_bytes(document["image"], limit=settings.max_input_bytes), options
    return _s3_reference(document["s3"], allowed=settings.input_buckets), options


def parse_remove_request(event: BaseProxyEvent, settings: Settings) -> RemoveRequest:
    """Read a POST /remove event: a raw image body, a form with an image field, a JSON base64 image,
    or a JSON S3 reference."""
    query = query_options(event)
    wants_json = JSON_MEDIA_TYPE in _accepted(header(event, "Accept"))
    media_types = _media_types(header(event, "Content-Type"))
    if FORM_MEDIA_TYPE in media_types:
        source, options = _from_form(event, query, settings)
    elif JSON_MEDIA_TYPE in media_types:
        source, options = _from_json(event, query, settings)
    else:
        source, options = body_bytes(event, limit=settings.max_input_bytes), Options.parse(query)
        # curl --data-binary sends a photo as application/x-www-form-urlencoded unless told otherwise,
        # so only a body that really is such a form (text, from the first byte), with an image field, is one.
        urlencoded = URLENCODED_FORM_MEDIA_TYPE in media_types and source.isascii()
        if urlencoded and "image" in dict(parse_qsl(source.decode(), keep_blank_values=True)):
            raise UnsupportedMediaType(
                'an HTML form sends a file\'s bytes only with enctype="multipart/form-data"; '
                "this application/x-www-form-urlencoded form holds at most its name"
            )
    if options.store and not settings.output_bucket:
        raise BadRequest("store needs an output bucket, and this deployment has none (OUTPUT_BUCKET is not set)")
    return RemoveRequest(source=source, options=options, wants_json=wants_json)


UPLOAD_TYPES = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/heic": ".heic",
    "image/heif": ".heif",
    "image/gif": ".gif",
    "image/bmp": ".bmp",
    "image/tiff": ".tiff",
}


@dataclass(frozen=True)
class UploadRequest:
    content_type: str
    size: int


def parse_upload_request(event: BaseProxyEvent, settings: Settings) -> UploadRequest:
    """Read a POST /uploads event: JSON ``{"content_type": "image/jpeg", "size": <bytes>}``."""
    if not settings.upload_bucket:
        raise BadRequest("uploads are not enabled on this deployment (UPLOAD_BUCKET is not set)")
    document = _json_object(body_bytes(event, limit=JSON_OVERHEAD))
    unknown = sorted(set(document) - {"content_type", "size"})
    if unknown:
        raise BadRequest(f"unknown field {shown(unknown[0])}; /uploads takes content_type and size")
    content_type, size = document.get("content_type"), document.get("size")
    if not isinstance(content_type, str) or content_type not in UPLOAD_TYPES:  # a list or object is unhashable
        raise BadRequest(f"content_type must be one of {', '.join(UPLOAD_TYPES)}, not {shown(content_type)}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise BadRequest(f"size must be the photo's size in bytes, a whole number above 0, not {shown(size)}")
    _check_size(size, settings.max_object_bytes, "the upload")
    return UploadRequest(content_type=content_type, size=size)


CUTOUT_PREFIX = "/cutouts/"
AUTO_FORMAT = "auto"
# Every option of POST /remove but store: a cut-out URL is always stored, and served from S3.
CUTOUT_OPTIONS = tuple(f.name for f in fields(Options) if f.name != "store")


@dataclass(frozen=True)
class CutoutRequest:
    key: str
    options: Options
    varies_by_accept: bool  # format=auto: the format follows the Accept header
    if_none_match: tuple[str, ...]
    seconds_left: int | None = None  # until the signed URL expires; None: it does not


def cutout_key(event: BaseProxyEvent) -> str:
    """The source object's key from the request path, decoded once.

    REST APIs (payload v1) deliver the path as the client sent it, percent-encoded; HTTP APIs
    (payload v2) deliver ``rawPath`` already decoded.
    """
    path = event.path[event.path.index(CUTOUT_PREFIX) + len(CUTOUT_PREFIX) :]
    return path if event.get("version") == "2.0" else unquote(path, errors="strict")


def _entity_tags(value: str) -> tuple[str, ...]:
    """The entity tags of an If-None-Match header; weak ones compare by their opaque tag."""
    return tuple(tag.strip().removeprefix("W/") for tag in value.split(",") if tag.strip())


def parse_cutout_request(event: BaseProxyEvent, *, secret: str | None, now: float) -> CutoutRequest:
    """Read a GET /cutouts/{key} event: the key, its options, and what the client already holds.

    The signature is checked (when there is a ``secret``) before the options are even read, once the
    key is one S3 can hold: signing encodes it as UTF-8 too.
    """
    try:
        key = cutout_key(event)
    except UnicodeDecodeError:
        raise BadRequest("the object key in the path is not valid UTF-8 once percent-decoded") from None
    if not key:
        raise BadRequest("the path must name an object: /cutouts/{key}")
    _check_s3_key(key, "the object key in the path")
    params = query_options(event)
    seconds_left = verify(secret, key, params, now=now)
    given = {name: value for name, value in params.items() if name not in (SIGNATURE, EXPIRES)}
    options, varies_by_accept = cutout_options(given, accept=header(event, "Accept"))
    return CutoutRequest(
        key=key,
        options=options,
        varies_by_accept=varies_by_accept,
        if_none_match=_entity_tags(header(event, "If-None-Match")),
        seconds_left=seconds_left,
    )


def cutout_options(given: dict[str, str], *, accept: str) -> tuple[Options, bool]:
    """A cut-out URL's options, validated, and whether its format follows ``accept`` (format=auto).

    scripts/sign_url.py validates with this too, so it never signs a URL the route would refuse.
    """
    unknown = sorted(set(given) - set(CUTOUT_OPTIONS))
    if unknown:
        allowed = ", ".join(CUTOUT_OPTIONS + (EXPIRES, SIGNATURE))
        raise InvalidOption(f"unknown option {shown(unknown[0])}; cut-out URLs take {allowed}")
    options = dict(given)
    varies_by_accept = options.get("format", "").strip().lower() == AUTO_FORMAT
    if varies_by_accept:
        options["format"] = "webp" if "image/webp" in _accepted(accept) else "png"
    return Options.parse(options), varies_by_accept
