"""handler.worker against a real local S3 server: upload -> notification -> result object."""

import io

import pytest
from helpers import PHONE_MARKS, encode, example_photo, phone_photo
from localaws import INPUT_BUCKET, OUTPUT_BUCKET, replace_before_get, replace_before_put
from PIL import Image

from handler.errors import ObjectChanged, UndecodableImage, UnsupportedMediaType
from handler.options import Options
from handler.settings import Settings
from handler.storage import ObjectRef, Storage
from handler.worker import Worker, created_objects
from s3.support import load_event, s3_notification

PHOTO = encode(example_photo("chelsea", (160, 120)), "JPEG", quality=90)


@pytest.fixture
def worker(s3, segmenter):
    settings = Settings(input_buckets=(INPUT_BUCKET,), output_bucket=OUTPUT_BUCKET, output_prefix="results/")
    return Worker(storage=Storage(), segmenter=segmenter, settings=settings)


def result_keys(s3, bucket=OUTPUT_BUCKET):
    return [item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_notification_keys_are_url_decoded():
    # GIVEN the committed S3 put event, whose key S3 URL-encoded ('+' is a space)
    objects = created_objects(load_event("s3-put.json"))
    # THEN the key is the real object key
    assert objects == [ObjectRef(bucket="bgremove-input", key="uploads/holiday photos/beach (1).jpg")]


@pytest.mark.parametrize("event_name", ["ObjectRemoved:Delete", "ObjectRestore:Completed", "LifecycleExpiration:Delete"])
def test_only_created_objects_are_taken_from_a_notification(event_name):
    # GIVEN a notification with a created photo and a record of another kind (a bucket notified
    # for more events than uploads, by hand or by another integration)
    event = load_event("s3-put.json")
    other = {**event["Records"][0], "eventName": event_name}
    other["s3"] = {**other["s3"], "object": {**other["s3"]["object"], "key": "uploads/other.jpg"}}
    event["Records"].append(other)
    # THEN only the created one is to be processed
    assert created_objects(event) == [ObjectRef(bucket="bgremove-input", key="uploads/holiday photos/beach (1).jpg")]


def test_test_event_yields_nothing():
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "bgremove-input", "RequestId": "X"}
    assert created_objects(test_event) == []


def test_upload_with_spaces_and_plus_gives_a_result_at_the_mapped_key(s3, worker):
    key = "uploads/my cat+dog ünï.jpg"
    s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=PHOTO)
    (source,) = created_objects(s3_notification(INPUT_BUCKET, key))
    assert source.key == key

    assert worker.process(source) == "written"

    stored = s3.get_object(Bucket=OUTPUT_BUCKET, Key="results/uploads/my cat+dog ünï.jpg.png")
    image = Image.open(io.BytesIO(stored["Body"].read()))
    assert stored["ContentType"] == "image/png" and image.mode == "RGBA" and image.size == (160, 120)
    assert stored["Metadata"]["source-etag"] == s3.head_object(Bucket=INPUT_BUCKET, Key=key)["ETag"].strip('"')
    assert stored["Metadata"]["model"] == "u2netp"


def test_a_result_carries_nothing_of_the_uploads_own_metadata(s3, worker):
    # GIVEN a phone photo (EXIF with GPS, XMP, IPTC) uploaded with user metadata, a file name and tags
    s3.put_object(
        Bucket=INPUT_BUCKET,
        Key="uploads/phone.jpg",
        Body=phone_photo("JPEG"),
        Metadata={"owner": "jane.doe@example.com", "gps": "51.5034,-0.1276"},
        ContentDisposition='attachment; filename="Jane at home.jpg"',
        Tagging="customer=jane-doe",
    )
    assert s3.get_object_tagging(Bucket=INPUT_BUCKET, Key="uploads/phone.jpg")["TagSet"]  # the local S3 keeps them
    # WHEN the worker cuts it out
    assert worker.process(ObjectRef(INPUT_BUCKET, "uploads/phone.jpg")) == "written"
    # THEN the result holds none of the photo's metadata, and the object only what the service records
    key = "results/uploads/phone.jpg.png"
    stored = s3.get_object(Bucket=OUTPUT_BUCKET, Key=key)
    data = stored["Body"].read()
    assert [name for name, mark in PHONE_MARKS.items() if mark in data] == [] and b"Exif" not in data
    assert set(stored["Metadata"]) == {"source-etag", "source-bucket", "source-key", "model", "result-version", "options"}
    assert "ContentDisposition" not in stored and s3.get_object_tagging(Bucket=OUTPUT_BUCKET, Key=key)["TagSet"] == []


