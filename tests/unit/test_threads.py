"""The model's thread count: the CPU share the function has, not the CPUs it can see."""

from pathlib import Path

import pytest

from handler.settings import Settings, cpu_share

NO_CGROUP = Path("/nonexistent-cgroup-root")


def cgroup_v1(root: Path, quota_us: int, period_us: int = 100_000) -> Path:
    (root / "cpu").mkdir(parents=True)
    (root / "cpu" / "cpu.cfs_quota_us").write_text(f"{quota_us}\n")
    (root / "cpu" / "cpu.cfs_period_us").write_text(f"{period_us}\n")
    return root


def cgroup_v2(root: Path, cpu_max: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cpu.max").write_text(cpu_max + "\n")
    return root


@pytest.mark.parametrize(
    ("memory_mb", "visible", "threads"),
    [
        ("1024", 2, 1),  # 0.58 of a vCPU: one thread, never zero
        ("1769", 2, 1),  # one vCPU's worth, although Lambda shows two
        ("2048", 2, 1),  # 1.16
        ("3008", 2, 2),  # 1.70 rounds to 2
        ("10240", 6, 6),  # 5.79 rounds to 6, all it sees
        ("10240", 2, 2),  # never more than the visible CPUs
    ],
)
def test_lambda_memory_size_decides_the_threads(memory_mb, visible, threads):
    env = {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": memory_mb}
    assert cpu_share(env, cgroup_root=NO_CGROUP, visible=visible) == threads


@pytest.mark.parametrize(
    ("quota_us", "period_us", "threads"),
    [(100_000, 100_000, 1), (170_000, 100_000, 2), (50_000, 100_000, 1), (150_000, 100_000, 2), (250_000, 100_000, 2)],
)
def test_a_cgroup_v1_quota_decides_the_threads(tmp_path, quota_us, period_us, threads):
    root = cgroup_v1(tmp_path, quota_us, period_us)
    assert cpu_share({}, cgroup_root=root, visible=2) == threads


def test_a_cgroup_v2_quota_decides_the_threads(tmp_path):
    assert cpu_share({}, cgroup_root=cgroup_v2(tmp_path / "a", "100000 100000"), visible=4) == 1
    assert cpu_share({}, cgroup_root=cgroup_v2(tmp_path / "b", "300000 100000"), visible=4) == 3


@pytest.mark.parametrize("make", [lambda root: cgroup_v1(root, -1), lambda root: cgroup_v2(root, "max 100000")])
def test_no_quota_means_every_usable_cpu(tmp_path, make):
    assert cpu_share({}, cgroup_root=make(tmp_path), visible=3) == 3


def test_lambda_memory_wins_over_a_quota(tmp_path):
    root = cgroup_v1(tmp_path, 100_000)
    assert cpu_share({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "3008"}, cgroup_root=root, visible=2) == 2


def test_model_threads_overrides_memory_and_quota(tmp_path):
    root = cgroup_v1(tmp_path, 100_000)
    assert Settings.from_env({}, cgroup_root=root).threads == 1
    assert Settings.from_env({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769"}, cgroup_root=root).threads == 1
    env = {"MODEL_THREADS": "3", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769"}
    assert Settings.from_env(env, cgroup_root=root).threads == 3


def own_cgroup(tmp_path: Path, *lines: str) -> Path:
    """A /proc/self/cgroup naming the process's cgroups, one ``id:controllers:path`` line each."""
    path = tmp_path / "proc-self-cgroup"
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_a_quota_on_the_process_own_v1_cgroup_decides_the_threads(tmp_path):
    # The process sits in a cgroup below the mount (a systemd slice, or a group made as `make cost` makes
    # them): the mount's own files say "no quota", the process's group holds the half CPU.
    root = cgroup_v1(tmp_path / "sys", -1)
    service = root / "cpu" / "service"
    service.mkdir()
    (service / "cpu.cfs_quota_us").write_text("50000\n")
    (service / "cpu.cfs_period_us").write_text("100000\n")
    proc = own_cgroup(tmp_path, "4:memory:/", "1:cpu,cpuacct:/service", "0::/")
    assert cpu_share({}, cgroup_root=root, proc_cgroup=proc, visible=2) == 1


def test_a_quota_on_the_process_own_v2_cgroup_or_an_ancestor_decides_the_threads(tmp_path):
    # cgroup v2 without a cgroup namespace: the root has no cpu.max; a slice above the process limits it.
    root = tmp_path / "sys"
    cgroup_v2(root / "system.slice", "100000 100000")
    cgroup_v2(root / "system.slice" / "bgremove.service", "max 100000")
    proc = own_cgroup(tmp_path, "0::/system.slice/bgremove.service")
    assert cpu_share({}, cgroup_root=root, proc_cgroup=proc, visible=4) == 1


def test_a_cgroup_path_outside_the_mount_falls_back_to_the_mount(tmp_path):
    # Docker on cgroup v1 mounts the container's own group at /sys/fs/cgroup/cpu while
    # /proc/self/cgroup still names its path on the host.
    root = cgroup_v1(tmp_path / "sys", 50_000)
    proc = own_cgroup(tmp_path, "3:cpu,cpuacct:/docker/0123abcd")
    assert cpu_share({}, cgroup_root=root, proc_cgroup=proc, visible=2) == 1
    assert cpu_share({}, cgroup_root=root, proc_cgroup=tmp_path / "no-proc-here", visible=2) == 1
