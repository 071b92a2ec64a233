"""An S3-compatible server in this process, set up like a deployment's buckets: `serve.py --local-s3`.

moto's server listens on 127.0.0.1 (a browser on this machine can fetch its presigned links),
the images of a folder become the source bucket's objects, and the environment names the
buckets, the endpoint and a signing secret, so the handler, imported afterwards, finds them
exactly as a deployed Lambda finds its own. Nothing here reaches AWS.
"""

import json
import logging
import mimetypes
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

from sign_url import InvalidOption, signed_url

SOURCE_BUCKET = "bgremove-source"
OUTPUT_BUCKET = "bgremove-output"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".gif", ".bmp", ".tif", ".tiff"}
# Variables that would send boto3 elsewhere than the local server, or sign as a real account.
_AWS_ELSEWHERE = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SECRETS_MANAGER")
# The printed examples: a few images as they are, and one as a shop would show a product.
PLAIN_EXAMPLES = 3
PRODUCT_OPTIONS = {"background": "#ffffff", "format": "jpeg", "crop": "true", "max_size": "400"}


@dataclass
class LocalS3:
    endpoint: str
    secret: str
    keys: list[str]  # the source objects, one per image
    images: Path
    server: object  # the ThreadedMotoServer

    def examples(self, options: dict[str, str], *, base: str = "") -> list[dict[str, str]]:
        """A signed cut-out URL of every source object with ``options``: ``[{"key", "url"}]``.

        :raises InvalidOption: options the route would refuse.
        """
        return [{"key": key, "url": signed_url(base, self.secret, key, options)} for key in self.keys]

    def examples_response(self, query: str) -> tuple[int, bytes]:
        """``GET /local/cutout-examples?options``: status and JSON body for the demo page.

        The page holds no secret; serve.py signs for it, as a site's backend would.
        """
        try:
            return 200, json.dumps(self.examples(dict(parse_qsl(query, keep_blank_values=True)))).encode()
        except InvalidOption as error:
            return 400, json.dumps(error.to_body()).encode()

    def describe(self, base: str, *, secret_given: bool) -> str:
        """What the console shows: where things are, and a few signed URLs to open."""
        shown = self.images.relative_to(Path.cwd()) if self.images.is_relative_to(Path.cwd()) else self.images
        lines = [
            f"local S3 at {self.endpoint}: {len(self.keys)} images from {shown}/ in bucket {SOURCE_BUCKET}, "
            f"results in {OUTPUT_BUCKET}",
            "signed cut-out URLs (GET or <img src>; the first request computes, later ones are served from the stored result):",
        ]
        lines += [f"  {example['url']}" for example in self.examples({}, base=base)[:PLAIN_EXAMPLES]]
        lines += [f"  {example['url']}" for example in self.examples(PRODUCT_OPTIONS, base=base)[:1]]
        # A secret the environment gave is not echoed, nor replaced: sign_url.py reads it from there too.
        assignment = "" if secret_given else f"URL_SIGNING_SECRET={self.secret} "
        lines.append(f"sign others: {assignment}python scripts/sign_url.py KEY --base {base} [--crop true ...]")
        return "\n".join(lines)

    def stop(self) -> None:
        self.server.stop()


def _upload(s3, images: Path) -> list[str]:
    """Every image under ``images`` as a source object keyed by its relative path."""
    keys = []
    for path in sorted(images.rglob("*")):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            key = path.relative_to(images).as_posix()
            try:
                key.encode()
            except UnicodeEncodeError:  # a name in another encoding (an old archive's); S3 keys are UTF-8
                name = os.fsencode(key).decode(errors="backslashreplace")
                print(f"left out {name}: its name is not UTF-8, which S3 keys must be", file=sys.stderr)
                continue
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            s3.put_object(Bucket=SOURCE_BUCKET, Key=key, Body=path.read_bytes(), ContentType=content_type)
            keys.append(key)
    return keys


def start(images: Path) -> LocalS3:
    """Start the server, fill the source bucket from ``images`` and point the environment at it.

    Call it before the handler is imported: the handler reads its settings at import.
    """
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # else one line per S3 request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for name in _AWS_ELSEWHERE:
        os.environ.pop(name, None)
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",
        AWS_DEFAULT_REGION="us-east-1",
        SOURCE_BUCKET=SOURCE_BUCKET,
        OUTPUT_BUCKET=OUTPUT_BUCKET,
        INPUT_BUCKETS=SOURCE_BUCKET,  # POST /remove {"s3": {"bucket": "bgremove-source", "key": ...}} works too
    )
    # No UPLOAD_BUCKET: nothing here runs the S3 pipeline, so a POST /uploads result would never appear.
    os.environ.setdefault("URL_SIGNING_SECRET", secrets.token_hex(32))
    s3 = boto3.client("s3")
    # Stored and oversize results are fetched by the demo page from this other origin.
    cors = {"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET", "HEAD"], "AllowedHeaders": ["*"]}]}
    for bucket in (SOURCE_BUCKET, OUTPUT_BUCKET):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=cors)
    keys = _upload(s3, images)
    return LocalS3(endpoint=endpoint, secret=os.environ["URL_SIGNING_SECRET"], keys=keys, images=images, server=server)
