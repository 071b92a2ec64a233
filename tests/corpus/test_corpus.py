"""The hostile-input corpus through api_handler (REST v1 and HTTP API v2 events) and through the CLI.

tests/corpus/ is written by scripts/make_corpus.py (cases.json + bodies/); the big bodies are built
at test time. EXPECTED below is the contract for each case, from DESIGN.md: 400 bad JSON, base64
or option; 403 bucket not allowed; 404 missing object; 413 too many bytes or pixels; 415 not an
image; 422 an image that cannot be decoded; 200 with a correct image for valid-but-odd images.
"""

import base64
import io
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from integration.conftest import Api
from localaws import INPUT_BUCKET, OUTPUT_BUCKET
from PIL import Image, ImageOps

from handler.cli import main as cli_main
from handler.settings import Settings
from handler.storage import Storage

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO_ROOT / "scripts"))
import make_corpus  # noqa: E402

CORPUS = Path(__file__).resolve().parent
CASES = {case["name"]: case for case in json.loads((CORPUS / make_corpus.MANIFEST).read_text())}
SECRET_KEY = "corpus-secret-key-must-never-be-echoed"
ERROR_CODES = {400: {"bad_request", "invalid_option"}, 403: {"bucket_not_allowed"}, 404: {"not_found"}}
ERROR_CODES |= {413: {"too_large"}, 415: {"unsupported_media_type"}, 422: {"undecodable_image"}}
MAX_MESSAGE_CHARS = 400
# Nothing a client should see in an error: stack traces, paths on the server, credentials.
LEAKS = re.compile(r"Traceback|File \"|/work/|/tmp/|/var/task|site-packages|" + SECRET_KEY)
BASE64_RUN = re.compile(r"[A-Za-z0-9+/=]{200,}")


@dataclass(frozen=True)
class Expect:
    status: int
    cli: int | None  # exit status of `python -m handler`; None where the case has no CLI spelling
    why: str


IMAGE_OK = Expect(200, 0, "a valid image, odd or not, is cut out at its upright size")
OPTION_BAD = Expect(400, 2, "a bad option: 400, and the CLI's usage error (exit 2) names the rule")
JSON_BAD = Expect(400, None, "malformed JSON body: 400 (the CLI takes no JSON)")
BASE64_OK = Expect(200, None, "base64 that loses nothing (wrapped, URL-safe, unpadded, data: URL) is accepted")
BASE64_BAD = Expect(400, None, "not base64 in either alphabet, or padding that cannot be: 400")
BOMB = Expect(413, 1, "a header declaring more pixels than MAX_INPUT_PIXELS: refused before decoding")
CORRUPT = Expect(422, 1, "starts like a supported image (its format's signature) and cannot be decoded")
NOT_IMAGE = Expect(415, 1, "no supported image format recognises the bytes")
S3_BAD = Expect(400, None, "the s3 reference is not {bucket, key} strings")
FORBIDDEN = Expect(403, None, "only INPUT_BUCKETS may be read; the bucket name is compared exactly")
S3_OK = Expect(200, None, "an allowed bucket, the key taken literally")
S3_MISSING = Expect(404, None, "no object at that literal key in the allowed bucket (nothing outside it is read)")

