"""Errors the service raises on purpose: each carries its HTTP status and a stable code.

Entry points map them once: the API to a JSON error response; the CLI a bad option to a
usage error (exit status 2) and an image's failure to a line on stderr (exit status 1); the
queue worker to a batch item failure; S3 Batch Operations to a task's result code. ``shown``
and ``cut_short`` quote a client's value in a message.
"""

SHOWN_CHARS = 80


def shown(value) -> str:
    """A client's value as an error message names it: its repr, cut short so a message never
    echoes a megabyte back."""
    return cut_short(repr(value))


def cut_short(text: str) -> str:
    """Text from a client (a path, an S3 key) as a message quotes it: at most ``SHOWN_CHARS`` long."""
    return text if len(text) <= SHOWN_CHARS else f"{text[: SHOWN_CHARS - 15]}... ({len(text):,} characters)"


class ServiceError(Exception):
    """Base class: an expected failure with an HTTP status and a machine-readable code."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def to_body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


class BadRequest(ServiceError):
    """The request itself is malformed: bad JSON, bad base64, a missing field."""

    status = 400
    code = "bad_request"


class InvalidOption(BadRequest):
    """An option is unknown or has a value outside its rule."""

    code = "invalid_option"


class BucketNotAllowed(ServiceError):
    """The request names an S3 bucket outside INPUT_BUCKETS."""

    status = 403
    code = "bucket_not_allowed"


class ObjectNotFound(ServiceError):
    """The referenced S3 object does not exist."""

    status = 404
    code = "not_found"


class ObjectChanged(ServiceError):
    """The S3 object was replaced while it was being read (or, in the worker, cut out): a retry reads the new one."""

    status = 409
    code = "object_changed"


class TooLarge(ServiceError):
    """Too many bytes, too many pixels, or a result too large to return inline."""

    status = 413
    code = "too_large"


class UnsupportedMediaType(ServiceError):
    """The bytes are not an image in a format the service reads."""

    status = 415
    code = "unsupported_media_type"


class UndecodableImage(ServiceError):
    """The bytes start like a supported image but cannot be decoded (truncated, corrupt)."""

    status = 422
    code = "undecodable_image"


class BadSignature(ServiceError):
    """A cut-out URL's signature is missing or does not match its key and options."""

    status = 403
    code = "bad_signature"


class Expired(ServiceError):
    """A signed cut-out URL is past its ``expires`` time."""

    status = 403
    code = "expired"
