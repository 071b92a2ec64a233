"""The README documents every CLI option and every API option (the names users type)."""

from dataclasses import fields

import pytest

from handler.cli import build_parser
from handler.options import Options


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
