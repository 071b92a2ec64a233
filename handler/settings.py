"""Configuration from the environment, read once into one typed value."""

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

BUNDLED_MODEL = Path(__file__).resolve().parent.parent / "model" / "u2netp.onnx"
CGROUP_ROOT = Path("/sys/fs/cgroup")
# Lambda gives a function CPU time in proportion to its memory: one vCPU's worth at 1,769 MB
# (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html), while it shows
# two CPUs at every size up to 3,008 MB.
MB_PER_VCPU = 1769


def available_cpus() -> int:
    """CPUs this process may run on (Lambda exposes vCPUs in proportion to memory)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _cgroup_quota(cgroup_root: Path) -> float | None:
    """The CPUs a CFS quota allows (cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us`` over
    ``cpu.cfs_period_us``), or None where no quota is set."""
    v2 = cgroup_root / "cpu.max"
    if v2.is_file():
        quota, _, period = v2.read_text().partition(" ")
        return None if quota == "max" else int(quota) / int(period)
    v1 = cgroup_root / "cpu"
    if (v1 / "cpu.cfs_quota_us").is_file():
        quota = int((v1 / "cpu.cfs_quota_us").read_text())
        return None if quota < 0 else quota / int((v1 / "cpu.cfs_period_us").read_text())
    return None


def cpu_share(env: Mapping[str, str] = os.environ, *, cgroup_root: Path = CGROUP_ROOT, visible: int | None = None) -> int:
    """The whole CPUs this function's time share is worth: the threads worth running at once.

    Lambda shows two CPUs up to 3,008 MB but grants CPU time by memory, so two threads at
    1,769 MB take turns on one CPU's worth of time (measured: 920-966 ms against 653-820 ms
    for one thread). From ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE`` on Lambda, else from the
    process's CFS quota, else the usable CPUs; rounded to the nearest whole CPU, at least
    one and at most the visible ones.
    """
    visible = visible or available_cpus()
    memory_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    share = int(memory_mb) / MB_PER_VCPU if memory_mb else _cgroup_quota(cgroup_root)
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
    url_signing_secret: str = ""  # locally; deployed, the secret named by url_signing_secret_arn
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