EXPECTED = {
    "empty": NOT_IMAGE,
    "text": NOT_IMAGE,
    "html": NOT_IMAGE,
    "json_as_image": NOT_IMAGE,
    "png_magic_only": CORRUPT,
    "gif_magic_only": CORRUPT,
    "truncated_jpeg": CORRUPT,
    "truncated_png": CORRUPT,
    "truncated_webp": CORRUPT,
    "truncated_heic": CORRUPT,
    "png_bad_crc": CORRUPT,
    "png_icc_bomb": Expect(422, 1, "an ICC profile inflating past Pillow's 1 MiB cap: the header cannot be read"),
    "bomb_png": BOMB,
    "bomb_jpeg": BOMB,
    "bomb_webp": BOMB,
    "bomb_gif": BOMB,
    "bomb_gif_frame": BOMB,
    "bomb_bmp": BOMB,
    "bomb_tiff": BOMB,
    "bomb_heic": BOMB,
    "photo_jpeg": IMAGE_OK,
    "one_pixel": IMAGE_OK,
    "strip_1x40000": IMAGE_OK,
    "png_16_bit": IMAGE_OK,
    "cmyk_jpeg": IMAGE_OK,
    "palette_transparency": IMAGE_OK,
    "animated_gif": Expect(200, 0, "animations give their first frame"),
    "animated_webp": Expect(200, 0, "animations give their first frame"),
    "giant_exif_jpeg": Expect(200, 0, "a 64 KiB EXIF block is read, and its orientation applied"),
    "giant_icc_png": Expect(200, 0, "a 900 KB ICC profile is carried, not applied"),
    "octet_stream_photo": Expect(200, 0, "the body's bytes decide the format, not the Content-Type"),
    "base64_whitespace": BASE64_OK,
    "base64_spaces_and_tabs": BASE64_OK,
    "base64_urlsafe": BASE64_OK,
    "base64_data_url": BASE64_OK,
    "base64_missing_padding": BASE64_OK,
    "base64_padding_in_the_middle": BASE64_BAD,
    "base64_impossible_length": BASE64_BAD,
    "base64_not_base64": BASE64_BAD,
    "base64_non_ascii": BASE64_BAD,
    "base64_empty": Expect(415, None, "valid base64 of no bytes: an empty body is no image"),
    "json_truncated": JSON_BAD,
    "json_not_utf8": JSON_BAD,
    "json_utf16": Expect(200, None, "JSON in UTF-16 with a BOM is JSON (RFC 8259 readers detect it)"),
    "json_array": JSON_BAD,
    "json_string": JSON_BAD,
    "json_null": JSON_BAD,
    "json_no_source": JSON_BAD,
    "json_two_sources": JSON_BAD,
    "json_image_not_a_string": JSON_BAD,
    "json_deeply_nested": Expect(400, None, "20,000 levels of nesting: 400, not a RecursionError"),
    "json_nested_option": JSON_BAD,
    "json_huge_option_value": Expect(400, None, "a 100 KB option value: 400, and the message quotes only its start"),
    "json_nan_max_size": JSON_BAD,
    "json_float_max_size": JSON_BAD,
    "json_bool_max_size": JSON_BAD,
    "json_unknown_option": JSON_BAD,
    "json_duplicate_option": Expect(400, None, "a key given twice is ambiguous: 400, not last-wins"),
    "json_duplicate_image": Expect(400, None, "a key given twice is ambiguous: 400, not last-wins"),
    "json_options_ok": Expect(200, None, "every option spelled as JSON values"),
    "json_null_option": Expect(200, None, "an option set to null is the default"),
    "option_background_ggg": OPTION_BAD,
    "option_background_gggggg": OPTION_BAD,
    "option_background_short_hex": Expect(400, 2, "colours are #RRGGBB; the 3-digit shorthand is not accepted"),
    "option_background_name": OPTION_BAD,
    "option_background_ok": Expect(200, 0, "a colour and jpeg"),
    "option_max_size_zero": OPTION_BAD,
    "option_max_size_negative": OPTION_BAD,
    "option_max_size_billion": Expect(400, 2, "max_size is 1..100,000 (MAX_SIZE_LIMIT): 10^9 is refused, not clamped"),
    "option_max_size_limit": Expect(200, 0, "100,000 is the limit and allowed; outputs are never upscaled"),
    "option_max_size_exponent": OPTION_BAD,
    "option_max_size_underscore": Expect(200, 0, "whole numbers are read as Python's int() reads them, like the CLI"),
    "option_max_size_unicode_digits": Expect(200, None, "int() reads Unicode decimal digits too; the range check applies"),
    "option_max_size_empty": OPTION_BAD,
    "option_max_size_ok": Expect(200, 0, "a smaller output"),
    "option_unknown": OPTION_BAD,
    "option_duplicate": Expect(400, None, "an option given twice in the query string is ambiguous"),
    "option_format_gif": OPTION_BAD,
    "option_format_jpeg_with_alpha": OPTION_BAD,
    "option_mask_maybe": Expect(400, None, "flags are true/false/1/0/yes/no/on/off"),
    "option_mask_and_background": OPTION_BAD,
    "option_store": Expect(200, None, "store=true writes under OUTPUT_PREFIX and answers a link"),
    "s3_ok": S3_OK,
    "s3_unicode_key": S3_OK,
    "s3_plus_key": S3_OK,
    "s3_plus_is_not_a_space": Expect(404, None, "'+' in an API key is a plus; only S3 notifications encode spaces so"),
    "s3_missing_object": S3_MISSING,
    "s3_dotdot_key": S3_MISSING,
    "s3_encoded_dotdot_key": S3_MISSING,
    "s3_dotdot_literal_object": Expect(200, None, "S3 keys are opaque: 'uploads/../../x.jpg' is one object's name"),
    "s3_dotdot_store": Expect(200, None, "its stored result's key stays under OUTPUT_PREFIX, dots and all"),
    "s3_bucket_not_allowed": FORBIDDEN,
    "s3_bucket_prefix_of_allowed": FORBIDDEN,
    "s3_bucket_arn": FORBIDDEN,
    "s3_bucket_with_path": FORBIDDEN,
    "s3_not_an_object": S3_BAD,
    "s3_missing_key": S3_BAD,
    "s3_empty_key": S3_BAD,
    "s3_extra_field": S3_BAD,
    "s3_key_not_a_string": S3_BAD,
    "body_9_9_mb": Expect(200, 0, "9.9 MB is under the 10 MiB limit: processed"),
    "body_over_limit": Expect(413, 0, "one byte over 10 MiB: 413 before decoding; the CLI reads local files of any size"),
    "json_9_9_mb": Expect(200, None, "the 9.9 MB image as base64 JSON (13.2 MB) is under the JSON limit"),
    "json_oversized": Expect(413, None, "a JSON body whose image would exceed 10 MiB: 413 before parsing"),
}


