"""What one image costs on Lambda at each memory size, measured inside the CPU share Lambda gives it.

    .venv/bin/python scripts/cost.py [--rounds 3] [--repeats 2] [--json FILE]   (make cost; as root)

Lambda grants CPU time in proportion to memory (one vCPU's worth at 1,769 MB) but shows two
CPUs at every size up to 3,008 MB. For each memory size this script creates a cgroup (v1 cpu
controller) whose CFS quota is that share, runs the real pipeline (``remove_background``, default
options) on the benchmark photos in a child process inside it, with the threads the service
chooses there (``cpu_share`` from ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE``), and removes the cgroup.
It prints, per size and photo, the median time, GB-seconds and dollars per 1,000 images on x86_64
and arm64, and the memory sizes the curve suggests for the two functions. Then it measures two
levers under a quota, side by side: ONNX Runtime's spin-waiting on and off, and the threads the
service used to take (all it could see) against the CPU share.

The quota is a ceiling, not a reservation: the cgroup also gets ten times the default CPU
weight so that other load here takes less of it, but other load still makes figures slower.
The sizes are measured in interleaved passes, so that load falls on all of them alike; the
load average is printed with the table. Compare sizes within one run, as ratios.

Needs root and a writable /sys/fs/cgroup/cpu; elsewhere it says so and exits without measuring.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from arguments import at_least_one  # noqa: E402
from bench_photos import make_photos  # noqa: E402
from bench_worker import peak_rss_mb  # noqa: E402

from handler.settings import MB_PER_VCPU  # noqa: E402

CPU_CONTROLLER = Path("/sys/fs/cgroup/cpu")
PERIOD_US = 100_000
SHARES = 10 * 1024
MEMORY_SIZES_MB = (1024, 1769, 2048, 3008, 4096, 5308)
MEMORY_PARAMETERS = ("ApiMemorySize", "WorkerMemorySize")  # template.yaml's, which the suggestion is for
PHOTOS = ("small", "hd", "12mp")
# Lambda list prices, us-east-1, first pricing tier (https://aws.amazon.com/lambda/pricing/,
# read 2026-11-30): duration per GB-second by architecture, and per request.
PRICE_PER_GB_SECOND = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
PRICE_PER_REQUEST = 0.20 / 1_000_000
# The API's default is the smallest size within this fraction of the fastest, on every photo.
LATENCY_TOLERANCE = 0.10


def cgroup_problem() -> str | None:
    """Why cgroups cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root to create a cgroup (run it as root, e.g. in the dev container)"
    if not (CPU_CONTROLLER / "cpu.cfs_quota_us").is_file():
        return f"needs the cgroup v1 cpu controller at {CPU_CONTROLLER} (not mounted here)"
    if not os.access(CPU_CONTROLLER, os.W_OK):
        return f"{CPU_CONTROLLER} is read-only here"
    return None


def deployable_sizes() -> range:
    """The memory sizes template.yaml lets both functions have (inside Lambda's 128-10,240 MB):
    any measured size may be suggested for either."""
    import sam_template  # samtranslator: 0.35 s that the measuring children need not pay

    parameters = sam_template.load()["Parameters"]
    low = max(parameters[name]["MinValue"] for name in MEMORY_PARAMETERS)
    high = min(parameters[name]["MaxValue"] for name in MEMORY_PARAMETERS)
    return range(low, high + 1)


def memory_sizes(text: str) -> list[int]:
    """Comma-separated memory sizes in MB that the template allows (a suggestion it refuses is no suggestion)."""
    sizes = [item.strip() for item in text.split(",")]
    allowed = deployable_sizes()
    if not all(item.isdigit() and int(item) in allowed for item in sizes):
        limits = f"from {allowed.start} to {allowed.stop - 1} (what template.yaml allows {' and '.join(MEMORY_PARAMETERS)})"
        raise argparse.ArgumentTypeError(f"must be memory sizes in MB {limits}, comma separated, not {text!r}")
    return [int(item) for item in sizes]


@contextmanager
def cpu_quota(cpus: float):
    """A cgroup of its own, limited to ``cpus`` CPUs' worth of time; removed afterwards, also on error."""
    group = CPU_CONTROLLER / f"bgremove-cost-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    group.mkdir()
    try:
        (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (group / "cpu.cfs_quota_us").write_text(str(round(cpus * PERIOD_US)))
        # A Lambda function's share is its own. Ten times the default weight lets the measured
        # process take its quota ahead of other busy processes here; the quota still caps it.
        (group / "cpu.shares").write_text(str(SHARES))
        yield group
    finally:
        # The kernel refuses to remove a group until its last process has been reaped.
        for _ in range(50):
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)
        else:
            print(f"could not remove {group}: remove it with rmdir", file=sys.stderr)


