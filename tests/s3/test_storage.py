"""handler.storage against a real S3 server over HTTP: keys, size checks, metadata, presigned links."""

import urllib.parse
import urllib.request
from urllib.parse import unquote

import pytest
from localaws import INPUT_BUCKET, OUTPUT_BUCKET, replace_before_get

from handler.errors import BadRequest, ObjectChanged, ObjectNotFound, TooLarge
from handler.options import Options
from handler.storage import ObjectRef, Storage, content_source, object_result_metadata, result_key


def test_result_key_is_deterministic_and_keeps_the_path():
    # GIVEN the same source and options twice, and a source with other options
    first = result_key("results/", "uploads/a b/photo.jpg", Options())
    again = result_key("results/", "uploads/a b/photo.jpg", Options())
    other = result_key("results/", "uploads/a b/photo.jpg", Options(crop=True))
    # THEN defaults give the whole source path plus the format's extension, other options a distinct suffixed key
    assert first == again == "results/uploads/a b/photo.jpg.png"
    assert other.startswith("results/uploads/a b/photo.jpg.") and other.endswith(".png") and other != first
    assert result_key("results/", "x.jpg", Options(format="webp")).endswith(".webp")
    assert result_key("results/", "x.jpg", Options(background=(1, 2, 3), format="jpeg")).endswith(".jpg")
    # AND every option that changes the image changes the key: a stored result never answers other options
    variants = [Options(), Options(crop=True), Options(mask=True), Options(background=(1, 2, 3)), Options(max_size=64)]
    variants += [Options(refine=True), Options(refine=False), Options(hard=True)]
    keys = [result_key("results/", "uploads/a b/photo.jpg", options) for options in variants]
    assert len(set(keys)) == len(variants), keys


def test_sources_that_differ_only_in_their_extension_get_their_own_results():
    # A phone's HEIC and its JPEG copy, a PNG beside a JPEG, a file with no extension at all
    sources = ["uploads/cat.jpg", "uploads/cat.png", "uploads/cat.HEIC", "uploads/cat.JPG", "uploads/cat"]
    for options in (Options(), Options(crop=True), Options(format="webp")):
        keys = [result_key("results/", source, options) for source in sources]
        assert len(set(keys)) == len(sources), keys


def test_a_result_key_over_s3s_limit_is_a_clear_bad_request():
    longest = "k" * (1024 - len("results/") - len(".png"))
    assert len(result_key("results/", longest, Options()).encode()) == 1024
    with pytest.raises(BadRequest, match="longer than S3's 1,024 bytes"):
        result_key("results/", longest + "k", Options())
    with pytest.raises(BadRequest):
        result_key("results/", "ü" * 510, Options())  # 1,020 characters, 2,020 bytes


def test_metadata_of_a_long_non_ascii_key_stays_within_s3s_2_kb():
    # A 700-character key of CJK characters: 2,100 bytes, three times that once %-escaped
    key = "uploads/" + "猫" * 700 + ".jpg"
    metadata = object_result_metadata(ObjectRef(INPUT_BUCKET, key), "0123abcd", Options(crop=True), model="u2netp", version="v")
    assert sum(len(name.encode()) + len(value.encode()) for name, value in metadata.items()) <= 2048
    assert metadata["source-etag"] == "0123abcd" and "source-key" not in metadata
    short = object_result_metadata(ObjectRef(INPUT_BUCKET, "uploads/猫.jpg"), "0123abcd", Options(), model="u2netp", version="v")
    assert unquote(short["source-key"]) == "uploads/猫.jpg"


def test_store_flag_does_not_change_the_key():
    assert result_key("r/", "a.jpg", Options(store=True)) == result_key("r/", "a.jpg", Options())


def test_content_source_depends_on_the_bytes_only():
    assert content_source(b"abc") == content_source(b"abc") != content_source(b"abd")


