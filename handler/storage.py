"""S3 reads, writes and presigned links (boto3), and where results are kept.

boto3 costs ~0.7 s to import, so the client is created on first use: API requests that
never touch S3 do not pay for it. ``AWS_ENDPOINT_URL`` (honoured by boto3) points it at a
local S3 server in tests.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from urllib.parse import quote

from .errors import BadRequest, ObjectChanged, ObjectNotFound, TooLarge, cut_short
from .options import EXTENSIONS, Options

CUTOUTS_PREFIX = "cutouts/"  # under the output prefix: results of GET /cutouts/{key}
SOURCE_ETAG = "source-etag"  # user metadata on a result: the ETag of the object it came from
RESULT_VERSION = "result-version"  # and the version of the code and model that made it
# What a stored result must share with the one a request would make, to stand for it: another
# source version, other options (a source named like another's result key) or other code, and
# it is made again.
_RESULT_IDENTITY = (SOURCE_ETAG, "options", RESULT_VERSION)
# User metadata travels in HTTP headers: printable ASCII stays as it is, anything else is %-escaped.
_METADATA_SAFE = "".join(chr(code) for code in range(32, 127) if chr(code) != "%")
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
MAX_KEY_BYTES = 1024  # S3's longest object key, in bytes of UTF-8
MAX_METADATA_BYTES = 2048  # S3's limit on user metadata: names and values, in UTF-8


@dataclass(frozen=True, order=True)
class ObjectRef:
    bucket: str
    key: str


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    etag: str
    metadata: dict
    last_modified: datetime


def _result_options(options: Options) -> dict:
    """The options that decide a result's bytes, which its key and its metadata record: all but
    ``store``, which says only how the API answers."""
    return {name: value for name, value in options.to_dict().items() if name != "store"}


def result_key(prefix: str, source: str, options: Options, *, source_etag: str | None = None) -> str:
    """The deterministic key of a result: same source and options, same key; another source, another key.

    ``prefix`` + the source path, + a short digest of the options when they differ from the
    defaults, + the output format's extension. The source's own extension stays in it:
    ``cat.jpg`` and ``cat.png`` are two photos (a phone's HEIC and its JPEG copy share a name).

    ``source_etag`` goes into the digest where a link to the result is handed out while the
    source can be replaced under its key (cut-out URLs, S3 references): each version of the
    photo then has its own key, so an older version's result, finished last, never lands
    where a link to the newer one's points.

    :raises BadRequest: the key would be longer than the 1,024 bytes S3 allows.
    """
    decided, defaults = _result_options(options), _result_options(Options())
    if source_etag is not None:
        decided[SOURCE_ETAG] = source_etag
    suffix = ""
    if decided != defaults:
        suffix = "." + hashlib.sha256(json.dumps(decided, sort_keys=True).encode()).hexdigest()[:12]
    key = f"{prefix}{source}{suffix}{EXTENSIONS[options.format]}"
    if len(key.encode()) > MAX_KEY_BYTES:
        raise BadRequest(f"the result's key would be longer than S3's {MAX_KEY_BYTES:,} bytes: shorten the source's key")
    return key


def result_location(
    source: ObjectRef, options: Options, *, output_bucket: str, output_prefix: str, source_etag: str | None = None
) -> ObjectRef:
    """Where the result of an S3 object goes: the output bucket (or the source's own), under the output prefix."""
    key = result_key(output_prefix, source.key, options, source_etag=source_etag)
    return ObjectRef(output_bucket or source.bucket, key)


def result_metadata(source: dict[str, str], options: Options, *, model: str, version: str) -> dict[str, str]:
    """User metadata for a result: where it came from, the model, the options and the version
    of what made it (``pipeline.result_version``), header-safe.

    S3 refuses more than 2 KB of it, which a long non-ASCII key reaches once %-escaped: then
    the source's key is left out (the result's own key holds it).
    """
    options_json = json.dumps(_result_options(options), separators=(",", ":"))
    values = {**source, "model": model, RESULT_VERSION: version, "options": options_json}
    metadata = {name: quote(value, safe=_METADATA_SAFE) for name, value in values.items()}
    if sum(len(name) + len(value) for name, value in metadata.items()) > MAX_METADATA_BYTES:
        metadata = {name: value for name, value in metadata.items() if name not in ("source", "source-key")}
    return metadata


def object_result_metadata(source: ObjectRef, etag: str, options: Options, *, model: str, version: str) -> dict[str, str]:
    """User metadata for the result of an S3 object: the object, the ETag it had, the model, the options and the version."""
    made_from = {SOURCE_ETAG: etag, "source-bucket": source.bucket, "source-key": source.key}
    return result_metadata(made_from, options, model=model, version=version)


def content_source(data: bytes) -> str:
    """A source path for bytes that came in a request body: their digest."""
    return "api/" + hashlib.sha256(data).hexdigest()[:32]


def _where(bucket: str, key: str) -> str:
    """An object as an error message names it: its s3:// URL, a long key cut short."""
    return cut_short(f"s3://{bucket}/{key}")


def _error_code(error) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _is_not_found(error) -> bool:
    return _error_code(error) in _NOT_FOUND


class Storage:
    """One S3 client per execution environment, built lazily."""

    def __init__(self, *, client=None):
        if client is not None:
            self.__dict__["client"] = client

    @cached_property
    def client(self):
        import boto3
        from botocore.config import Config

        # SigV4 for presigned URLs (required by KMS-encrypted buckets and newer regions), on the
        # bucket's regional host: the global one redirects a new bucket outside us-east-1 for up
        # to a day, and a redirected presigned request fails its signature (and a browser's CORS
        # preflight cannot follow it). Adaptive retries back off on 503 SlowDown instead of
        # failing the image.
        config = Config(
            signature_version="s3v4", s3={"addressing_style": "virtual"}, retries={"mode": "adaptive", "max_attempts": 5}
        )
        return boto3.client("s3", config=config)

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        from botocore.exceptions import ClientError

        try:
            response = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if _is_not_found(error):
                return None
            raise
        return ObjectInfo(
            size=response["ContentLength"],
            etag=response["ETag"].strip('"'),
            metadata=response.get("Metadata", {}),
            last_modified=response["LastModified"],
        )

    def stored_result(self, location: ObjectRef, metadata: dict[str, str]) -> ObjectInfo | None:
        """The result stored at ``location``, if it was made as the one whose ``metadata`` is
        given would be: from the same source version, with the same options, by the same version."""
        info = self.head(location.bucket, location.key)
        if info is None or any(info.metadata.get(name) != metadata[name] for name in _RESULT_IDENTITY):
            return None
        return info

    def get(self, bucket: str, key: str, *, max_bytes: int, info: ObjectInfo | None = None) -> tuple[bytes, str]:
        """The object's bytes and ETag; its size is checked with HEAD before downloading.

        :param info: the object's HEAD, when the caller has just made it.
        The GET returns exactly the version HEAD saw, or raises ObjectChanged if the object
        was replaced in between (S3 answers 412 to its If-Match).
        """
        from botocore.exceptions import ClientError

        info = info or self.head(bucket, key)
        if info is None:
            raise ObjectNotFound(f"{_where(bucket, key)} does not exist")
        if info.size > max_bytes:
            raise TooLarge(f"{_where(bucket, key)} is {info.size:,} bytes; the limit is {max_bytes:,}")
        try:
            response = self.client.get_object(Bucket=bucket, Key=key, IfMatch=info.etag)
        except ClientError as error:
            if _is_not_found(error):
                raise ObjectNotFound(f"{_where(bucket, key)} does not exist") from None
            if _error_code(error) == "PreconditionFailed":
                raise ObjectChanged(f"{_where(bucket, key)} was replaced while it was being read; try again") from None
            raise
        data = response["Body"].read()
        return data, info.etag

    def put(self, bucket: str, key: str, data: bytes, *, content_type: str, metadata: dict[str, str]) -> None:
        self.client.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type, Metadata=metadata)

    def presign_get(self, bucket: str, key: str, *, expires_in: int) -> str:
        return self.client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in)

    def presign_put(self, bucket: str, key: str, *, content_type: str, size: int, expires_in: int) -> str:
        """A PUT URL that only accepts this content type and byte count (the signature covers both headers)."""
        params = {"Bucket": bucket, "Key": key, "ContentType": content_type, "ContentLength": size}
        return self.client.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_in)