def test_uploads_that_differ_only_in_their_extension_get_a_result_each(s3, worker):
    # GIVEN two different photos named alike, as a phone's original and its JPEG copy are
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/cat.jpg", Body=PHOTO)
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/cat.png", Body=encode(example_photo("coffee", (120, 80)), "PNG"))
    # WHEN both are processed, then the first again (a redelivery)
    outcomes = [worker.process(ObjectRef(INPUT_BUCKET, key)) for key in ("uploads/cat.jpg", "uploads/cat.png", "uploads/cat.jpg")]
    # THEN each has its own result, neither overwrote the other, and the redelivery is skipped
    assert outcomes == ["written", "written", "skipped"]
    assert result_keys(s3) == ["results/uploads/cat.jpg.png", "results/uploads/cat.png.png"]
    sizes = [Image.open(s3.get_object(Bucket=OUTPUT_BUCKET, Key=key)["Body"]).size for key in result_keys(s3)]
    assert sizes == [(160, 120), (120, 80)]


def test_a_folder_marker_is_skipped_not_failed(s3, worker):
    # The S3 console's "Create folder" makes a zero-byte "uploads/2026/" and notifies it like an upload
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/2026/", Body=b"")
    (source,) = created_objects(s3_notification(INPUT_BUCKET, "uploads/2026/"))
    assert worker.process(source) == "skipped"
    assert result_keys(s3) == []


@pytest.mark.parametrize("body", [{"hello": "world"}, [], {"Type": "Notification", "Message": "{}"}])
def test_a_message_that_is_not_an_s3_notification_is_refused(body):
    with pytest.raises(ValueError, match="not an S3 event notification"):
        created_objects(body)


def test_same_event_twice_writes_one_result(s3, worker):
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/a.jpg", Body=PHOTO)
    (source,) = created_objects(s3_notification(INPUT_BUCKET, "uploads/a.jpg"))
    assert worker.process(source) == "written"
    assert worker.process(source) == "skipped"
    assert result_keys(s3) == ["results/uploads/a.jpg.png"]


def test_a_replaced_upload_is_processed_again(s3, worker):
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/a.jpg", Body=PHOTO)
    source = ObjectRef(INPUT_BUCKET, "uploads/a.jpg")
    worker.process(source)
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/a.jpg", Body=encode(example_photo("coffee", (120, 80)), "JPEG"))
    assert worker.process(source) == "written"
    result = s3.get_object(Bucket=OUTPUT_BUCKET, Key="results/uploads/a.jpg.png")["Body"].read()
    assert Image.open(io.BytesIO(result)).size == (120, 80)


def made_by_another_version(s3, key: str) -> None:
    """Rewrite a stored result as one made by another version of the code (before versions were
    recorded, it had none): a marker for its bytes, its other metadata kept."""
    metadata = s3.head_object(Bucket=OUTPUT_BUCKET, Key=key)["Metadata"]
    del metadata["result-version"]
    s3.put_object(Bucket=OUTPUT_BUCKET, Key=key, Body=b"made by the old code", Metadata=metadata)


def test_a_result_made_by_another_version_of_the_code_is_made_again(s3, worker):
    # GIVEN an upload whose stored result another version of the code made, from the same source version
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/a.jpg", Body=PHOTO)
    source = ObjectRef(INPUT_BUCKET, "uploads/a.jpg")
    assert worker.process(source) == "written"
    current = s3.get_object(Bucket=OUTPUT_BUCKET, Key="results/uploads/a.jpg.png")["Body"].read()
    made_by_another_version(s3, "results/uploads/a.jpg.png")
    # WHEN its notification is delivered again (or a batch job lists it)
    outcome = worker.process(source)
    # THEN it is not taken as up to date: this version's result replaces it
    assert outcome == "written"
    assert s3.get_object(Bucket=OUTPUT_BUCKET, Key="results/uploads/a.jpg.png")["Body"].read() == current
    assert worker.process(source) == "skipped"


def test_a_source_named_like_another_sources_result_never_passes_for_its_result(s3, segmenter):
    # GIVEN a worker cropping uploads, and another with default options writing to the same prefix
    settings = Settings(input_buckets=(INPUT_BUCKET,), output_bucket=OUTPUT_BUCKET, output_prefix="results/")
    cropping = Worker(storage=Storage(), segmenter=segmenter, settings=settings, options=Options(crop=True))
    plain = Worker(storage=Storage(), segmenter=segmenter, settings=settings)
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/a.jpg", Body=PHOTO)
    assert cropping.process(ObjectRef(INPUT_BUCKET, "uploads/a.jpg")) == "written"
    (cropped_key,) = result_keys(s3)
    # AND the same bytes (the same ETag) uploaded under the name of that result, less its extension
    twin = ObjectRef(INPUT_BUCKET, "uploads/" + cropped_key.removeprefix("results/uploads/").removesuffix(".png"))
    s3.put_object(Bucket=INPUT_BUCKET, Key=twin.key, Body=PHOTO)
    assert plain.target(twin).key == cropped_key
    # WHEN the plain worker processes it
    outcome = plain.process(twin)
    # THEN the cropped result is not taken for its uncropped one: it is made (and the key holds it)
    assert outcome == "written"
    result = Image.open(io.BytesIO(s3.get_object(Bucket=OUTPUT_BUCKET, Key=cropped_key)["Body"].read()))
    assert result.size == Image.open(io.BytesIO(PHOTO)).size


