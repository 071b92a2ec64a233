"""Run a Lambda handler on an event file and print its return value as JSON, like `sam local invoke`.

    python scripts/invoke.py api tests/events/apigw-rest.json
    python scripts/invoke.py api tests/events/apigw-http.json | jq -r .body | base64 -d > cutout.png

The handler's logs and EMF metrics go to stderr, so stdout holds only the return value, or a
function error as Lambda reports one (errorMessage, errorType, stackTrace; exit status 1).
"""

import argparse
import contextlib
import importlib
import json
import os
import sys
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
HANDLERS = {
    "api": "handler.app.api_handler",
    "s3": "handler.app.s3_handler",
    "queue": "handler.app.queue_handler",
    "batch": "handler.app.batch_handler",
}
# What template.yaml's Globals set in AWS; a local run needs them too (Metrics needs a namespace).
LOCAL_ENV = {"POWERTOOLS_SERVICE_NAME": "bgremove", "POWERTOOLS_METRICS_NAMESPACE": "BackgroundRemoval"}


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name: str = "bgremove-local"
    memory_limit_in_mb: int = 3008
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:bgremove-local"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def load_handler(kind: str):
    """The handler function for ``kind`` (a key of HANDLERS), imported with the local environment."""
    for name, value in LOCAL_ENV.items():
        os.environ.setdefault(name, value)
    sys.path.insert(0, str(REPO_ROOT))
    module_name, function_name = HANDLERS[kind].rsplit(".", 1)
    return getattr(importlib.import_module(module_name), function_name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "kind", choices=sorted(HANDLERS), help="which handler: " + ", ".join(f"{k} = {v}" for k, v in HANDLERS.items())
    )
    parser.add_argument("event", type=Path, help="event JSON file, e.g. tests/events/apigw-rest.json")
    args = parser.parse_args(argv)
    try:
        event = json.loads(args.event.read_text())
    except (OSError, json.JSONDecodeError) as error:
        parser.error(f"cannot read the event {args.event}: {error}")
    context = LambdaContext()
    # Powertools' Logger binds its stream at import, so the import happens inside the redirect too.
    with contextlib.redirect_stdout(sys.stderr):
        handler = load_handler(args.kind)
        try:
            response = handler(event, context)
        except Exception as error:
            # A function error, as Lambda (and `sam local invoke`) reports one: JSON on stdout,
            # the trace in the log too, and a failing exit status for scripts.
            traceback.print_exc()
            failure = {
                "errorMessage": str(error),
                "errorType": type(error).__name__,
                "requestId": context.aws_request_id,
                "stackTrace": traceback.format_tb(error.__traceback__),
            }
            print(json.dumps(failure, indent=2), file=sys.__stdout__)
            return 1
    print(json.dumps(response, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
