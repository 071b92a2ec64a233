"""POST /remove with a multipart/form-data body, as HTML forms, a browser's FormData, `curl -F`
and mobile HTTP clients send it: the photo in an "image" field, options in the other fields.

Bodies are made by urllib3's encoder, a real client's, or written out by hand where a test
needs a shape no encoder makes.
"""

import base64

import pytest
from urllib3 import encode_multipart_formdata

from handler.settings import Settings

OPTIONS = {"format": "webp", "crop": "true", "max_size": "200"}


def form(fields: dict, boundary: str | None = None) -> tuple[bytes, str]:
    """The body and Content-Type of a form with ``fields`` (a tuple value is a file: name, bytes, type)."""
    return encode_multipart_formdata(fields, boundary=boundary)


def test_a_form_gives_the_bytes_of_the_raw_body_with_the_same_options(api, photo):
    # GIVEN the photo as a form's file field, and the options as its other fields
    body, content_type = form({"image": ("photo.jpg", photo, "image/jpeg"), **OPTIONS})
    # WHEN it is posted, and the same photo as a raw body with the options in the query string
    reply = api.post(body, content_type=content_type)
    raw = api.post(photo, content_type="image/jpeg", query=OPTIONS)
    # THEN both are the same WebP, byte for byte
    assert (reply.status, reply.content_type) == (200, "image/webp"), reply.body[:200]
    assert reply.body == raw.body


def test_options_may_come_in_the_query_string_and_the_image_in_the_form(api, photo):
    body, content_type = form({"image": ("photo.jpg", photo, "image/jpeg")})
    reply = api.post(body, content_type=content_type, query=OPTIONS)
    assert reply.body == api.post(photo, content_type="image/jpeg", query=OPTIONS).body


def test_a_hand_written_form_with_a_preamble_an_epilogue_and_a_bare_part_is_read(api, photo):
    # GIVEN a body RFC 2046 allows but encoders seldom write: text before the first boundary and
    # after the last, padding after a boundary, the options field first, the image part without a
    # Content-Type, and a photo whose bytes hold CRLF and "--" (every JPEG's do somewhere)
    body = b"".join(
        (
            b"this preamble is ignored\r\n--XyZ \t\r\n",
            b'Content-Disposition: form-data; name="format"\r\n\r\nwebp\r\n',
            b'--XyZ\r\nContent-Disposition: form-data; name="image"; filename="a b.jpg"\r\n\r\n',
            photo,
            b"\r\n--XyZ--\r\nand so is this epilogue",
        )
    )
    # WHEN it is posted
    reply = api.post(body, content_type='multipart/form-data; boundary="XyZ"')
    # THEN the image is exactly the photo's bytes and the option applies
    assert reply.body == api.post(photo, content_type="image/jpeg", query={"format": "webp"}).body


def test_a_form_can_ask_for_the_json_envelope(api, photo):
    body, content_type = form({"image": ("photo.jpg", photo, "image/jpeg"), "format": "png"})
    reply = api.post(body, content_type=content_type, headers={"Accept": "application/json"})
    assert reply.status == 200
    assert reply.json()["format"] == "png"


@pytest.mark.parametrize(
    "fields, query, status, code, message",
    [
        ({"photo": ("a.jpg", b"<photo>", "image/jpeg")}, {}, 400, "bad_request", 'must have an "image" field'),
        ({"image": ("a.jpg", b"<photo>", "image/jpeg"), "format": "png"}, {"format": "png"}, 400, "invalid_option", "given both"),
        ({"image": ("a.jpg", b"<photo>", "image/jpeg"), "colour": "red"}, {}, 400, "invalid_option", "unknown option 'colour'"),
        ({"image": ("a.jpg", b"<photo>", "image/jpeg"), "format": b"\xff\xfe"}, {}, 400, "bad_request", "is not UTF-8"),
        ({"image": ("notes.txt", b"not a photo at all", "text/plain")}, {}, 415, "unsupported_media_type", "image"),
        ({"image": ("empty.jpg", b"", "image/jpeg")}, {}, 415, "unsupported_media_type", "empty"),
    ],
)
def test_a_form_without_a_usable_image_or_options_is_refused_with_a_reason(api, fields, query, status, code, message):
    body, content_type = form(fields)
    reply = api.post(body, content_type=content_type, query=query)
    assert (reply.status, reply.error_code) == (status, code)
    assert message in reply.json()["error"]["message"]


