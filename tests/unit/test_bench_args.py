"""scripts/bench.py (`make bench`) refuses arguments that would fail, or mislead, only after its run."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("arguments", "environment", "message"),
    [
        (["--rounds", "0"], {}, "--rounds: must be a whole number of at least 1"),
        (["--cold-runs", "-1"], {}, "--cold-runs: must be a whole number of at least 1"),
        ([], {"BENCH_PHOTOS": "no-such-folder"}, "BENCH_PHOTOS: no-such-folder is not a folder"),
    ],
    ids=["rounds", "cold-runs", "photos"],
)
def test_bad_arguments_exit_2_before_anything_runs(repo_root, tmp_path, arguments, environment, message):
    run = subprocess.run(
        [sys.executable, str(repo_root / "scripts" / "bench.py"), *arguments],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", **environment},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert message in run.stderr
