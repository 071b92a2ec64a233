"""Configuration from the environment, read once into one typed value."""

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

BUNDLED_MODEL = Path(__file__).resolve().parent.parent / "model" / "u2netp.onnx"
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
# Lambda gives a function CPU time in proportion to its memory: one vCPU's worth at 1,769 MB
# (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html), while it shows
# two CPUs at every size up to 3,008 MB.
MB_PER_VCPU = 1769


def available_cpus() -> int:
    """CPUs this process may run on: on Lambda what it shows (two up to 3,008 MB), not the CPU
    time its memory buys (``cpu_share``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _quota(cgroup: Path) -> float | None:
    """The CPUs one cgroup's CFS quota allows (v2 ``cpu.max``, or v1 ``cpu.cfs_quota_us`` over
    ``cpu.cfs_period_us``), or None where it sets none."""
    v2 = cgroup / "cpu.max"
    if v2.is_file():
        quota, _, period = v2.read_text().partition(" ")
        return None if quota == "max" else int(quota) / int(period)
    if (cgroup / "cpu.cfs_quota_us").is_file():
        quota = int((cgroup / "cpu.cfs_quota_us").read_text())
        return None if quota < 0 else quota / int((cgroup / "cpu.cfs_period_us").read_text())
    return None


def _own_cgroups(proc_cgroup: Path) -> dict[str, str]:
    """The process's cgroup paths from ``/proc/self/cgroup``: "" for the v2 hierarchy, "cpu" for v1's cpu controller."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:  # not Linux
        return {}
    paths = {}
    for line in lines:  # "id:controllers:path"; v2's line has no controllers
        _, controllers, path = line.split(":", 2)
        if controllers == "" or "cpu" in controllers.split(","):
            paths["cpu" if controllers else ""] = path
    return paths


def _with_ancestors(mount: Path, path: str) -> list[Path]:
    """The cgroup ``path`` under ``mount`` and every cgroup above it up to ``mount``: a quota on any
    of them limits the process. A path not under the mount (a container's, named as the host
    sees it) leaves only the mount."""
    own = mount / path.lstrip("/")
    if ".." in Path(path).parts or not own.is_dir():
        return [mount]
    return [own, *own.parents[: len(own.relative_to(mount).parts)]]


def _cgroup_quota(cgroup_root: Path, proc_cgroup: Path) -> float | None:
    """The CPUs the tightest CFS quota over this process allows, or None where none is set.

    The process's own cgroup may sit below the mount (a systemd service, a nested group), and
    its parents' quotas limit it too."""
    own = _own_cgroups(proc_cgroup)
    cgroups = _with_ancestors(cgroup_root, own.get("", "/")) + _with_ancestors(cgroup_root / "cpu", own.get("cpu", "/"))
    return min((quota for quota in map(_quota, cgroups) if quota is not None), default=None)


def cpu_share(
    env: Mapping[str, str] = os.environ,
    *,
    cgroup_root: Path = CGROUP_ROOT,
    proc_cgroup: Path = PROC_SELF_CGROUP,
    visible: int | None = None,
) -> int:
    """The whole CPUs this function's time share is worth: the threads worth running at once.

    Lambda shows two CPUs up to 3,008 MB but grants CPU time by memory, so two threads at
    1,769 MB take turns on one CPU's worth of time (measured: 920-966 ms against 653-820 ms
    for one thread). From ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE`` on Lambda, else from the
    tightest CFS quota on the process's cgroup or a parent, else the usable CPUs; rounded to
    the nearest whole CPU, at least one and at most the visible ones.
    """
    visible = visible or available_cpus()
    memory_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    share = int(memory_mb) / MB_PER_VCPU if memory_mb else _cgroup_quota(cgroup_root, proc_cgroup)
    if share is None:
        return visible
    return max(1, min(visible, math.floor(share + 0.5)))


def _csv(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    model_path: Path = BUNDLED_MODEL
    threads: int = 1
    max_input_pixels: int = 40_000_000
    max_input_bytes: int = 10 * 1024 * 1024
    max_object_bytes: int = 50 * 1024 * 1024
    input_buckets: tuple[str, ...] = ()
    output_bucket: str = ""
    output_prefix: str = "results/"
    upload_bucket: str = ""
    upload_prefix: str = "uploads/"
    cors_origins: tuple[str, ...] = ("*",)
    url_expires_in: int = 3600
    source_bucket: str = ""  # where GET /cutouts/{key} reads
    # Locally; deployed, the secret named by url_signing_secret_arn. Never printed: settings end up in
    # debuggers, log calls and assertion messages.
    url_signing_secret: str = field(default="", repr=False)
    url_signing_secret_arn: str = ""
    cutout_max_age: int = 86_400
    # A 12 MP photo takes ~1 s at 2 vCPUs; never start one with less than this left.
    min_remaining_ms: int = 10_000

    @classmethod
    def from_env(cls, env=os.environ, *, cgroup_root: Path = CGROUP_ROOT) -> "Settings":
        return cls(
            model_path=Path(env.get("MODEL_PATH") or BUNDLED_MODEL),
            threads=int(env.get("MODEL_THREADS") or cpu_share(env, cgroup_root=cgroup_root)),
            max_input_pixels=int(env.get("MAX_INPUT_PIXELS") or cls.max_input_pixels),
            max_input_bytes=int(env.get("MAX_INPUT_BYTES") or cls.max_input_bytes),
            max_object_bytes=int(env.get("MAX_OBJECT_BYTES") or cls.max_object_bytes),
            input_buckets=_csv(env.get("INPUT_BUCKETS", "")),
            output_bucket=env.get("OUTPUT_BUCKET", ""),
            output_prefix=env.get("OUTPUT_PREFIX") or cls.output_prefix,
            upload_bucket=env.get("UPLOAD_BUCKET", ""),
            upload_prefix=env.get("UPLOAD_PREFIX") or cls.upload_prefix,
            cors_origins=_csv(env.get("CORS_ORIGINS", "*")),
            url_expires_in=int(env.get("URL_EXPIRES_IN") or cls.url_expires_in),
            source_bucket=env.get("SOURCE_BUCKET", ""),
            url_signing_secret=env.get("URL_SIGNING_SECRET", ""),
            url_signing_secret_arn=env.get("URL_SIGNING_SECRET_ARN", ""),
            cutout_max_age=int(env.get("CUTOUT_MAX_AGE") or cls.cutout_max_age),
            min_remaining_ms=int(env.get("MIN_REMAINING_MS") or cls.min_remaining_ms),
        )
