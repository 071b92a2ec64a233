"""The Dockerfile builds the image template.yaml expects, from the pins the tests use."""

import ast
import importlib.metadata
import json
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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


def pinned_in(requirements: Path) -> dict[str, Requirement]:
    """The requirements a file names itself, by canonical name."""
    lines = [line.split("#")[0].strip() for line in requirements.read_text().splitlines()]
    requirements = [Requirement(line) for line in lines if line and not line.startswith("-")]
    return {canonicalize_name(requirement.name): requirement for requirement in requirements}


def installed_by(requirements: Path) -> set[str]:
    """The distributions `pip install -r requirements` brings: the pins and what they require."""
    pending = list(pinned_in(requirements))
    found = set()
    while pending:
        name = canonicalize_name(pending.pop())
        if name not in found:
            found.add(name)
            needs = [Requirement(text) for text in importlib.metadata.requires(name) or []]
            pending += [need.name for need in needs if need.marker is None or need.marker.evaluate({"extra": ""})]
    return found


def test_the_handler_imports_only_what_the_image_installs():
    # The contract test runs the image's CMD on the development venv, so it cannot see an import
    # that only requirements-dev.txt provides: in the image that is an init error.
    modules = set()
    for source in (ROOT / "handler").glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.partition(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules.add(node.module.partition(".")[0])
    third_party = modules - set(sys.stdlib_module_names) - {"handler"}
    providers = importlib.metadata.packages_distributions()
    image = installed_by(ROOT / "requirements.txt")
    missing = {module for module in third_party if not {canonicalize_name(d) for d in providers.get(module, [])} & image}
    assert not missing, f"handler/ imports {sorted(missing)}, which requirements.txt does not install"


def test_everything_the_image_installs_is_pinned_to_the_version_the_tests_run():
    # Unpinned, what the runtime pins require (botocore, protobuf, urllib3...) would be resolved
    # afresh by each `sam build`: an image could run code the tests never saw.
    pins = pinned_in(ROOT / "requirements.txt")
    unpinned = installed_by(ROOT / "requirements.txt") - set(pins)
    assert not unpinned, f"requirements.txt installs {sorted(unpinned)} without pinning them"
    for name, requirement in pins.items():
        (specifier,) = requirement.specifier
        assert specifier.operator == "==" and specifier.version == importlib.metadata.version(name), name