def _repeated_image(photo: bytes) -> tuple[bytes, str]:
    one, content_type = form({"image": ("a.jpg", photo, "image/jpeg")}, boundary="b0undary")
    part = one[: one.rindex(b"--b0undary--")]
    return part + part + b"--b0undary--\r\n", content_type


BOUNDARY_X = "multipart/form-data; boundary=x"


@pytest.mark.parametrize(
    "make, message",
    [
        (_repeated_image, "gives 'image' more than once"),
        (lambda photo: (photo, "multipart/form-data"), "needs a boundary parameter"),
        (lambda photo: (photo, "multipart/form-data; boundary*=idna''x"), "needs a boundary parameter"),
        (lambda photo: (photo, "multipart/form-data; boundary*=a; boundary*1"), "needs a boundary parameter"),
        (lambda photo: (photo, "multipart/form-data; boundary=nowhere"), "does not end with its closing boundary"),
        (lambda photo: (form({"image": ("a.jpg", photo, "image/jpeg")}, "x")[0][:-40], BOUNDARY_X), "closing boundary"),
        (lambda photo: (form({"format": "webp", "image": ("a.jpg", photo, "image/jpeg")}, "x")[0][:-40], BOUNDARY_X), "closing"),
        (lambda photo: (b"--x\r\nContent-Type: image/jpeg\r\n\r\n" + photo + b"\r\n--x--", BOUNDARY_X), "needs a Content"),
        (lambda photo: (b"--x\r\nContent-Disposition: form-data; name=image\r\n" + photo + b"\r\n--x--", BOUNDARY_X), "no blank"),
    ],
    ids=[
        "image twice",
        "no boundary",
        "boundary in idna",
        "boundary continued without a value",
        "boundary absent",
        "cut short",
        "cut short after another field",
        "part without a name",
        "part without headers' end",
    ],
)
def test_a_malformed_form_is_a_bad_request_that_says_what_is_wrong(api, photo, make, message):
    body, content_type = make(photo)
    reply = api.post(body, content_type=content_type)
    assert (reply.status, reply.error_code) == (400, "bad_request")
    assert message in reply.json()["error"]["message"]


def test_a_form_whose_image_is_over_the_limit_is_refused_before_decoding(api_with, photo):
    api = api_with(settings=Settings(max_input_bytes=len(photo) - 1))
    body, content_type = form({"image": ("photo.jpg", photo, "image/jpeg")})
    reply = api.post(body, content_type=content_type)
    assert (reply.status, reply.error_code) == (413, "too_large")
    assert f"the image is {len(photo):,} bytes; the limit is {len(photo) - 1:,}" in reply.json()["error"]["message"]


@pytest.mark.parametrize(
    "name",
    [
        b"name*=idna''im%FFage",
        b"name*=punycode''im%FFage",
        b"name*=undefined''image",
        b"name*=utf\x008''image",
        b"name*=a; name*1",
    ],
    ids=["idna", "punycode", "undefined", "NUL in the charset", "continuation without a value"],
)
def test_a_field_name_that_rfc_2231_decoding_fails_on_is_a_bad_request(api, photo, name):
    # GIVEN a part naming itself in RFC 2231's name*= in a way the standard library raises on: a
    # codec that cannot decode leniently (idna and undefined refuse errors="replace"; punycode takes
    # ASCII only), a charset no codec lookup takes, a continuation without a value
    body = b"--x\r\nContent-Disposition: form-data; " + name + b"\r\n\r\n" + photo + b"\r\n--x--\r\n"
    # WHEN it is posted
    reply = api.post(body, content_type="multipart/form-data; boundary=x")
    # THEN it is a 400 that quotes the header, not a 500
    assert (reply.status, reply.error_code) == (400, "bad_request"), reply.body[:300]
    assert "cannot be decoded:" in reply.json()["error"]["message"]
    assert name.decode().replace("\x00", "\\x00") in reply.json()["error"]["message"]


