"""scripts/batch_job.py: the manifest against a real local S3 server, the create_job request checked
against the S3 Control API's own model (moto has no S3 Batch Operations, so botocore's Stubber
stands in for that one call, after botocore has validated the parameters)."""

import csv
import io
import sys
from pathlib import Path

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes import S3BatchOperationEvent
from botocore.stub import Stubber
from localaws import INPUT_BUCKET, OUTPUT_BUCKET

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import batch_job  # noqa: E402

FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:bgremove-BatchFunction-abc"
ROLE_ARN = "arn:aws:iam::123456789012:role/bgremove-BatchOperationsRole-abc"
KEYS = ["photos/2019/été à Paris.jpg", "photos/2019/a,b + c.jpg", "photos/2019/deep/№1 %20.png"]


@pytest.fixture
def photos(s3):
    for key in [*KEYS, "photos/2019/folder/", "other/not-this.jpg"]:
        s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=b"photo bytes")
    return s3


def arguments(*extra: str):
    base = ["photos/2019/", "--bucket", INPUT_BUCKET, "--jobs-bucket", OUTPUT_BUCKET]
    return batch_job.parser().parse_args([*base, "--function-arn", FUNCTION_ARN, "--role-arn", ROLE_ARN, *extra])


def test_the_manifest_lists_every_object_under_the_prefix_url_encoded(photos):
    body, count = batch_job.manifest_csv(photos, INPUT_BUCKET, "photos/2019/")
    rows = list(csv.reader(io.StringIO(body)))
    assert count == len(rows) == 3
    assert all(len(row) == 2 and row[0] == INPUT_BUCKET and " " not in row[1] and "," not in row[1] for row in rows)
    # Batch Operations hands each key on as written; the function's task accessor decodes it.
    tasks = [S3BatchOperationEvent({"tasks": [{"taskId": "t", "s3Key": key, "s3Bucket": bucket}]}).task for bucket, key in rows]
    assert sorted(task.s3_key for task in tasks) == sorted(KEYS)


def test_the_job_is_created_with_the_uploaded_manifest_and_a_report_of_failures(photos):
    # GIVEN the S3 Control client, whose create_job moto lacks: stubbed after botocore validates the request
    s3control = boto3.client("s3control")
    stubber = Stubber(s3control)
    stubber.add_response("create_job", {"JobId": "job-1"})
    out = io.StringIO()
    # WHEN a job is created for the prefix with two options
    with stubber:
        request = batch_job.create(
            arguments("--option", "format=webp", "--option", "max_size=2048"),
            s3=photos,
            s3control=s3control,
            sts=boto3.client("sts"),
            out=out,
        )
    stubber.assert_no_pending_responses()
    # THEN the manifest in the jobs bucket is the one the request names, by ETag
    manifest_key = request["Manifest"]["Location"]["ObjectArn"].removeprefix(f"arn:aws:s3:::{OUTPUT_BUCKET}/")
    assert manifest_key.startswith("batch-jobs/manifests/") and manifest_key.endswith(".csv")
    stored = photos.get_object(Bucket=OUTPUT_BUCKET, Key=manifest_key)
    assert stored["ETag"].strip('"') == request["Manifest"]["Location"]["ETag"]
    assert len(stored["Body"].read().decode().splitlines()) == 3
    assert request["Manifest"]["Spec"] == {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]}
    # AND each task invokes the batch function with schema 2.0 and the options as user arguments
    assert request["Operation"] == {
        "LambdaInvoke": {
            "FunctionArn": FUNCTION_ARN,
            "InvocationSchemaVersion": "2.0",
            "UserArguments": {"format": "webp", "max_size": "2048"},
        }
    }
    assert request["RoleArn"] == ROLE_ARN and request["AccountId"] == "123456789012"
    # AND failed tasks are reported where the role may write
    assert request["Report"] == {
        "Bucket": f"arn:aws:s3:::{OUTPUT_BUCKET}",
        "Prefix": "batch-jobs/reports",
        "Format": "Report_CSV_20180820",
        "Enabled": True,
        "ReportScope": "FailedTasksOnly",
    }
    assert "job job-1 created" in out.getvalue()


def test_dry_run_prints_the_request_and_writes_nothing(photos):
    out = io.StringIO()
    request = batch_job.create(arguments("--dry-run"), s3=photos, s3control=None, sts=boto3.client("sts"), out=out)
    assert "UserArguments" not in request["Operation"]["LambdaInvoke"]  # the defaults
    assert "3 objects under s3://bgremove-input/photos/2019/" in out.getvalue()
    assert '"FunctionArn": "' + FUNCTION_ARN in out.getvalue()
    assert photos.list_objects_v2(Bucket=OUTPUT_BUCKET).get("KeyCount") == 0


def test_options_are_checked_before_anything_is_listed(s3, capsys):
    with pytest.raises(SystemExit) as stopped:
        batch_job.main(
            [
                "photos/",
                "--bucket",
                INPUT_BUCKET,
                "--jobs-bucket",
                OUTPUT_BUCKET,
                "--function-arn",
                FUNCTION_ARN,
                "--role-arn",
                ROLE_ARN,
                "--option",
                "format=gif",
            ]
        )
    assert str(stopped.value) == "--option: format must be png, webp or jpeg, not 'gif'"


def test_an_option_given_twice_is_refused_as_the_api_refuses_it(s3):
    # A repeated option is ambiguous: the API answers it with a 400, so the job is not created with the last one
    base = ["photos/", "--bucket", INPUT_BUCKET, "--jobs-bucket", OUTPUT_BUCKET, "--function-arn", FUNCTION_ARN]
    with pytest.raises(SystemExit) as stopped:
        batch_job.main([*base, "--role-arn", ROLE_ARN, "--option", "format=png", "--option", "crop=1", "--option", "format=webp"])
    assert str(stopped.value) == "--option: option 'format' is given 2 times; give it once"


def test_an_inventory_outside_the_jobs_prefix_is_refused(s3):
    args = arguments("--inventory", f"s3://{INPUT_BUCKET}/inventory/manifest.json", "--dry-run")
    with pytest.raises(SystemExit, match="must be under s3://bgremove-output/batch-jobs/manifests/"):
        batch_job.create(args, s3=s3, s3control=None, sts=boto3.client("sts"))


def test_an_inventory_report_becomes_the_manifest(s3):
    key = "batch-jobs/manifests/inventory/bgremove-input/all/2026-11-30T00-00Z/manifest.json"
    etag = s3.put_object(Bucket=OUTPUT_BUCKET, Key=key, Body=b"{}")["ETag"].strip('"')
    args = arguments("--inventory", f"s3://{OUTPUT_BUCKET}/{key}", "--dry-run")
    request = batch_job.create(args, s3=s3, s3control=None, sts=boto3.client("sts"), out=io.StringIO())
    assert request["Manifest"] == {
        "Spec": {"Format": "S3InventoryReport_CSV_20161130"},
        "Location": {"ObjectArn": f"arn:aws:s3:::{OUTPUT_BUCKET}/{key}", "ETag": etag},
    }
