"""The README documents every CLI option and every API option (the names users type), and its
signing recipes sign what the handler accepts."""

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import redirect_stdout
from dataclasses import fields

import pytest

from handler.cli import build_parser
from handler.errors import BadSignature
from handler.options import Options
from scripts import sam_template


@pytest.fixture(scope="module")
def readme(repo_root) -> str:
    return (repo_root / "README.md").read_text()


def cli_flags() -> list[str]:
    return [flag for action in build_parser()._actions for flag in action.option_strings if flag.startswith("--")]


@pytest.mark.parametrize("flag", cli_flags())
def test_every_cli_option_is_in_the_readme(readme, flag):
    assert f"`{flag}" in readme or f" {flag}" in readme, f"README.md does not mention {flag}"


@pytest.mark.parametrize("name", [field.name for field in fields(Options)])
def test_every_api_option_is_in_the_readme(readme, name):
    assert f"`{name}`" in readme, f"README.md does not document the option {name}"


@pytest.mark.parametrize("command", ["make demo", "make test", "make serve", "make lint", "make bench", "make eval"])
def test_make_targets_are_documented(readme, command):
    assert command in readme


def test_bare_pytest_as_the_readme_runs_it_finds_the_project(readme, repo_root):
    # GIVEN the README's `pytest -m "not quality"`: the console script puts its own folder first on
    # sys.path, not the working directory as `python -m pytest` does (-P runs pytest that way)
    assert 'pytest -m "not quality"' in readme
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    # WHEN it collects a test module that imports the handler package
    command = [sys.executable, "-P", "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests/unit/test_model.py"]
    completed = subprocess.run(command, cwd=repo_root, env=env, capture_output=True, text=True, timeout=120)
    # THEN the conftest and the tests import `handler` and `scripts` from the repo
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "tests/unit/test_model.py::test_model_signature" in completed.stdout


def test_the_readme_activates_the_virtual_environment_before_its_first_python_command(readme):
    # GIVEN the README's commands, as a new user copies them: `python ...` is the system's Python
    # unless .venv is activated, and that one has none of the pinned packages (no PIL, no Powertools)
    commands = [line.split("#")[0].strip() for line in readme.splitlines() if line.startswith("    ")]
    first_python = next(n for n, command in enumerate(commands) if command.startswith("python "))
    # THEN a command before the first of them activates the environment `make` set up
    assert ". .venv/bin/activate" in commands[:first_python], "README runs `python` before it activates .venv"


def test_the_readme_says_what_api_is_before_its_first_curl_uses_it(readme):
    # GIVEN the README's curl examples, which send to "$API/remove": unset, curl is sent to "/remove"
    first_use = readme.index("$API")
    # THEN the README has set API (to the local server's address) by then
    assert "API=http://127.0.0.1:3000" in readme[:first_use], "README uses $API before it says what API is"


def signing_recipe(readme: str, language: str) -> str:
    """The code block under the README's ``<!-- signing recipe: LANGUAGE -->`` marker."""
    after = readme.split(f"<!-- signing recipe: {language} -->", 1)[1]
    return after.split("```", 2)[1].split("\n", 1)[1]


def accepted_key(url: str, secret: str) -> str:
    """The key the handler reads from a signed URL, after checking its signature (as a REST API passes it on)."""
    from urllib.parse import parse_qs, urlsplit

    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

    from handler.request import parse_cutout_request

    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    event = {"path": parts.path, "httpMethod": "GET", "headers": {}, "multiValueQueryStringParameters": query}
    return parse_cutout_request(APIGatewayProxyEvent(event), secret=secret, now=time.time()).key


# Keys as users name their photos: what each recipe must encode in the path and sign as it is.
RECIPE_KEYS = [
    "products/mug 12 + café.jpg",
    "Фото 2024.jpg",
    "cafe\u0301.jpg",  # NFD, as macOS writes names
    "my photo+1 (copy).HEIC",
    "100%.png",
    "a#b?.jpg",
    "\U0001f600 smile.jpg",
    "a//b.jpg",
    "/leading slash.jpg",
    "trailing space.jpg ",
    "it's *!~.jpg",
]
RECIPE_OPTIONS = {"background": "#ffffff", "format": "jpeg", "crop": True, "max_size": 800}


@pytest.mark.parametrize("key", RECIPE_KEYS)
def test_the_python_signing_recipe_signs_what_the_handler_accepts(readme, key):
    namespace = {}
    exec(signing_recipe(readme, "python"), namespace)
    url = namespace["cutout_url"]("https://cdn.example/cutouts/", key, RECIPE_OPTIONS, "s3cret", expires_in=600)
    assert accepted_key(url, "s3cret") == key
    with pytest.raises(BadSignature):
        accepted_key(url, "another secret")


