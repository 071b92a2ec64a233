"""scripts/cost.py (`make cost`) refuses counts that would fail only after its run."""

import subprocess
import sys

import pytest


def run_cost(repo_root, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(repo_root / "scripts" / "cost.py"), *arguments],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(("option", "value"), [("--repeats", "0"), ("--rounds", "0"), ("--repeats", "-1")])
def test_counts_under_one_exit_2_before_anything_is_measured(repo_root, option, value):
    # One size and no levers: were the check gone, a machine with cgroups (root) would measure for seconds, not minutes.
    run = run_cost(repo_root, "--sizes", "3008", "--no-levers", option, value)
    assert run.returncode == 2, run.stderr[-2000:]
    assert f"{option}: must be a whole number of at least 1, not {value!r}" in run.stderr


@pytest.mark.parametrize("sizes", ["abc", "3008,", "64", "20000", "512", "1024,512"])
def test_memory_sizes_the_template_cannot_have_exit_2_before_anything_is_measured(repo_root, sizes):
    # Before the check: a ValueError traceback after the photos were made (as root), or a skip that exits 0 elsewhere.
    # 512 MB is a size Lambda has but template.yaml's MinValue refuses: measured, it came back as
    # "defaults from this curve: ApiMemorySize=512 WorkerMemorySize=512", which `sam deploy` rejects.
    run = run_cost(repo_root, "--sizes", sizes, "--no-levers")
    assert run.returncode == 2, run.stderr[-2000:]
    limits = "from 1024 to 10240 (what template.yaml allows ApiMemorySize and WorkerMemorySize)"
    assert f"--sizes: must be memory sizes in MB {limits}, comma separated, not {sizes!r}" in run.stderr
