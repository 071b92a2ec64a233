"""scripts/fuzz_decode.py (`make fuzz`) is bounded: libFuzzer reads -max_total_time=0 as "no limit"."""

import subprocess
import sys

import pytest

pytest.importorskip(
    "atheris", reason="atheris is missing: requirements-dev.txt installs it on Linux x86_64, Python 3.11-3.13 (its wheels)"
)


def test_zero_seconds_exits_2_instead_of_fuzzing_without_end(repo_root):
    # Were the check gone, FUZZ_SECONDS=0 would fuzz until killed: this timeout is then the failure.
    run = subprocess.run(
        [sys.executable, str(repo_root / "scripts" / "fuzz_decode.py"), "--seconds", "0"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2, run.stderr[-2000:]
    assert "--seconds: must be a whole number of at least 1, not '0'" in run.stderr
