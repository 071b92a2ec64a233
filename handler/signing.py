"""Signed cut-out URLs: HMAC-SHA256 over the method, the object key and the query parameters.

The string to sign is ``GET`` + newline + the object key (decoded, UTF-8) + newline + every
query parameter except ``signature``, sorted by name, as ``name=value`` with decoded values,
joined by ``&``. The signature is its lowercase hex HMAC-SHA256 under the secret. A site's
backend signs with the same few lines (README, "Cut-out URLs"); ``scripts/sign_url.py``
uses ``signed_query`` below. ``SigningSecret`` reads the deployment's secret.
"""

import hashlib
import hmac
import math
from urllib.parse import quote, urlencode

from .errors import BadSignature, Expired, InvalidOption, shown
from .settings import Settings

SIGNATURE = "signature"
EXPIRES = "expires"
# What the string to sign puts between the key and the parameters, between two parameters, and
# between a name and its value. A parameter holding one could be read as another key or other
# parameters: a signature for the key "a.jpg\nmask=true" would pass for "a.jpg" with the option
# mask "true\n" (options are read with surrounding whitespace stripped). No option holds them.
_SEPARATORS = ("\n", "&")
UNSIGNABLE = "no signature covers a URL whose parameters hold a newline or '&', or a name with '='"


def signable(params: dict[str, str]) -> bool:
    """Whether the string to sign tells these parameters apart: none holds a separator."""
    return not any("=" in name or any(sep in name + value for sep in _SEPARATORS) for name, value in params.items())


def string_to_sign(key: str, params: dict[str, str]) -> str:
    """What the signature covers: the method, the key and every parameter but the signature."""
    pairs = sorted((name, value) for name, value in params.items() if name != SIGNATURE)
    return "GET\n" + key + "\n" + "&".join(f"{name}={value}" for name, value in pairs)


def sign(secret: str, key: str, params: dict[str, str]) -> str:
    """The lowercase hex HMAC-SHA256 of ``string_to_sign(key, params)`` under ``secret``."""
    message = string_to_sign(key, params).encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signed_query(secret: str, key: str, params: dict[str, str], *, expires: int | None = None) -> str:
    """The query string of a signed URL for ``key`` with these options (and an expiry, in Unix seconds).

    :raises InvalidOption: parameters ``verify`` would refuse whatever their signature.
    """
    if not signable(params):
        raise InvalidOption(UNSIGNABLE)
    params = dict(params) | ({EXPIRES: str(expires)} if expires is not None else {})
    params[SIGNATURE] = sign(secret, key, params)
    return urlencode(params, quote_via=quote)


def cutout_path(key: str) -> str:
    """The URL path of a key's cut-out: each character of the key percent-encoded except ``/``."""
    return "/cutouts/" + quote(key, safe="/")


def verify(secret: str | None, key: str, params: dict[str, str], *, now: float) -> int | None:
    """The seconds the URL has left (None: it never expires); raise unless the parameters carry
    a valid signature for ``key`` and have not expired.

    Without a secret nothing is signed, but an ``expires`` still counts.
    """
    if secret is not None:
        if not signable(params):
            raise BadSignature(UNSIGNABLE)
        given = params.get(SIGNATURE, "")
        # compare_digest takes the same time wherever the first difference is.
        if not hmac.compare_digest(given.encode("utf-8"), sign(secret, key, params).encode("ascii")):
            reason = "is missing" if not given else "does not match the key and options"
            raise BadSignature(f"the URL's signature {reason}; sign it with the deployment's URL signing secret")
    if EXPIRES in params:
        try:
            expires = int(params[EXPIRES])
        except ValueError:
            raise InvalidOption(f"expires must be a Unix time in whole seconds, not {shown(params[EXPIRES])}") from None
        if expires < now:
            raise Expired(f"the URL expired at {shown(expires)} (Unix time); it is now {int(now)}")
        # In whole numbers: expires - now would make a float of an expiry past 1e308 (OverflowError).
        return expires - math.ceil(now)
    return None


class SigningSecret:
    """The URL signing secret.

    ``URL_SIGNING_SECRET`` gives it directly (locally); deployed, ``URL_SIGNING_SECRET_ARN``
    names a Secrets Manager secret, fetched on the first cut-out request so that cold starts
    of the other routes never wait for it, and fetched again once Powertools' cache of it is
    ``POWERTOOLS_PARAMETERS_MAX_AGE`` seconds old (the template sets 300): a new value, put
    there to revoke every URL signed with the old one, is used by every execution environment
    within that time. Neither set: URLs are not signed.
    """

    def __init__(self, settings: Settings):
        self._settings = settings

    @property
    def value(self) -> str | None:
        if self._settings.url_signing_secret:
            return self._settings.url_signing_secret
        if self._settings.url_signing_secret_arn:
            from aws_lambda_powertools.utilities.parameters import get_secret

            return get_secret(self._settings.url_signing_secret_arn)
        return None
