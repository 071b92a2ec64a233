"""multipart/form-data bodies (RFC 7578), as HTML forms, FormData and `curl -F` send them: their fields by name.

The parts are split on the boundary as bytes: the standard library's MIME parser reads a body
line by line, which a photo's bytes make slow; only the part headers go through it.
"""

from email.message import Message
from email.parser import HeaderParser
from email.utils import collapse_rfc2231_value

from .errors import BadRequest, shown

# A client's part headers come to a few hundred bytes a part. The standard library parses a header's
# parameters in time quadratic in its length (CPython gh-136063: 14 s for 160 KB), so a form's part
# headers are bounded in all, however many parts carry them.
FORM_HEADERS_LIMIT = 16 * 1024


def form_fields(data: bytes, content_type: str) -> dict[str, bytes]:
    """The fields of a multipart/form-data body by name, each given once; a BadRequest says what is wrong."""
    header = Message()
    header["Content-Type"] = content_type
    try:
        boundary = header.get_boundary()
    except (TypeError, ValueError):  # RFC 2231 the standard library fails on, as in a part's name below
        boundary = None
    if not boundary or not boundary.isascii():
        raise BadRequest("the multipart/form-data Content-Type needs a boundary parameter of ASCII characters")
    # A delimiter is CRLF "--" boundary; the body's first one may open the body without the CRLF.
    preamble, *parts = (b"\r\n" + data).split(b"\r\n--" + boundary.encode())
    if not parts or not parts[-1].startswith(b"--"):
        # A CRLF delimiter past the opening one means CRLF lines: such a form was cut short
        if len(parts) <= 1 and b"\n--" + boundary.encode() in data:
            raise BadRequest("the form's lines end in LF alone: multipart/form-data puts CRLF (\\r\\n) before each boundary")
        raise BadRequest("the form body does not end with its closing boundary: it is cut short or not multipart/form-data")
    named = {}
    header_bytes = 0
    for part in parts[:-1]:
        line_end = part.find(b"\r\n")  # the rest of the delimiter's line: transport padding
        headers_end = part.find(b"\r\n\r\n", line_end)
        if line_end < 0 or headers_end < 0:
            raise BadRequest("a part of the form has no blank line after its headers")
        header_bytes += headers_end - line_end
        if header_bytes > FORM_HEADERS_LIMIT:
            raise BadRequest(
                f"the form's part headers come to {header_bytes:,} bytes or more; the limit is {FORM_HEADERS_LIMIT:,}"
            )
        # Browsers write names in UTF-8 as they are (RFC 7578, 5.1); the bytes parser would read
        # each byte of them as one U+FFFD.
        headers = HeaderParser().parsestr(part[line_end + 2 : headers_end].decode("utf-8", "replace"))
        try:
            name = collapse_rfc2231_value(headers.get_param("name", "", header="Content-Disposition"))
        except (TypeError, ValueError):  # RFC 2231 names the standard library fails on: name*=idna''x, name*=a; name*1
            disposition = str(headers["Content-Disposition"])
            raise BadRequest(f"a form field's RFC 2231 name (name*=) cannot be decoded: {shown(disposition)}") from None
        if not name:
            raise BadRequest('every part of the form needs a Content-Disposition with a name: form-data; name="..."')
        if name in named:
            raise BadRequest(f"the form gives {shown(name)} more than once; give it once")
        named[name] = part[headers_end + 4 :]
    return named