def measure(memory_mb: int, photos: dict[str, Path], *, repeats: int, spinning: bool, threads: int | None = None) -> dict:
    """Run the child inside a quota worth ``memory_mb`` of Lambda; its JSON report."""
    env = {**os.environ, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb)}
    if threads is not None:
        env["MODEL_THREADS"] = str(threads)
    command = [sys.executable, __file__, "--child", json.dumps({name: str(path) for name, path in photos.items()})]
    command += ["--repeats", str(repeats), "--spinning", "1" if spinning else "0"]
    with cpu_quota(memory_mb / MB_PER_VCPU) as group:

        def join_group():  # runs in the child between fork and exec: everything it does is inside the quota
            (group / "cgroup.procs").write_text(str(os.getpid()))

        done = subprocess.run(command, env=env, preexec_fn=join_group, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the measurement at {memory_mb} MB failed:\n{done.stderr}")
    return json.loads(done.stdout)


def child(photos: dict[str, str], *, repeats: int, spinning: bool) -> None:
    """Inside the quota: each photo once to warm up, then ``repeats`` timed runs; JSON on stdout."""
    from handler.options import Options
    from handler.parallel import StripPool
    from handler.pipeline import remove_background
    from handler.segmenter import Segmenter
    from handler.settings import Settings

    settings = Settings.from_env()
    segmenter = Segmenter(settings.model_path, threads=settings.threads, spinning=spinning)
    strips = StripPool(settings.threads)  # the full-resolution steps get the same share, as in handler/app.py
    seconds = {}
    for name, path in photos.items():
        data = Path(path).read_bytes()
        runs = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            remove_background(data, Options(), segmenter=segmenter, max_pixels=settings.max_input_pixels, strips=strips)
            runs.append(time.perf_counter() - start)
        seconds[name] = runs[1:]
    print(json.dumps({"threads": settings.threads, "spinning": spinning, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}))


def cost(memory_mb: int, seconds: float, architecture: str) -> float:
    """Dollars per 1,000 images: duration × memory, plus the request."""
    return 1000 * (memory_mb / 1024 * seconds * PRICE_PER_GB_SECOND[architecture] + PRICE_PER_REQUEST)


def choose_defaults(curve: dict[int, dict]) -> dict[str, int]:
    """ApiMemorySize: the smallest size within LATENCY_TOLERANCE of the fastest on every photo.
    WorkerMemorySize: the cheapest size per image over the three photos in equal numbers."""
    medians = {size: {name: statistics.median(runs) for name, runs in row["seconds"].items()} for size, row in curve.items()}
    fastest = {name: min(row[name] for row in medians.values()) for name in PHOTOS}
    api = min(size for size, row in medians.items() if all(row[n] <= fastest[n] * (1 + LATENCY_TOLERANCE) for n in PHOTOS))
    worker = min(medians, key=lambda size: sum(cost(size, medians[size][n], "x86_64") for n in PHOTOS))
    return {"ApiMemorySize": api, "WorkerMemorySize": worker}


def share(memory_mb: int) -> str:
    """The CPU share Lambda gives ``memory_mb``, and where this machine has fewer CPUs than that, what it got."""
    cpus = memory_mb / MB_PER_VCPU
    return f"{cpus:.2f}" if cpus <= (os.cpu_count() or 1) else f"{cpus:.2f} ({os.cpu_count()} here)"


def table(curve: dict[int, dict]) -> str:
    lines = [
        "| memory | CPU share | threads | photo | median (min) | GB-s per image | $/1,000 x86_64 | $/1,000 arm64 | peak RSS |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for size, row in curve.items():
        for name in PHOTOS:
            median, fastest = statistics.median(row["seconds"][name]), min(row["seconds"][name])
            lines.append(
                f"| {size:,} MB | {share(size)} | {row['threads']} | {name} | {median:.3f} s ({fastest:.3f}) "
                f"| {size / 1024 * median:.3f} | ${cost(size, median, 'x86_64'):.4f} | ${cost(size, median, 'arm64'):.4f} "
                f"| {row['peak_rss_mb']:.0f} MB |"
            )
    return "\n".join(lines)


@dataclass(frozen=True)
class Case:
    """One child run: a memory size's quota, the photos, and the model's settings there."""

    memory_mb: int
    photos: tuple[str, ...]
    spinning: bool
    threads: int | None = None  # None: what the service chooses at this size
    label: str = ""


def lever_cases() -> list[Case]:
    """Under one quota each, on the 1920x1080 photo: the thread count and spin-waiting, side by side."""
    return [
        Case(1769, ("hd",), False, 1, "the CPU share (1 thread), no spinning"),
        Case(1769, ("hd",), True, 2, "all visible CPUs (2 threads), spinning: before this change"),
        Case(1769, ("hd",), False, 2, "2 threads, no spinning"),
        Case(3008, ("hd",), False, 2, "the CPU share (2 threads), no spinning"),
        Case(3008, ("hd",), True, 2, "2 threads, spinning"),
    ]


def run_interleaved(cases: list[Case], photos: dict[str, Path], *, rounds: int, repeats: int) -> dict[Case, dict]:
    """Every case once per round, round after round, so that the machine's other load falls on all
    cases alike; the runs of each case gathered."""
    results: dict[Case, dict] = {}
    for round_number in range(1, rounds + 1):
        for case in cases:
            print(f"round {round_number}/{rounds}: {case.memory_mb:,} MB {case.label}", file=sys.stderr, flush=True)
            chosen = {name: photos[name] for name in case.photos}
            report = measure(case.memory_mb, chosen, repeats=repeats, spinning=case.spinning, threads=case.threads)
            gathered = results.setdefault(case, {"threads": report["threads"], "seconds": {n: [] for n in case.photos}})
            for name, runs in report["seconds"].items():
                gathered["seconds"][name] += runs
            gathered["peak_rss_mb"] = max(gathered.get("peak_rss_mb", 0), report["peak_rss_mb"])
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=at_least_one, default=3, help="passes over all sizes, interleaved (default 3)")
    parser.add_argument(
        "--repeats", type=at_least_one, default=2, help="timed runs per photo in each pass, after one warm-up (default 2)"
    )
    parser.add_argument(
        "--sizes",
        type=memory_sizes,
        default=list(MEMORY_SIZES_MB),  # not a string: argparse would read the template for every child too
        help=f"memory sizes in MB, comma separated (default {','.join(map(str, MEMORY_SIZES_MB))})",
    )
    parser.add_argument("--no-levers", action="store_true", help="only the cost curve")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--spinning", default="0", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child), repeats=args.repeats, spinning=args.spinning == "1")
        return 0
    if problem := cgroup_problem():
        print(f"make cost skipped: {problem}", file=sys.stderr)
        return 0

    from handler.segmenter import SPINNING

    all_photos = make_photos(REPO / "bench-results" / "photos")
    photos = {name: all_photos[name] for name in PHOTOS}
    curve_cases = [Case(size, PHOTOS, SPINNING) for size in args.sizes]
    levers = [] if args.no_levers else lever_cases()
    load_before = os.getloadavg()
    results = run_interleaved(curve_cases + levers, photos, rounds=args.rounds, repeats=args.repeats)
    load_after = os.getloadavg()
    curve = {case.memory_mb: results[case] for case in curve_cases}

    print(table(curve))
    if levers:
        print()
        print("| memory | threads | spinning | 1920x1080 median (min) | what |")
        print("| --- | --- | --- | --- | --- |")
    for case in levers:
        runs = results[case]["seconds"]["hd"]
        spinning = "on" if case.spinning else "off"
        timing = f"{statistics.median(runs):.3f} s ({min(runs):.3f})"
        print(f"| {case.memory_mb:,} MB | {case.threads} | {spinning} | {timing} | {case.label} |")
    defaults = choose_defaults(curve)
    print()
    print(f"defaults from this curve: ApiMemorySize={defaults['ApiMemorySize']} WorkerMemorySize={defaults['WorkerMemorySize']}")
    load = f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after"
    runs = args.rounds * args.repeats
    print(f"{os.cpu_count()} CPUs; {load}; {runs} timed runs per cell ({args.rounds} interleaved passes of {args.repeats})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        lever_report = [{**asdict(case), **results[case]} for case in levers]
        report = {"curve": curve, "levers": lever_report, "defaults": defaults, "load": [load_before, load_after]}
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