def test_get_put_head_round_trip(s3):
    storage = Storage()
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/ünï code.jpg", Body=b"x" * 100)
    data, etag = storage.get(INPUT_BUCKET, "uploads/ünï code.jpg", max_bytes=1000)
    assert data == b"x" * 100 and len(etag) == 32

    storage.put(OUTPUT_BUCKET, "results/a.png", b"png", content_type="image/png", metadata={"source-etag": etag})
    info = storage.head(OUTPUT_BUCKET, "results/a.png")
    assert info.size == 3 and info.metadata == {"source-etag": etag}
    assert s3.get_object(Bucket=OUTPUT_BUCKET, Key="results/a.png")["ContentType"] == "image/png"
    assert storage.head(OUTPUT_BUCKET, "results/missing.png") is None


def test_get_checks_the_size_before_downloading(s3):
    s3.put_object(Bucket=INPUT_BUCKET, Key="big.jpg", Body=b"x" * 2000)
    with pytest.raises(TooLarge, match="2,000 bytes; the limit is 1,000"):
        Storage().get(INPUT_BUCKET, "big.jpg", max_bytes=1000)


def test_missing_object_is_not_found(s3):
    with pytest.raises(ObjectNotFound, match="does not exist"):
        Storage().get(INPUT_BUCKET, "nope.jpg", max_bytes=1000)


def test_get_of_the_version_a_head_saw_fails_if_the_object_was_replaced_since(s3):
    # GIVEN a HEAD of a photo, and another writer replacing the photo before the GET is sent
    storage = Storage()
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/p.jpg", Body=b"first")
    seen = storage.head(INPUT_BUCKET, "uploads/p.jpg")
    replaced = replace_before_get(storage.client, INPUT_BUCKET, "uploads/p.jpg", b"second")
    # WHEN the version the HEAD saw is read
    with pytest.raises(ObjectChanged, match=r"s3://bgremove-input/uploads/p.jpg was replaced while it was being read"):
        storage.get(INPUT_BUCKET, "uploads/p.jpg", max_bytes=1000, info=seen)
    # THEN nothing of the new version was taken for the old one, and a fresh read gets the new one
    assert replaced["etag"] != seen.etag
    assert storage.get(INPUT_BUCKET, "uploads/p.jpg", max_bytes=1000) == (b"second", replaced["etag"])


@pytest.mark.parametrize("region", ["eu-west-1", "ap-southeast-2"])  # us-east-1 is the global host itself
def test_presigned_urls_name_the_buckets_regional_host(monkeypatch, region):
    # Deployed there is no endpoint override: a link on the global s3.amazonaws.com host is
    # redirected for a new bucket outside us-east-1, and the redirected request fails its signature
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    monkeypatch.setenv("AWS_REGION", region)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # presigning signs locally: any key will do
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    storage = Storage()
    host = f"bgremove-output.s3.{region}.amazonaws.com"
    assert urllib.parse.urlsplit(storage.presign_get("bgremove-output", "results/a.png", expires_in=60)).hostname == host
    put = storage.presign_put("bgremove-output", "uploads/a.jpg", content_type="image/jpeg", size=10, expires_in=60)
    assert urllib.parse.urlsplit(put).hostname == host


def test_presigned_get_returns_the_object(s3):
    s3.put_object(Bucket=OUTPUT_BUCKET, Key="results/p.png", Body=b"\x89PNG data", ContentType="image/png")
    url = Storage().presign_get(OUTPUT_BUCKET, "results/p.png", expires_in=60)
    assert "X-Amz-Signature" in url
    with urllib.request.urlopen(url) as response:
        assert response.read() == b"\x89PNG data"


def test_presigned_put_stores_the_upload(s3):
    body = b"\xff\xd8 jpeg bytes"
    url = Storage().presign_put(INPUT_BUCKET, "uploads/u.jpg", content_type="image/jpeg", size=len(body), expires_in=60)
    request = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": "image/jpeg"})
    urllib.request.urlopen(request).read()
    stored = s3.get_object(Bucket=INPUT_BUCKET, Key="uploads/u.jpg")
    assert stored["Body"].read() == body and stored["ContentType"] == "image/jpeg"
