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


def test_off_linux_it_exits_2_saying_why_before_anything_runs(repo_root):
    # GIVEN a Mac, as Python reports it: no /proc/cpuinfo, no /proc/self/status (peak RSS)
    off_linux = "import sys; sys.path.insert(0, 'scripts'); import bench; sys.platform = 'darwin'; sys.argv = ['b']; bench.main()"
    # (and a BENCH_PHOTOS that is no folder: were the check gone, that error would stop it before any work)
    environment = {"PATH": "/usr/bin:/bin", "BENCH_PHOTOS": "no-such-folder"}
    run = subprocess.run(
        [sys.executable, "-c", off_linux], cwd=repo_root, env=environment, capture_output=True, text=True, timeout=60
    )
    # THEN it stops before installing rembg into .bench-venv/ and timing anything
    assert run.returncode == 2
    assert "it reads the CPU's flags and each side's peak RSS from /proc: Linux only" in run.stderr
    assert "Traceback" not in run.stderr
