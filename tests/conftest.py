"""Shared fixtures: one U²-NetP session for the whole run, the repo root, the shared test data."""

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
TESTDATA = REPO_ROOT.parent / "shared" / "testdata"

# Test modules import the shared helpers as `from helpers import ...`.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from integration.conftest import log_lines  # noqa: E402, F401  (the JSON lines handler.app logged)
from localaws import aws, moto_endpoint, s3, sqs  # noqa: E402, F401  (fixtures for every test)
from s3.support import app, use_storage  # noqa: E402, F401


def pytest_configure(config):
    config.addinivalue_line("markers", "quality: mask quality on ../shared/testdata (part of the normal run, ~20 s)")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def testdata():
    """``testdata("sod")``: the folder ../shared/testdata/<name>, or skip when it is absent.

    The data is research-licensed, so it lives next to the repo and is never copied into it.
    """

    def require(name: str) -> Path:
        folder = TESTDATA / name
        if not (folder / "images").is_dir() or not (folder / "masks").is_dir():
            pytest.skip(f"{folder} is absent (images/ and masks/): the research-licensed test data lives outside the repo")
        return folder

    return require


@pytest.fixture(scope="session")
def segmenter():
    from handler.segmenter import Segmenter
    from handler.settings import BUNDLED_MODEL, available_cpus

    return Segmenter(BUNDLED_MODEL, threads=available_cpus())