@pytest.mark.parametrize("key", RECIPE_KEYS)
def test_the_javascript_signing_recipe_signs_what_the_handler_accepts(readme, tmp_path, key):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the JavaScript recipe cannot be run")
    script = tmp_path / "sign.js"
    call = f"cutoutUrl('https://cdn.example/cutouts/', {json.dumps(key)}, {json.dumps(RECIPE_OPTIONS)}, 's3cret', 600)"
    script.write_text(signing_recipe(readme, "javascript") + f"\nconsole.log({call});\n")
    url = subprocess.run([node, str(script)], capture_output=True, text=True, check=True).stdout.strip()
    assert accepted_key(url, "s3cret") == key
    with pytest.raises(BadSignature):
        accepted_key(url.replace("max_size=800", "max_size=801"), "s3cret")


@pytest.mark.parametrize("key", RECIPE_KEYS)
def test_sign_url_py_signs_what_the_recipes_sign(readme, key):
    from scripts.sign_url import signed_url

    namespace = {}
    exec(signing_recipe(readme, "python"), namespace)
    options = {name: str(value).lower() if value is True else str(value) for name, value in RECIPE_OPTIONS.items()}
    recipe = namespace["cutout_url"]("https://cdn.example/cutouts/", key, options, "s3cret")
    assert signed_url("https://cdn.example/cutouts/", "s3cret", key, options) == recipe


def revocation_steps(readme: str) -> str:
    """The commands under the README's "Revoking every URL"."""
    return readme.split("**Revoking every URL**", 1)[1].split("\n\n", 2)[1]


def test_the_new_secret_of_the_revocation_steps_passes_as_a_command_line_argument(readme):
    # GIVEN the one-liner that makes the new secret in the README's revocation steps
    (program,) = re.findall(r"python3 -c '([^']+)'", revocation_steps(readme))
    # WHEN it makes a thousand values
    values = []
    for _ in range(1000):
        printed = io.StringIO()
        with redirect_stdout(printed):
            exec(program, {})
        values.append(printed.getvalue().strip())
    # THEN each is taken as the value of an option, as `aws secretsmanager put-secret-value
    # --secret-string` and `scripts/sign_url.py --secret` take it (both argparse). Regression: a
    # token_urlsafe value starts with '-' once in 64 draws, which argparse reads as another option
    # ("expected one argument"): the revocation failed, or the new secret could not be passed on
    parser = argparse.ArgumentParser(exit_on_error=False)
    parser.add_argument("--secret-string")
    for value in values:
        assert parser.parse_args(["--secret-string", value]).secret_string == value
    assert len(set(values)) == len(values) and min(map(len, values)) >= 64


def test_the_revocation_steps_drop_cloudfronts_copies_once_no_environment_holds_the_old_secret(readme):
    # GIVEN how long the API function keeps the secret it read, and how long a request may run (template.yaml)
    api = sam_template.load()["Resources"]["ApiFunction"]["Properties"]
    kept = int(api["Environment"]["Variables"]["POWERTOOLS_PARAMETERS_MAX_AGE"])
    # WHEN the README's revocation steps run in order
    steps = revocation_steps(readme)
    wait = re.search(r"^\s*sleep (\d+)", steps, re.MULTILINE)
    # THEN they wait that long between the new value and the invalidation. Regression: invalidated at
    # once, an old URL fetched in those minutes reached an environment still holding the old secret,
    # and CloudFront kept its 200 for CutoutMaxAge (a day) after the "revocation"
    assert wait is not None and int(wait.group(1)) >= kept + api["Timeout"]
    assert steps.index("put-secret-value") < wait.start() < steps.index("create-invalidation")


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (415, {"error": {"code": "unsupported_media_type", "message": "not an image"}}, "not an image"),
        (502, {"message": "Internal server error"}, "Internal server error"),  # API Gateway's own: a body too big
    ],
)
def test_the_browser_example_reports_the_apis_errors_and_api_gateways(readme, tmp_path, status, body, message):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the JavaScript example cannot be run")
    # GIVEN the README's first browser example, up to its use of the answer, and a fetch that answers an error
    example = readme.split("From a browser", 1)[1].split("```js\n", 1)[1].split("img.src", 1)[0]
    answer = f"new Response({json.dumps(json.dumps(body))}, {{status: {status}}})"
    script = tmp_path / "example.mjs"
    script.write_text(
        f"const fetch = async () => {answer};\n"
        "const API = 'http://api.example', file = new Blob(['x'], {type: 'image/jpeg'});\n"
        f"try {{\n{example}\nconsole.log('no error');\n}}\n"
        "catch (error) { console.log(error.constructor.name, error.message); }\n"
    )
    # WHEN node runs it
    printed = subprocess.run([node, str(script)], capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    # THEN it throws the error's own message, not a TypeError from reading .error of API Gateway's {"message"}
    assert printed == f"Error {message}"
