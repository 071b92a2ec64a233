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


@pytest.mark.parametrize(("system", "machine"), [("darwin", "arm64"), ("linux", "aarch64")])
def test_off_linux_x86_64_it_exits_2_saying_why_before_anything_runs(repo_root, system, machine):
    # GIVEN a Mac (no /proc/cpuinfo, no /proc/self/status for peak RSS) or an ARM Linux, whose /proc/cpuinfo
    # has no flags or "cpu MHz": the fp32 peak came out 0 GFLOP/s, a ZeroDivisionError after the whole run
    off_linux = (
        "import platform, sys; sys.path.insert(0, 'scripts'); import bench; sys.argv = ['bench.py']; "
        f"sys.platform = {system!r}; platform.machine = lambda: {machine!r}; bench.main()"
    )
    # (and a BENCH_PHOTOS that is no folder: were the check gone, that error would stop it before any work)
    environment = {"PATH": "/usr/bin:/bin", "BENCH_PHOTOS": "no-such-folder"}
    run = subprocess.run(
        [sys.executable, "-c", off_linux], cwd=repo_root, env=environment, capture_output=True, text=True, timeout=60
    )
    # THEN it stops before installing rembg into .bench-venv/ and timing anything
    assert run.returncode == 2
    assert "it reads x86 CPU flags and each side's peak RSS from /proc: Linux x86_64 only" in run.stderr
    assert "Traceback" not in run.stderr
