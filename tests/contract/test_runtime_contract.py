"""The image's runtime contract, without Docker: each function's CMD from template.yaml runs under
`python -m awslambdaric` (what the AWS base image runs) against a local Runtime API stub.

The task root is staged from what the Dockerfile copies (filtered by .dockerignore), the
process gets the Dockerfile's ENV and the function's environment from the template, and S3 is
a local moto server. So this proves that the handler strings import from the image's files
alone, answer the committed events correctly, report errors the way Lambda expects, and write
nothing outside /tmp.
"""

import ast
import base64
import io
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import unquote_plus

import boto3
import pytest
from helpers import example_photo
from lambda_runtime_stub import RuntimeApiStub
from PIL import Image

from scripts import sam_template

pytest.importorskip(
    "awslambdaric", reason="awslambdaric is missing: requirements-dev.txt installs it on Linux only, where it has wheels"
)

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"
TEMPLATE = sam_template.load()
FUNCTIONS = sam_template.functions(TEMPLATE)
BUCKETS = {"InputBucket": "bgremove-input", "OutputBucket": "bgremove-output"}
# What the template's references stand for here (the secret is read only for GET /cutouts).
RESOURCE_NAMES = {
    **BUCKETS,
    "UrlSigningSecret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bgremove-url-signing",
    "AWS::StackName": "bgremove",
}
# Which committed events each entry point must answer.
EVENTS_FOR = {
    "handler.app.api_handler": ["apigw-rest.json", "apigw-http.json"],
    "handler.app.queue_handler": ["sqs-s3-put.json"],
    "handler.app.batch_handler": ["s3-batch-invocation.json", "s3-batch-invocation-v2.json"],
}
ANSWER_LIMIT_S = 180  # a hang guard, not a speed check: import + model load + inference on a busy CI box


def dockerfile_instructions(keyword: str) -> list[str]:
    return [arguments for found, arguments in sam_template.image_instructions(TEMPLATE) if found == keyword]


def image_environment(task_root: Path) -> dict[str, str]:
    """The Dockerfile's ENV, plus what the base image and Lambda set."""
    env = {
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "PATH": os.environ["PATH"],
    }
    for arguments in dockerfile_instructions("ENV"):
        env.update(pair.split("=", 1) for pair in arguments.split())
    # Kept when the machine sets them: some CPUs need them for numpy's OpenBLAS.
    env.update({name: value for name, value in os.environ.items() if name.startswith("OPENBLAS_")})
    return env


