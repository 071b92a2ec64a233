"""The bundled model file is the pinned U²-NetP, with the signature the segmenter relies on."""

import hashlib
import importlib.util
import shutil
import subprocess
import sys

import onnxruntime as ort
import pytest

from handler.segmenter import INPUT_SIZE
from handler.settings import BUNDLED_MODEL


@pytest.fixture(scope="module")
def fetch_model(repo_root):
    spec = importlib.util.spec_from_file_location("fetch_model", repo_root / "scripts" / "fetch_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bundled_model_matches_the_pinned_checksum(fetch_model):
    data = BUNDLED_MODEL.read_bytes()

    assert BUNDLED_MODEL == fetch_model.U2NETP.path
    assert len(data) == fetch_model.U2NETP.size == 4_574_861
    assert hashlib.sha256(data).hexdigest() == fetch_model.U2NETP.sha256
    assert hashlib.md5(data).hexdigest() == "8e83ca70e441ab06c318d82300c84806"  # rembg's release file


def test_fetch_model_check_passes_without_downloading(repo_root):
    completed = subprocess.run(
        [sys.executable, "scripts/fetch_model.py", "--check"], cwd=repo_root, capture_output=True, text=True, timeout=60
    )

    assert completed.returncode == 0, completed.stderr
    assert "ok" in completed.stdout


def test_what_fetch_model_downloads_beside_the_bundled_model_is_never_committed(fetch_model, repo_root):
    # GIVEN the files `fetch_model.py --full` writes: the 176 MB U²-Net ("not committed") and the
    # candidates it writes before checking a download's checksum
    git = shutil.which("git")
    inside = git and subprocess.run([git, "rev-parse"], cwd=repo_root, capture_output=True).returncode == 0
    if not inside:
        pytest.skip("not a git checkout")
    full, bundled = fetch_model.U2NET.path, fetch_model.U2NETP.path
    written = [full, full.with_suffix(".download"), bundled.with_suffix(".download")]
    paths = [path.relative_to(repo_root).as_posix() for path in written]
    # WHEN git is asked which of them it ignores
    completed = subprocess.run([git, "check-ignore", *paths], cwd=repo_root, capture_output=True, text=True)
    # THEN all of them: `git add -A` after a full fetch cannot put the model in the history
    assert completed.stdout.split() == paths


def test_model_signature():
    session = ort.InferenceSession(str(BUNDLED_MODEL), providers=["CPUExecutionProvider"])

    (model_input,) = session.get_inputs()
    assert model_input.name == "input.1"
    assert model_input.shape == [1, 3, INPUT_SIZE, INPUT_SIZE]
    assert model_input.type == "tensor(float)"
    outputs = session.get_outputs()
    assert len(outputs) == 7
    assert outputs[0].shape == [1, 1, INPUT_SIZE, INPUT_SIZE]
