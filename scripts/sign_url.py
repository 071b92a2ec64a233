"""Print a signed cut-out URL, GET /cutouts/{key} with options, for an object in the source bucket.

    python scripts/sign_url.py products/shoe.jpg --background '#ffffff' --format jpeg --expires-in 86400
    python scripts/sign_url.py "summer 2026/beach.jpg" --crop true --base http://127.0.0.1:3000 --secret "$SECRET"

Options take the API's names and values and are checked as the route checks them before
anything is signed. The base URL comes from --base, else the stack's CutoutBaseUrl output;
the secret from --secret, else URL_SIGNING_SECRET, else the Secrets Manager secret named by the
stack's UrlSigningSecretArn output. The stack is the one samconfig.toml names, or --stack.
"""

import argparse
import os
import sys
import time
import tomllib
from functools import cached_property
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from handler.errors import InvalidOption  # noqa: E402
from handler.request import CUTOUT_OPTIONS, cutout_options  # noqa: E402
from handler.signing import cutout_path, signed_query  # noqa: E402

OPTION_HELP = {
    "format": "png (default), webp, jpeg (with background or mask), or auto: WebP where the browser takes it",
    "mask": "true: the greyscale mask instead of the cut-out",
    "background": "#RRGGBB: composite onto this colour",
    "crop": "true: crop to the subject with a small margin",
    "max_size": "longest side of the result in pixels",
    "refine": "true or false: refine the edges at full resolution (default: for photos over 640 px)",
    "hard": "true: snap near-transparent and near-opaque edges, for crisp product cut-outs",
}
BASE_OUTPUT = "CutoutBaseUrl"
SECRET_OUTPUT = "UrlSigningSecretArn"


class Unavailable(Exception):
    """A value that had to come from AWS could not be read; the message says what to pass instead."""


def signed_url(base: str, secret: str, key: str, options: dict[str, str], *, expires: int | None = None) -> str:
    """``base`` + the signed path and query of ``key``'s cut-out with ``options``.

    ``base`` is the API's root (``http://127.0.0.1:3000``) or the stack's CutoutBaseUrl, which
    already ends in ``/cutouts/``: either way the path names ``/cutouts/`` once.

    :raises InvalidOption: an option the route would refuse, or one no signature covers (a
        newline in a value), so no such URL is ever signed.
    """
    cutout_options(options, accept="")
    root = base.rstrip("/").removesuffix(cutout_path("").rstrip("/"))
    return root + cutout_path(key) + "?" + signed_query(secret, key, options, expires=expires)


def default_stack() -> str:
    """The stack name samconfig.toml gives `sam deploy`."""
    config = tomllib.loads((REPO_ROOT / "samconfig.toml").read_text())
    return config["default"]["global"]["parameters"]["stack_name"]


class Stack:
    """A deployed stack's outputs and its URL signing secret, read from AWS on first use."""

    def __init__(self, name: str):
        self.name = name

    @cached_property
    def outputs(self) -> dict[str, str]:
        import boto3

        stacks = boto3.client("cloudformation").describe_stacks(StackName=self.name)["Stacks"]
        return {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}

    def output(self, name: str, *, instead: str) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            outputs = self.outputs
        except (BotoCoreError, ClientError) as error:
            raise Unavailable(f"could not read the outputs of stack {self.name!r} from AWS ({error}); {instead}") from None
        if name not in outputs:
            raise Unavailable(f"stack {self.name!r} has no {name} output; {instead}")
        return outputs[name]

    def signing_secret(self, *, instead: str) -> str:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        arn = self.output(SECRET_OUTPUT, instead=instead)
        try:
            return boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
        except (BotoCoreError, ClientError) as error:
            raise Unavailable(f"could not read the URL signing secret {arn} ({error}); {instead}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("key", help="the object's key in the source bucket, e.g. 'products/red shoe.jpg'")
    options = parser.add_argument_group("options (the API's names and values)")
    for name in CUTOUT_OPTIONS:
        spellings = dict.fromkeys([f"--{name}", f"--{name.replace('_', '-')}"])
        options.add_argument(*spellings, dest=name, metavar="VALUE", help=OPTION_HELP[name])
    parser.add_argument("--expires-in", type=int, metavar="SECONDS", help="the URL stops working after this many seconds")
    parser.add_argument("--base", help=f"the API or CDN base URL (default: the stack's {BASE_OUTPUT} output)")
    parser.add_argument("--secret", help="the URL signing secret (default: URL_SIGNING_SECRET, else the stack's secret)")
    parser.add_argument("--stack", help="the deployed stack to read the defaults from (default: samconfig.toml's stack_name)")
    args = parser.parse_args(argv)
    if args.expires_in is not None and args.expires_in <= 0:
        parser.error(f"--expires-in must be a number of seconds above 0, not {args.expires_in}")
    given = {name: getattr(args, name) for name in CUTOUT_OPTIONS if getattr(args, name) is not None}
    try:
        cutout_options(given, accept="")
    except InvalidOption as error:
        parser.error(error.message)
    stack = Stack(args.stack or default_stack())
    try:
        base = args.base or stack.output(BASE_OUTPUT, instead="pass --base URL")
        secret = args.secret or os.environ.get("URL_SIGNING_SECRET") or stack.signing_secret(
            instead="pass --secret or set URL_SIGNING_SECRET"
        )
    except Unavailable as error:
        parser.error(str(error))
    expires = int(time.time()) + args.expires_in if args.expires_in is not None else None
    try:
        print(signed_url(base, secret, args.key, given, expires=expires))
    except InvalidOption as error:  # a value the options accept stripped, but no signature covers
        parser.error(error.message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
