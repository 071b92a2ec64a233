"""The Dockerfile builds the image template.yaml expects, from the pins the tests use."""

import json
from pathlib import Path

from scripts import sam_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = sam_template.load()


def instructions() -> list[tuple[str, str]]:
    return sam_template.image_instructions(TEMPLATE)


def test_base_image_is_the_lambda_python_runtime():
    assert instructions()[0] == ("FROM", "public.ecr.aws/lambda/python:3.12")


def test_default_cmd_is_the_api_handler_and_every_function_overrides_it():
    (cmd,) = [json.loads(arguments) for keyword, arguments in instructions() if keyword == "CMD"]
    handlers = {function.name: function.handler for function in sam_template.functions(TEMPLATE)}
    assert cmd == [handlers["ApiFunction"]]


def test_image_holds_only_the_pinned_requirements_the_model_and_the_code():
    copies = [arguments.split()[0] for keyword, arguments in instructions() if keyword == "COPY"]
    assert copies == ["requirements.txt", "model/", "handler/"], "dependencies first, code last: rebuilds stay fast"
    (install,) = [arguments for keyword, arguments in instructions() if keyword == "RUN" and "pip install" in arguments]
    assert "--only-binary=:all:" in install and "--no-cache-dir" in install
    assert install.endswith('-r "${LAMBDA_TASK_ROOT}/requirements.txt"')


def test_build_context_is_an_allowlist():
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*"
    allowed = {line for line in lines if line.startswith("!")}
    assert allowed == {"!requirements.txt", "!handler/", "!model/u2netp.onnx", "!model/README.md"}
