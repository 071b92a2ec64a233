"""GET /cutouts/{key}: the cut-out of an object in the source bucket, computed once and stored.

A request whose result is stored for the source's current ETag, by this version of the code
(``pipeline.result_version``), is answered from S3 without decoding the photo; one whose client
already holds that result (If-None-Match) gets a 304 after a single HEAD of the source. Every
answer carries the headers a CDN caches by.
"""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from enum import Enum

from aws_lambda_powertools.event_handler import Response

from .errors import ObjectChanged, ObjectNotFound, shown
from .imaging import MEDIA_TYPES
from .parallel import StripPool
from .pipeline import Result, remove_background, result_version
from .request import CutoutRequest
from .responses import fits_in_response
from .segmenter import MODEL_NAME, Segmenter
from .settings import Settings
from .storage import (
    CUTOUTS_PREFIX,
    RESULT_VERSION,
    ObjectInfo,
    ObjectRef,
    Storage,
    object_result_metadata,
    result_location,
)


@dataclass(frozen=True)
class Cutout:
    """One source object's current version, where its result for some options is kept, and
    the metadata that result has when this version of the code makes it."""

    source: ObjectRef
    source_info: ObjectInfo
    location: ObjectRef
    metadata: dict[str, str]

    @property
    def etag(self) -> str:
        """Strong: a new source version, other options, another format or a new version of the code give another tag."""
        identity = f"{self.source_info.etag}\n{self.location.key}\n{self.metadata[RESULT_VERSION]}".encode()
        return '"' + hashlib.sha256(identity).hexdigest()[:32] + '"'


class Served(Enum):
    """How a cut-out request was answered: what the route counts."""

    MADE = "made"  # the model ran
    STORED = "stored"  # read from the output bucket
    NOT_MODIFIED = "not modified"  # a 304: the client's copy is current


@dataclass(frozen=True)
class CutoutAnswer:
    """The answer to a cut-out request, how it was come by, and the cut-out when the model made it."""

    response: Response
    how: Served
    made: Result | None = None


def _http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def locate(request: CutoutRequest, *, version: str, storage: Storage, settings: Settings) -> Cutout:
    """The source's current version and where its result for these options, made by ``version``, is kept; 404 without a source."""
    if not settings.source_bucket or not settings.output_bucket:
        raise ObjectNotFound("cut-out URLs are not enabled on this deployment (SOURCE_BUCKET and OUTPUT_BUCKET must be set)")
    source = ObjectRef(settings.source_bucket, request.key)
    info = storage.head(source.bucket, source.key)
    if info is None:
        raise ObjectNotFound(f"there is no object {shown(request.key)} in the source bucket")
    prefix = settings.output_prefix + CUTOUTS_PREFIX
    location = result_location(
        source, request.options, output_bucket=settings.output_bucket, output_prefix=prefix, source_etag=info.etag
    )
    metadata = object_result_metadata(source, info.etag, request.options, model=MODEL_NAME, version=version)
    return Cutout(source, info, location, metadata)


def _compute(
    cutout: Cutout, request: CutoutRequest, *, storage: Storage, segmenter: Segmenter, settings: Settings, strips: StripPool
) -> Result:
    """Cut the source out and store the result.

    Simultaneous first requests each compute and write the same key: one object remains.
    """
    source = cutout.source
    # The GET returns the version the HEAD saw (If-Match): the one the metadata records.
    data, _ = storage.get(source.bucket, source.key, max_bytes=settings.max_object_bytes, info=cutout.source_info)
    result = remove_background(data, request.options, segmenter=segmenter, max_pixels=settings.max_input_pixels, strips=strips)
    location = cutout.location
    storage.put(location.bucket, location.key, result.data, content_type=result.media_type, metadata=cutout.metadata)
    return result


def serve_cutout(
    request: CutoutRequest, *, head_only: bool, storage: Storage, segmenter: Segmenter, settings: Settings, strips: StripPool
) -> CutoutAnswer:
    """The answer to GET (or HEAD) /cutouts/{key}: 304, the stored or a new result, or a redirect to it."""
    cutout = locate(request, version=result_version(segmenter.model_path), storage=storage, settings=settings)
    headers = {"Cache-Control": f"public, max-age={_max_age(request, settings.cutout_max_age)}", "ETag": cutout.etag}
    if request.varies_by_accept:
        headers["Vary"] = "Accept"
    if cutout.etag in request.if_none_match or "*" in request.if_none_match:
        return CutoutAnswer(Response(status_code=304, headers=headers, body=""), Served.NOT_MODIFIED)
    media_type = MEDIA_TYPES[request.options.format]
    stored = storage.stored_result(cutout.location, cutout.metadata)
    if stored is not None and not fits_in_response(stored.size):
        return CutoutAnswer(_redirect(cutout, request, storage=storage, settings=settings), Served.STORED)
    data = _stored_bytes(cutout.location, stored, storage=storage) if stored is not None else None
    if data is not None:
        how, made, modified = Served.STORED, None, stored.last_modified
    else:
        made = _compute(cutout, request, storage=storage, segmenter=segmenter, settings=settings, strips=strips)
        how, data, modified = Served.MADE, made.data, datetime.now(UTC)
        if not fits_in_response(len(data)):
            return CutoutAnswer(_redirect(cutout, request, storage=storage, settings=settings), how, made)
    headers["Last-Modified"] = _http_date(modified)
    response = Response(status_code=200, content_type=media_type, headers=headers, body=b"" if head_only else data)
    return CutoutAnswer(response, how, made)


def _stored_bytes(location: ObjectRef, stored: ObjectInfo, *, storage: Storage) -> bytes | None:
    """The stored result's bytes, or None when it went between its HEAD and this GET (the
    retention rule deleted it, or a simultaneous request rewrote it): then it is made again."""
    try:
        data, _ = storage.get(location.bucket, location.key, max_bytes=stored.size, info=stored)
    except (ObjectNotFound, ObjectChanged):
        return None
    return data


def _max_age(request: CutoutRequest, longest: int) -> int:
    """Seconds a cache may keep the answer: never past the signed URL's own expiry, which a
    cache serving its copy would otherwise outlive (CloudFront answers without asking us)."""
    return longest if request.seconds_left is None else min(longest, request.seconds_left)


def _redirect(cutout: Cutout, request: CutoutRequest, *, storage: Storage, settings: Settings) -> Response:
    """302 to a presigned GET of a result too large for a Lambda response.

    Caches may keep the redirect for half the link's life, so no cached copy outlives the link.
    """
    expires_in = settings.url_expires_in
    url = storage.presign_get(cutout.location.bucket, cutout.location.key, expires_in=expires_in)
    max_age = _max_age(request, min(settings.cutout_max_age, expires_in // 2))
    headers = {"Location": url, "Cache-Control": f"public, max-age={max_age}"}
    if request.varies_by_accept:
        headers["Vary"] = "Accept"
    return Response(status_code=302, headers=headers, body="")
