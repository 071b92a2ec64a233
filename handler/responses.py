"""What a Lambda proxy response can carry."""


def base64_length(size: int) -> int:
    """Characters of padded base64 for ``size`` bytes."""
    return 4 * -(-size // 3)


# Lambda returns at most 6 MB (6,291,456 bytes) from a synchronous call, status and headers
# included; 16 KiB of that is kept for them, the rest is the base64 body.
RESPONSE_LIMIT = 6 * 1024 * 1024
RESPONSE_BODY_LIMIT = RESPONSE_LIMIT - 16 * 1024


def fits_in_response(size: int) -> bool:
    """Whether ``size`` bytes of binary body fit in a Lambda proxy response once base64-encoded."""
    return base64_length(size) <= RESPONSE_BODY_LIMIT