@pytest.fixture(scope="module")
def large_bodies() -> dict[str, bytes]:
    return make_corpus.large_bodies()


def body_of(case: dict, large_bodies: dict[str, bytes]) -> bytes:
    return large_bodies[case["name"]] if case["body"] is None else (CORPUS / make_corpus.BODIES / case["body"]).read_bytes()


def test_committed_corpus_is_what_the_script_writes(tmp_path):
    make_corpus.write(tmp_path)
    generated = sorted(path.name for path in (tmp_path / make_corpus.BODIES).iterdir())
    committed = sorted(path.name for path in (CORPUS / make_corpus.BODIES).iterdir())
    assert generated == committed
    for name in generated:
        assert (tmp_path / make_corpus.BODIES / name).read_bytes() == (CORPUS / make_corpus.BODIES / name).read_bytes(), name
    assert (tmp_path / make_corpus.MANIFEST).read_text() == (CORPUS / make_corpus.MANIFEST).read_text()


def test_every_case_has_an_expected_answer_and_no_more():
    assert sorted(EXPECTED) == sorted(CASES)


def test_committed_corpus_is_small():
    assert sum(path.stat().st_size for path in (CORPUS / make_corpus.BODIES).iterdir()) < 1_000_000


@pytest.fixture
def corpus_api(api_with, s3, monkeypatch):
    """The API allowed to read INPUT_BUCKET and to store into OUTPUT_BUCKET, over the local S3 server,
    signing with a secret that must never appear in a reply or a log line."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    s3.create_bucket(Bucket=make_corpus.SECRET_BUCKET)
    settings = Settings(input_buckets=(INPUT_BUCKET,), output_bucket=OUTPUT_BUCKET)
    return api_with(settings=settings, storage=Storage())


def requests_for(case: dict, body: bytes, api: Api) -> list[dict]:
    """The events for a case: image files go raw (and refused ones as JSON base64 too); the rest as they are."""
    query = {}
    for name, value in case.get("query", []):
        query.setdefault(name, []).append(value)
    if case["kind"] == "image":
        raw = api.event(body, content_type=case["content_type"])
        if EXPECTED[case["name"]].status == 200:  # the base64 and JSON cases cover valid images sent as JSON
            return [raw]
        return [raw, api.event(json.dumps({"image": base64.b64encode(body).decode()}), content_type="application/json")]
    if case["content_type"] == "application/json" and api.version == "v2":
        try:  # an HTTP API sends text types as text, not base64
            return [api.event(body.decode("utf-8"), content_type=case["content_type"], query=query)]
        except UnicodeDecodeError:
            pass
    return [api.event(body, content_type=case["content_type"], query=query)]


def source_image(case: dict, body: bytes, large_bodies: dict[str, bytes]) -> Image.Image:
    """The image a 200 for this case was made from, upright, first frame."""
    if case["kind"] == "image":
        source = body
    elif case["name"] in ("body_9_9_mb", "json_9_9_mb"):
        source = large_bodies["body_9_9_mb"]
    else:  # option, base64, JSON and S3 cases all carry the corpus photo
        source = (CORPUS / make_corpus.BODIES / "photo.jpg").read_bytes()
    return ImageOps.exif_transpose(Image.open(io.BytesIO(source)))


def options_of(case: dict, body: bytes) -> dict:
    """The options a case sends, from its query string or its JSON body."""
    if case["content_type"] != "application/json":
        return dict(case.get("query", []))
    document = json.loads(body.decode(json.detect_encoding(body)))
    return {name: value for name, value in document.items() if name not in ("image", "s3")}


def assert_cut_out(reply, source: Image.Image, options: dict) -> None:
    """A complete image of the source's size (or within max_size), alpha no more opaque than the source's."""
    assert reply.content_type.startswith("image/"), reply.content_type
    result = Image.open(io.BytesIO(reply.body))
    result.load()
    if options.get("max_size"):
        assert max(result.size) <= int(options["max_size"])
    elif not options.get("crop"):
        assert result.size == source.size
    if result.mode == "RGBA" and (source.mode in ("RGBA", "LA", "PA") or "transparency" in source.info):
        source_alpha = np.asarray(source.convert("RGBA").getchannel("A"), dtype=np.int16)
        assert (np.asarray(result.getchannel("A"), dtype=np.int16) <= source_alpha + 1).all()


def assert_error_body(reply, status: int) -> None:
    assert reply.content_type == "application/json"
    error = reply.json()["error"]
    assert set(error) == {"code", "message"}
    assert error["code"] in ERROR_CODES[status], error
    assert 0 < len(error["message"]) <= MAX_MESSAGE_CHARS, error["message"][:200]
    assert not LEAKS.search(error["message"]), error["message"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_api_answers_every_case_as_the_contract_says(name, corpus_api, s3, log_lines, large_bodies):
    # GIVEN a corpus case, and the S3 objects it refers to
    case, expected = CASES[name], EXPECTED[name]
    photo = (CORPUS / make_corpus.BODIES / "photo.jpg").read_bytes()
    for bucket, key in case.get("objects", []):
        s3.put_object(Bucket=bucket, Key=key, Body=photo)
    body = body_of(case, large_bodies)
    for event in requests_for(case, body, corpus_api):
        # WHEN it is posted to /remove
        reply = corpus_api.call(event)
        # THEN the status is the expected one, with a JSON error body or a correct result
        assert reply.status == expected.status, f"{name}: {expected.why}; got {reply.status} {reply.body[:300]!r}"
        assert SECRET_KEY.encode() not in reply.body
        if expected.status != 200:
            assert_error_body(reply, expected.status)
        elif reply.content_type == "application/json":  # a stored result: the link to it
            link = reply.json()
            assert link["bucket"] == OUTPUT_BUCKET and link["key"].startswith("results/"), link
            assert s3.head_object(Bucket=OUTPUT_BUCKET, Key=link["key"])["ContentLength"] > 0
        else:
            assert_cut_out(reply, source_image(case, body, large_bodies), options_of(case, body))
    # AND the log lines carry no image bytes, no presigned signature and no credentials
    logged = json.dumps(log_lines())
    assert not BASE64_RUN.search(logged), BASE64_RUN.search(logged)
    assert "Signature" not in logged and SECRET_KEY not in logged


@pytest.mark.parametrize("name", sorted(name for name, expect in EXPECTED.items() if expect.cli is not None))
def test_cli_answers_every_case_it_can_spell(name, tmp_path, capsys, large_bodies):
    case, expected = CASES[name], EXPECTED[name]
    source = tmp_path / f"{name}.input"
    if case["kind"] == "options":
        source.write_bytes((CORPUS / make_corpus.BODIES / "photo.jpg").read_bytes())
        arguments = case["cli"]
    else:
        source.write_bytes(body_of(case, large_bodies))
        arguments = []
    extension = "jpg" if "jpeg" in arguments else "png"
    command = [str(source), "-o", str(tmp_path / f"out.{extension}"), *arguments]
    if expected.cli == 2:
        with pytest.raises(SystemExit) as exited:
            cli_main(command)
        assert exited.value.code == 2
        assert "error:" in capsys.readouterr().err
        return
    assert cli_main(command) == expected.cli, f"{name}: {expected.why}"
    out, err = capsys.readouterr()
    if expected.cli == 0:
        assert "done 1, failed 0" in out
        Image.open(tmp_path / f"out.{extension}").load()
    else:
        assert "done 0, failed 1" in out
        reason = re.search(rf"failed: {re.escape(str(source))}: (.+)", err)
        assert reason and not LEAKS.search(reason.group(1).replace(str(source), "")), err