def test_part_headers_longer_than_any_clients_are_refused_before_they_are_parsed(api, photo):
    # GIVEN a part whose Content-Disposition runs on with an unclosed quoted string of ";": the
    # standard library's parameter parsing takes time quadratic in such a header (1 s at 40 KB,
    # 14 s at 160 KB, hours at the 4.5 MB a body may hold)
    header = b'Content-Disposition: form-data; name="image"; filename="' + b";" * (20 * 1024)
    body = b"--x\r\n" + header + b"\r\n\r\n" + photo + b"\r\n--x--\r\n"
    # WHEN it is posted
    reply = api.post(body, content_type="multipart/form-data; boundary=x")
    # THEN it is refused for its headers' length
    assert (reply.status, reply.error_code) == (400, "bad_request"), reply.body[:300]
    assert "the limit is 16,384" in reply.json()["error"]["message"]


def test_a_long_non_ascii_file_name_is_within_the_part_header_limit(api, photo):
    # GIVEN the longest file name file systems allow (255 characters), each 4 bytes of UTF-8 as a
    # browser writes it raw, and another field beside it
    name = "🐈" * 255
    body, content_type = form({"image": (name, photo, "image/jpeg"), "format": "webp"})
    # WHEN it is posted
    reply = api.post(body, content_type=content_type)
    # THEN the cut-out is made
    assert (reply.status, reply.content_type) == (200, "image/webp"), reply.body[:300]


def test_fields_named_in_utf_8_as_browsers_name_them_are_quoted_by_their_names(api, photo):
    # GIVEN a form with two fields named in Cyrillic beside the photo, their names raw UTF-8 as
    # browsers and urllib3 write them (RFC 7578, 5.1)
    body, content_type = form({"image": ("Фото 2024.jpg", photo, "image/jpeg"), "размер": "800", "формат": "webp"})
    # WHEN it is posted
    reply = api.post(body, content_type=content_type)
    # THEN the refusal names the first unknown field as it is spelled: both read as the same run
    # of twelve "\ufffd", one per byte, and were refused as one field given twice
    assert (reply.status, reply.error_code) == (400, "invalid_option"), reply.body[:300]
    assert "unknown option 'размер'" in reply.json()["error"]["message"]


def test_an_html_forms_empty_inputs_leave_their_options_unset(api, photo):
    # An HTML form sends every named input, filled or not: max_size= and background= are "not given"
    body, content_type = form({"image": ("photo.jpg", photo, "image/jpeg"), "format": "webp", "max_size": "", "background": ""})
    reply = api.post(body, content_type=content_type)
    assert reply.body == api.post(photo, content_type="image/jpeg", query={"format": "webp"}).body


def test_an_image_field_may_hold_a_data_url_as_a_canvas_gives_it(api, photo):
    # form.append("image", canvas.toDataURL("image/jpeg")): a text field, base64 behind a data: prefix
    data_url = "data:image/jpeg;base64," + base64.b64encode(photo).decode()
    body, content_type = form({"image": data_url, "format": "webp"})
    reply = api.post(body, content_type=content_type)
    assert reply.body == api.post(photo, content_type="image/jpeg", query={"format": "webp"}).body


def test_a_form_with_lf_line_endings_is_told_so(api, photo):
    body = b'--x\nContent-Disposition: form-data; name="image"\n\n' + photo + b"\n--x--\n"
    reply = api.post(body, content_type="multipart/form-data; boundary=x")
    assert (reply.status, reply.error_code) == (400, "bad_request")
    assert "lines end in LF alone" in reply.json()["error"]["message"]


@pytest.mark.parametrize("body", ["image=photo.jpg&format=webp", "image=&format=webp"])
def test_an_html_form_without_multipart_enctype_is_told_what_to_send(api, body):
    # <form method=post> without enctype sends the file input's name (empty with no file), not its bytes
    reply = api.post(body, content_type="application/x-www-form-urlencoded")
    assert (reply.status, reply.error_code) == (415, "unsupported_media_type")
    assert 'enctype="multipart/form-data"' in reply.json()["error"]["message"]


def test_a_photo_sent_as_curls_default_content_type_is_still_the_photo(api, photo):
    # curl --data-binary @photo.jpg without -H sends Content-Type: application/x-www-form-urlencoded
    reply = api.post(photo, content_type="application/x-www-form-urlencoded")
    assert reply.status == 200 and reply.body == api.post(photo, content_type="image/jpeg").body
