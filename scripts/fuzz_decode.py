"""Coverage-guided fuzzing (atheris, libFuzzer) of the decode path: untrusted bytes -> image or typed error.

    python scripts/fuzz_decode.py --seconds 60        # what `make fuzz` runs (FUZZ_SECONDS=...)

Seeds are the image bodies of tests/corpus, copied into .fuzz-corpus/, which libFuzzer grows and
later runs start from.
A finding is any exception other than the project's ServiceError, a decoded image larger than
the pixel limit or not RGB/RGBA, or the process passing RSS_LIMIT_MB: libFuzzer then stops,
writes the input to fuzz-findings/ and this script exits non-zero.
"""

import argparse
import shutil
import sys
from pathlib import Path

from arguments import at_least_one

try:
    import atheris
except ModuleNotFoundError:  # requirements-dev.txt installs it only where PyPI has a wheel
    sys.exit(
        "make fuzz needs atheris: pip installs it on Linux x86_64 with Python 3.11-3.13; "
        "elsewhere it builds only with a Clang that has libFuzzer"
    )

REPO_ROOT = Path(__file__).resolve().parent.parent
SEEDS = REPO_ROOT / "tests" / "corpus" / "bodies"
WORK_CORPUS = REPO_ROOT / ".fuzz-corpus"
FINDINGS = REPO_ROOT / "fuzz-findings"
MAX_PIXELS = 4_000_000  # small enough to keep each input fast; the limit check itself is what is fuzzed
MAX_INPUT_BYTES = 200_000
RSS_LIMIT_MB = 1536  # a 4 MP decode needs ~50 MB; more than this is a leak or an unchecked allocation
PER_INPUT_SECONDS = 20

sys.path.insert(0, str(REPO_ROOT))
with atheris.instrument_imports():  # Pillow's format parsers are Python: instrument them with ours
    import PIL.Image

    from handler.decode import decode
    from handler.errors import ServiceError

# Pillow loads its format plugins lazily: load them now, so they are instrumented too.
with atheris.instrument_imports():
    PIL.Image.init()


def test_one_input(data: bytes) -> None:
    try:
        image = decode(data, max_pixels=MAX_PIXELS)
    except ServiceError:
        return
    assert image.mode in ("RGB", "RGBA"), f"decode returned mode {image.mode}"
    assert image.width * image.height <= MAX_PIXELS, f"decode returned {image.size}, over {MAX_PIXELS:,} pixels"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # libFuzzer reads -max_total_time=0 as "no limit": at least a second keeps every run bounded.
    parser.add_argument("--seconds", type=at_least_one, default=60, help="how long to fuzz (default 60)")
    args, libfuzzer_args = parser.parse_known_args()
    FINDINGS.mkdir(exist_ok=True)
    WORK_CORPUS.mkdir(exist_ok=True)
    for seed in SEEDS.glob("*.bin"):
        shutil.copy(seed, WORK_CORPUS / seed.name)
    atheris.Setup(
        [
            sys.argv[0],
            f"-max_total_time={args.seconds}",
            f"-rss_limit_mb={RSS_LIMIT_MB}",
            f"-max_len={MAX_INPUT_BYTES}",
            f"-timeout={PER_INPUT_SECONDS}",
            f"-artifact_prefix={FINDINGS}/",
            "-print_final_stats=1",
            *libfuzzer_args,
            str(WORK_CORPUS),
        ],
        test_one_input,
    )
    atheris.Fuzz()  # exits the process: 0 when the time is up with no finding


if __name__ == "__main__":
    main()
