"""scripts/invoke.py: the real handler on a committed event file, its return value on stdout as JSON."""

import base64
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def invoke(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "scripts/invoke.py", *arguments], cwd=REPO_ROOT, capture_output=True, text=True)


@pytest.mark.parametrize("event", ["apigw-rest.json", "apigw-http.json"])
def test_prints_the_handlers_return_value(event):
    # WHEN the committed event runs through the api handler
    result = invoke("api", f"tests/events/{event}")
    # THEN stdout is exactly the proxy response as JSON: a base64 PNG with alpha
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert (response["statusCode"], response["isBase64Encoded"]) == (200, True)
    image = Image.open(io.BytesIO(base64.b64decode(response["body"])))
    assert (image.format, image.mode) == ("PNG", "RGBA")
    # AND the handler's logs and EMF metrics went to stderr
    assert '"CloudWatchMetrics"' in result.stderr and '"InputPixels"' in result.stderr


def test_refuses_an_unknown_kind_and_a_missing_file():
    assert invoke("nope", "tests/events/apigw-rest.json").returncode == 2
    missing = invoke("api", "tests/events/no-such-event.json")
    assert missing.returncode == 2 and "cannot read the event" in missing.stderr


def test_a_function_error_is_reported_as_lambda_reports_it(tmp_path):
    # GIVEN an event the S3 handler cannot read: a queue message's body sent to it by mistake
    event = tmp_path / "not-s3.json"
    event.write_text(json.dumps({"Event": "something else"}))
    # WHEN it is invoked
    result = invoke("s3", str(event))
    # THEN stdout holds Lambda's error JSON, the exit status says it failed, and the trace is in the log
    assert result.returncode == 1, result.stderr
    failure = json.loads(result.stdout)
    assert failure["errorType"] == "ValueError" and "not an S3 event notification" in failure["errorMessage"]
    assert failure["stackTrace"] and failure["requestId"]
    assert "Traceback" in result.stderr
