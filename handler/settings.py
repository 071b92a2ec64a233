"""Configuration from the environment, read once into one typed value."""

import os
from dataclasses import dataclass
from pathlib import Path

BUNDLED_MODEL = Path(__file__).resolve().parent.parent / "model" / "u2netp.onnx"


def available_cpus() -> int:
    """CPUs this process may run on (Lambda exposes vCPUs in proportion to memory)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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
    def from_env(cls, env=os.environ) -> "Settings":
        return cls(
            model_path=Path(env.get("MODEL_PATH") or BUNDLED_MODEL),
            threads=int(env.get("MODEL_THREADS") or available_cpus()),
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