def test_a_new_upload_costs_three_heads_one_get_and_one_put(s3, worker):
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/a.jpg", Body=PHOTO)
    sent = []
    worker.storage.client.meta.events.register("before-call.s3", lambda model, **_: sent.append(model.name))
    assert worker.process(ObjectRef(INPUT_BUCKET, "uploads/a.jpg")) == "written"
    # the photo's HEAD, its result's HEAD (the skip check), the GET of the version the first HEAD saw, the result,
    # and the photo's HEAD again (was it replaced meanwhile?)
    assert sent == ["HeadObject", "HeadObject", "GetObject", "PutObject", "HeadObject"]


def test_an_upload_replaced_while_it_is_read_writes_nothing_and_its_retry_takes_the_new_photo(s3, worker):
    # GIVEN an upload that another writer replaces between the worker's HEAD and its GET
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/a.jpg", Body=PHOTO)
    replacement = encode(example_photo("coffee", (120, 80)), "JPEG")
    replaced = replace_before_get(worker.storage.client, INPUT_BUCKET, "uploads/a.jpg", replacement)
    source = ObjectRef(INPUT_BUCKET, "uploads/a.jpg")
    # WHEN it is processed, the GET finds another version than the HEAD: no result for either
    with pytest.raises(ObjectChanged):
        worker.process(source)
    assert result_keys(s3) == []
    # THEN the retry cuts out the new photo and records its ETag
    assert worker.process(source) == "written"
    stored = s3.get_object(Bucket=OUTPUT_BUCKET, Key="results/uploads/a.jpg.png")
    assert Image.open(io.BytesIO(stored["Body"].read())).size == (120, 80)
    assert stored["Metadata"]["source-etag"] == replaced["etag"]


def test_an_old_photos_result_written_after_the_new_photos_fails_so_that_its_retry_writes_the_new_one(s3, worker, segmenter):
    # GIVEN an upload being cut out, and a second execution environment
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/a.jpg", Body=PHOTO)
    source = ObjectRef(INPUT_BUCKET, "uploads/a.jpg")
    elsewhere = Worker(storage=Storage(), segmenter=segmenter, settings=worker.settings)
    replacement = encode(example_photo("coffee", (120, 80)), "JPEG")
    # just before the first result's PUT: the photo is replaced, and its own notification is
    # handled to the end in the other environment
    replaced = replace_before_put(
        worker.storage.client,
        INPUT_BUCKET,
        "uploads/a.jpg",
        replacement,
        into=OUTPUT_BUCKET,
        then=lambda: elsewhere.process(source),
    )
    # WHEN the old photo's result lands last, over the new photo's: its message fails, for a retry
    with pytest.raises(ObjectChanged):
        worker.process(source)
    new_etag = replaced["etag"]
    assert replaced["meanwhile"] == "written"
    # THEN the retry puts the new photo's cut-out back, and a later delivery finds it up to date
    assert worker.process(source) == "written"
    stored = s3.get_object(Bucket=OUTPUT_BUCKET, Key="results/uploads/a.jpg.png")
    assert Image.open(io.BytesIO(stored["Body"].read())).size == (120, 80)
    assert stored["Metadata"]["source-etag"] == new_etag
    assert worker.process(source) == "skipped"


def test_results_never_count_as_inputs_in_a_shared_bucket(s3, segmenter):
    shared = Worker(storage=Storage(), segmenter=segmenter, settings=Settings(output_bucket="", output_prefix="results/"))
    s3.put_object(Bucket=INPUT_BUCKET, Key="results/uploads/a.png", Body=PHOTO)
    assert shared.process(ObjectRef(INPUT_BUCKET, "results/uploads/a.png")) == "skipped"
    assert result_keys(s3, INPUT_BUCKET) == ["results/uploads/a.png"]


def test_deleted_object_is_gone_not_an_error(s3, worker):
    assert worker.process(ObjectRef(INPUT_BUCKET, "uploads/deleted.jpg")) == "gone"


@pytest.mark.parametrize(
    ("body", "error"),
    [(b"not an image at all", UnsupportedMediaType), (PHOTO[: len(PHOTO) // 2], UndecodableImage)],
)
def test_a_bad_upload_raises_its_typed_error_and_writes_nothing(s3, worker, body, error):
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/bad.jpg", Body=body)
    with pytest.raises(error):
        worker.process(ObjectRef(INPUT_BUCKET, "uploads/bad.jpg"))
    assert result_keys(s3) == []
