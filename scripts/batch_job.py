"""Cut out every photo under a prefix (or in an S3 Inventory report) with an S3 Batch Operations job.

    python scripts/batch_job.py uploads/2019/ --bucket INPUT --jobs-bucket OUTPUT \\
        --function-arn BATCH_FUNCTION_ARN --role-arn BATCH_OPERATIONS_ROLE_ARN [--option format=webp] [--dry-run]
    python scripts/batch_job.py --inventory s3://OUTPUT/batch-jobs/manifests/inventory/.../manifest.json ...

With a prefix it lists the input bucket and writes a CSV manifest (bucket, URL-encoded key: the
format Batch Operations reads) to s3://JOBS_BUCKET/batch-jobs/manifests/; with --inventory it
points the job at an S3 Inventory report's manifest.json, which must have been delivered under
that same prefix (the only manifests the job's role may read). It then creates the job
(``s3control create_job``): invocation schema 2.0 with the options as user arguments, and a
completion report of the failed tasks under batch-jobs/reports/. The bucket names and ARNs are
the stack's outputs (see README "Existing photos: queue, backfill or batch job").
``--dry-run`` prints the request and the start of the manifest, and uploads and creates nothing.
"""

import argparse
import csv
import io
import json
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from handler.errors import InvalidOption, shown  # noqa: E402
from handler.options import Options  # noqa: E402

JOBS_PREFIX = "batch-jobs/"
MANIFESTS = JOBS_PREFIX + "manifests/"
REPORTS = JOBS_PREFIX + "reports"


def manifest_csv(s3, bucket: str, prefix: str) -> tuple[str, int]:
    """The CSV manifest of the objects under ``prefix`` (folder markers left out), and how many."""
    text, count = io.StringIO(), 0
    writer = csv.writer(text, lineterminator="\n")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if not item["Key"].endswith("/"):
                writer.writerow([bucket, quote(item["Key"])])  # Batch Operations wants keys URL-encoded
                count += 1
    return text.getvalue(), count


def job_request(
    *, account_id: str, function_arn: str, role_arn: str, jobs_bucket: str, manifest: dict, options: dict, source: str
) -> dict:
    """The create_job parameters: one Lambda invocation per object, failed tasks reported."""
    operation = {"FunctionArn": function_arn, "InvocationSchemaVersion": "2.0"}
    if options:
        operation["UserArguments"] = options
    return {
        "AccountId": account_id,
        "ConfirmationRequired": False,
        "Operation": {"LambdaInvoke": operation},
        "Manifest": manifest,
        "Report": {
            "Bucket": f"arn:aws:s3:::{jobs_bucket}",
            "Prefix": REPORTS,
            "Format": "Report_CSV_20180820",
            "Enabled": True,
            "ReportScope": "FailedTasksOnly",
        },
        "Priority": 10,
        "RoleArn": role_arn,
        "ClientRequestToken": str(uuid.uuid4()),
        "Description": f"bgremove: {source}"[:256],
    }


def parse_options(pairs: list[str]) -> dict[str, str]:
    """``name=value`` pairs as user arguments, checked by the same rules the function applies."""
    names = Counter(pair.partition("=")[0] for pair in pairs)
    for name, times in names.items():
        if times > 1:  # ambiguous, as the API holds a repeated option: not the last one silently
            raise InvalidOption(f"option {shown(name)} is given {times} times; give it once")
    options = dict(pair.split("=", 1) if "=" in pair else (pair, "") for pair in pairs)
    Options.parse(options)  # raises InvalidOption with the rule that was broken
    return options


def split_s3_url(url: str) -> tuple[str, str]:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bucket, key


def create(args, *, s3, s3control, sts, out=sys.stdout) -> dict:
    """Write the manifest and create the job (or, with --dry-run, print what would be sent)."""
    options = parse_options(args.option)
    if args.inventory:
        bucket, key = split_s3_url(args.inventory)
        if bucket != args.jobs_bucket or not key.startswith(MANIFESTS):
            raise SystemExit(f"--inventory must be under s3://{args.jobs_bucket}/{MANIFESTS} (the job's role reads only there)")
        etag = s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
        spec, source = {"Format": "S3InventoryReport_CSV_20161130"}, args.inventory
    else:
        body, count = manifest_csv(s3, args.bucket, args.prefix)
        if not count:
            raise SystemExit(f"no objects under s3://{args.bucket}/{args.prefix}")
        key = f"{MANIFESTS}{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}.csv"
        spec, source = (
            {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
            f"s3://{args.bucket}/{args.prefix}",
        )
        out.write(f"{count:,} objects under {source}\n")
        if args.dry_run:
            etag = "(the manifest's ETag, once uploaded)"
            out.write("manifest starts:\n" + "".join(body.splitlines(keepends=True)[:5]))
        else:
            etag = s3.put_object(Bucket=args.jobs_bucket, Key=key, Body=body.encode(), ContentType="text/csv")["ETag"].strip('"')
    manifest = {"Spec": spec, "Location": {"ObjectArn": f"arn:aws:s3:::{args.jobs_bucket}/{key}", "ETag": etag}}
    account_id = args.account_id or sts.get_caller_identity()["Account"]
    request = job_request(
        account_id=account_id,
        function_arn=args.function_arn,
        role_arn=args.role_arn,
        jobs_bucket=args.jobs_bucket,
        manifest=manifest,
        options=options,
        source=source,
    )
    if args.dry_run:
        out.write("would call s3control create_job with:\n" + json.dumps(request, indent=2) + "\n")
        return request
    job_id = s3control.create_job(**request)["JobId"]
    out.write(f"job {job_id} created; follow it with: aws s3control describe-job --account-id {account_id} --job-id {job_id}\n")
    out.write(f"failed tasks will be reported under s3://{args.jobs_bucket}/{REPORTS}/\n")
    return request


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prefix", nargs="?", default="", help="cut out every object under this key prefix")
    parser.add_argument("--bucket", help="the bucket holding the photos (the stack's InputBucketName)")
    parser.add_argument("--inventory", help="s3:// URL of an S3 Inventory manifest.json to use instead of listing")
    parser.add_argument("--jobs-bucket", required=True, help="where manifests and reports go (the stack's OutputBucketName)")
    parser.add_argument("--function-arn", required=True, help="the stack's BatchFunctionArn")
    parser.add_argument("--role-arn", required=True, help="the stack's BatchOperationsRoleArn")
    parser.add_argument("--option", action="append", default=[], help="an option as name=value, e.g. format=webp (repeatable)")
    parser.add_argument("--account-id", help="the AWS account (default: the caller's, from STS)")
    parser.add_argument("--dry-run", action="store_true", help="print the request; upload and create nothing")
    return parser


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if not args.inventory and not args.bucket:
        parser().error("--bucket is required unless --inventory is given")
    try:
        create(args, s3=boto3.client("s3"), s3control=boto3.client("s3control"), sts=boto3.client("sts"))
    except InvalidOption as error:
        raise SystemExit(f"--option: {error.message}") from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
