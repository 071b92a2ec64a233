"""scripts/bench.py's verdicts: a time target under its measured floor is reported as out of reach."""

import importlib
import sys

import pytest


@pytest.fixture(scope="module")
def bench(repo_root):
    sys.path.insert(0, str(repo_root / "scripts"))
    return importlib.import_module("bench")


def measured(bench, size: tuple[int, int], *, ours: float, floor: float) -> dict:
    """One photo's row of results, as measure() writes it: ours and the floor against the inference."""
    width, height = size
    return {
        "size": [width, height],
        "ratio_inference": ours,
        "limit_inference": bench.size_limit(width * height, bench.INFERENCE_LIMITS),
        "floor_inference": floor,
        "ratio": 0.5,
        "limit_rembg": bench.size_limit(width * height, bench.REMBG_LIMITS),
        "ratio_bytes": 0.95,
        "ratio_peak_rss": 0.49,
        "refine_cost": 0.05,
    }


def test_a_missed_time_target_says_whether_its_floor_leaves_room(bench):
    # GIVEN a 512 px photo over its limit (1.10) with a floor under it, a 12 MP one whose floor
    # alone is over its limit (2.5), and a 1920x1080 one within its limit (1.30)
    results = {
        "end_to_end": {
            "small": measured(bench, (512, 512), ours=1.13, floor=1.06),
            "12mp": measured(bench, (4032, 3024), ours=5.0, floor=2.71),
            "hd": measured(bench, (1920, 1080), ours=1.25, floor=1.2),
        },
        "cold_start": {"ratio": 0.3},
    }

    checks = bench.checks(results)

    # THEN each carries its floor; only the one whose floor is over the limit is out of reach
    small, big, hd = (checks[f"{name}_time_vs_inference"] for name in ("small", "12mp", "hd"))
    assert (small["ok"], small["within_reach"], small["floor"]) == (False, True, 1.06)
    assert bench.verdict(small) == "MISSED"
    assert (big["ok"], big["within_reach"]) == (False, False)
    assert bench.verdict(big) == "MISSED, out of reach (floor 2.71)"
    assert hd["ok"] and bench.verdict(hd) == "ok"
    # and the targets that have no floor read as before
    assert bench.verdict(checks["cold_start"]) == "ok"
    assert "within_reach" not in checks["12mp_png_bytes_vs_rembg"]