@pytest.fixture(scope="module")
def task_root(tmp_path_factory) -> Path:
    """LAMBDA_TASK_ROOT as the image has it: the Dockerfile's COPY sources, minus .dockerignore."""
    allowed = [line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")]
    root = tmp_path_factory.mktemp("task")
    for arguments in dockerfile_instructions("COPY"):
        source, destination = arguments.split()
        assert destination.startswith("${LAMBDA_TASK_ROOT}"), f"COPY {arguments}: only the task root is staged here"
        for path in [ROOT / source] if (ROOT / source).is_file() else sorted((ROOT / source).rglob("*")):
            relative = path.relative_to(ROOT).as_posix()
            sent = any(relative == entry or relative.startswith(entry + "/") for entry in allowed)
            if path.is_file() and sent and "__pycache__" not in relative and not fnmatch(relative, "*.pyc"):
                (root / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, root / relative)
    return root


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def s3(s3_endpoint):
    # moto keeps one state per process, shared by every server it starts: clear what earlier
    # test modules left in these buckets (the worker check counts the results it finds).
    urllib.request.urlopen(urllib.request.Request(f"{s3_endpoint}/moto-api/reset", method="POST")).read()
    client = boto3.client(
        "s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    for bucket in BUCKETS.values():
        client.create_bucket(Bucket=bucket)
    return client


class Runtime:
    """One `python -m awslambdaric <CMD>` process on a Runtime API stub."""

    def __init__(self, stub: RuntimeApiStub, process: subprocess.Popen, log: Path):
        self.stub, self.process, self.log = stub, process, log

    def invoke(self, event: dict):
        request_id = self.stub.enqueue(event)
        outcome = self.stub.next_outcome(alive=lambda: self.process.poll() is None, limit_s=ANSWER_LIMIT_S)
        assert outcome.request_id == request_id, f"{outcome.kind} for {outcome.request_id}; log:\n{self.log.read_text()}"
        return outcome


@pytest.fixture
def start_runtime(task_root, s3_endpoint, tmp_path):
    """``start_runtime(function, handler=None)``: its CMD (or another handler string) running."""
    started = []

    def start(function: sam_template.Function, handler: str | None = None) -> Runtime:
        timeout = int(sam_template.resolve(function.timeout, TEMPLATE, RESOURCE_NAMES))
        stub = RuntimeApiStub(function_name=function.name, timeout_s=timeout).__enter__()
        env = image_environment(task_root)
        env.update({name: sam_template.resolve(value, TEMPLATE, RESOURCE_NAMES) for name, value in function.environment.items()})
        env.update(
            AWS_LAMBDA_RUNTIME_API=stub.address,
            AWS_LAMBDA_FUNCTION_NAME=function.name,
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE=sam_template.resolve(function.memory, TEMPLATE, BUCKETS),
            AWS_ENDPOINT_URL=s3_endpoint,
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
            TMPDIR=str(tmp_path),
        )
        log = tmp_path / f"{function.name}.log"
        with log.open("wb") as sink:
            command = [sys.executable, "-m", "awslambdaric", handler or function.handler]
            process = subprocess.Popen(command, cwd=task_root, env=env, stdout=sink, stderr=subprocess.STDOUT)
        started.append((stub, process))
        return Runtime(stub, process, log)

    yield start
    for stub, process in started:
        process.kill()
        process.wait()
        stub.__exit__(None, None, None)


def files_under(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in root.rglob("*")}


def require_contract(function: sam_template.Function) -> list[Path]:
    """The function's contract events; skip while its handler or events have not landed."""
    module, _, name = function.handler.rpartition(".")
    source = ROOT / (module.replace(".", "/") + ".py")
    defined = {
        target.id if isinstance(target, ast.Name) else getattr(target, "name", None)
        for node in ast.parse(source.read_text()).body
        for target in (node.targets if isinstance(node, ast.Assign) else [node])
    }
    if name not in defined:
        pytest.skip(f"{function.handler} (the CMD of {function.name}) is not defined in {source.relative_to(ROOT)} yet")
    paths = [EVENTS / name for name in EVENTS_FOR[function.handler]]
    if missing := [path.name for path in paths if not path.exists()]:
        pytest.skip(f"contract events for {function.name} are not committed yet: {', '.join(missing)}")
    return paths


def test_every_function_has_contract_events():
    # GIVEN the template's functions THEN each entry point is covered below.
    assert FUNCTIONS, "template.yaml defines no function"
    assert {function.handler for function in FUNCTIONS} <= set(EVENTS_FOR)


def assert_cutout_of(body: bytes, source: bytes, image_format: str = "PNG") -> None:
    result, original = Image.open(io.BytesIO(body)), Image.open(io.BytesIO(source))
    assert (result.format, result.mode, result.size) == (image_format, "RGBA", original.size)
    alpha = result.getchannel("A")
    assert alpha.getextrema()[0] < 128 < alpha.getextrema()[1], "a cut-out has both background and subject"


def check_api_answer(event: dict, answer: dict, s3) -> None:
    assert answer["statusCode"] == 200, answer
    assert answer["isBase64Encoded"] is True
    # REST (v1) answers may carry headers only in multiValueHeaders.
    headers = {name.lower(): values[-1] for name, values in (answer.get("multiValueHeaders") or {}).items()}
    headers.update({name.lower(): value for name, value in (answer.get("headers") or {}).items()})
    assert headers["content-type"] == "image/png"
    assert_cutout_of(base64.b64decode(answer["body"]), base64.b64decode(event["body"]))


def seed_uploads(event: dict, s3) -> list[tuple[str, str, bytes]]:
    """Put a real photo at every object the SQS batch announces."""
    photo = io.BytesIO()
    example_photo("coffee", (160, 120)).save(photo, "JPEG", quality=90)
    uploads = []
    for record in event["Records"]:
        for s3_record in json.loads(record["body"])["Records"]:
            bucket, key = s3_record["s3"]["bucket"]["name"], unquote_plus(s3_record["s3"]["object"]["key"])
            assert bucket == BUCKETS["InputBucket"], f"the event's bucket {bucket} is not the input bucket"
            s3.put_object(Bucket=bucket, Key=key, Body=photo.getvalue())
            uploads.append((bucket, key, photo.getvalue()))
    return uploads


def check_queue_answer(event: dict, answer: dict, s3, uploads) -> None:
    assert answer == {"batchItemFailures": []}
    prefix = sam_template.parameter_defaults(TEMPLATE)["ResultPrefix"]
    results = s3.list_objects_v2(Bucket=BUCKETS["OutputBucket"], Prefix=prefix).get("Contents", [])
    assert len(results) == len(uploads)
    for result in results:
        assert_cutout_of(s3.get_object(Bucket=BUCKETS["OutputBucket"], Key=result["Key"])["Body"].read(), uploads[0][2])


def seed_batch_task(event: dict, s3) -> bytes:
    """Put a real photo at the object the Batch Operations task names (bucket by ARN in 1.0, by name in 2.0)."""
    (task,) = event["tasks"]
    bucket = task["s3BucketArn"].split(":::")[-1] if "s3BucketArn" in task else task["s3Bucket"]
    assert bucket == BUCKETS["InputBucket"], f"the event's bucket {bucket} is not the input bucket"
    photo = io.BytesIO()
    example_photo("astronaut", (120, 90)).save(photo, "JPEG", quality=90)
    s3.put_object(Bucket=bucket, Key=unquote_plus(task["s3Key"]), Body=photo.getvalue())
    return photo.getvalue()


def check_batch_answer(event: dict, answer: dict, s3, photo: bytes) -> None:
    assert {name: answer[name] for name in ("invocationSchemaVersion", "invocationId")} == {
        "invocationSchemaVersion": event["invocationSchemaVersion"],
        "invocationId": event["invocationId"],
    }
    assert answer["treatMissingKeysAs"] == "PermanentFailure"
    (result,) = answer["results"]
    assert result["taskId"] == event["tasks"][0]["taskId"] and result["resultCode"] == "Succeeded", result
    bucket, _, key = result["resultString"].removeprefix("s3://").partition("/")
    assert bucket == BUCKETS["OutputBucket"]
    image_format = event["job"].get("userArguments", {}).get("format", "png").upper()
    assert_cutout_of(s3.get_object(Bucket=bucket, Key=key)["Body"].read(), photo, image_format)


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda function: function.name)
def test_function_cmd_answers_its_events(function, start_runtime, task_root, s3):
    # GIVEN the function's CMD running in the runtime client, on the image's files only
    event_paths = require_contract(function)
    before = files_under(task_root)
    runtime = start_runtime(function)
    for path in event_paths:
        event = json.loads(path.read_text())
        uploads = seed_uploads(event, s3) if function.handler.endswith("queue_handler") else None
        batch_photo = seed_batch_task(event, s3) if function.handler.endswith("batch_handler") else None
        # WHEN Lambda invokes it with a committed event
        outcome = runtime.invoke(event)
        # THEN it posts a JSON response, not an error, and the answer is right
        assert outcome.kind == "response", f"{path.name}: {outcome.kind} {outcome.body[:2000]!r}"
        if batch_photo is not None:
            check_batch_answer(event, outcome.json(), s3, batch_photo)
        elif uploads is None:
            check_api_answer(event, outcome.json(), s3)
        else:
            check_queue_answer(event, outcome.json(), s3, uploads)
    # AND the read-only task root was not written to
    assert files_under(task_root) == before


def test_handler_that_does_not_exist_is_an_init_error(start_runtime):
    # GIVEN a CMD naming a handler the module lacks
    api = next(function for function in FUNCTIONS if function.handler == "handler.app.api_handler")
    require_contract(api)
    runtime = start_runtime(api, handler="handler.app.no_such_handler")
    # WHEN the runtime starts THEN it reports an init error the way Lambda expects, and exits
    outcome = runtime.stub.next_outcome(alive=lambda: runtime.process.poll() is None, limit_s=ANSWER_LIMIT_S)
    assert outcome.kind == "init_error"
    assert outcome.headers["Lambda-Runtime-Function-Error-Type"] == "Runtime.HandlerNotFound"
    assert outcome.json()["errorMessage"] == "Handler 'no_such_handler' missing on module 'handler.app'"
    assert runtime.process.wait(timeout=ANSWER_LIMIT_S) == 1


def test_batch_whose_every_upload_fails_is_a_function_error(start_runtime, s3):
    # GIVEN the worker and a batch whose only upload is not an image
    worker = next(function for function in FUNCTIONS if function.handler == "handler.app.queue_handler")
    (event_path,) = require_contract(worker)
    event = json.loads(event_path.read_text())
    for bucket, key, _ in seed_uploads(event, s3):
        s3.put_object(Bucket=bucket, Key=key, Body=b"these bytes are not an image")
    runtime = start_runtime(worker)
    # WHEN Lambda invokes it
    outcome = runtime.invoke(event)
    # THEN the invocation fails the way Lambda expects (so the whole batch goes back to the
    # queue, and on to the dead-letter queue after maxReceiveCount): error type in the header
    # and in the body, with a message, never a stack trace posing as a response
    assert outcome.kind == "error", outcome.body
    error = outcome.json()
    # awslambdaric 4.x names the error type in the body only (earlier clients also sent a header).
    assert error["errorType"] == "BatchProcessingError"
    assert outcome.headers.get("Lambda-Runtime-Function-Error-Type", "BatchProcessingError") == "BatchProcessingError"
    assert error["errorMessage"] and isinstance(error["stackTrace"], list)
    assert error["requestId"] == outcome.request_id
