"""Full-resolution work on every core the function has: strips of rows mapped over a thread pool.

numpy's loops over large arrays, Pillow's resampling and the deflate libraries release the
GIL, so threads of one process share the work without copying pixels between processes.
Each strip reads what it needs and writes only its own rows, so no locks are needed, and the
strips are the same whatever the number of workers: the output never depends on it.
"""

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

# Rows per strip of the full-resolution steps (the photo's copy, refinement, colour clean-up,
# the cut-out). Strips this small keep index, colour and temporary arrays at a few MB, also
# two at a time (256 rows two at a time raised the 12 MP peak from 350 to 362 MB), where fresh
# pages for big temporaries cost more than the work.
STRIP_ROWS = 128
# Narrower images get taller strips: strips of a few hundred pixels cost more in hand-offs than
# in work (a 1x40,000,000 PNG in 128-row strips took 51 s, a 40 MP photo about 1 s).
MIN_STRIP_PIXELS = 16_384
# Wider ones get shorter strips: 128 rows of a 65,535-pixel-wide panorama hold 8 MP, whose
# temporaries took its 40 MP from a 575 MB peak (a photo 8,064 wide) to 1,195 MB.
MAX_STRIP_PIXELS = STRIP_ROWS * 8192

Item = TypeVar("Item")
Value = TypeVar("Value")


def strip_rows(width: int, rows: int = STRIP_ROWS) -> int:
    """Rows per strip of an image ``width`` pixels wide: ``rows``, or enough for MIN_STRIP_PIXELS,
    or few enough for MAX_STRIP_PIXELS (one at least)."""
    return max(1, min(max(rows, -(-MIN_STRIP_PIXELS // width)), MAX_STRIP_PIXELS // width))


def row_strips(height: int, rows: int) -> list[slice]:
    """Slices of ``rows`` rows (the last one shorter) covering 0..height."""
    return [slice(top, min(top + rows, height)) for top in range(0, height, rows)]


class StripPool:
    """A pool of ``workers`` threads, built once per process (like the model's session).

    With one worker everything runs in the calling thread: no pool, no thread hand-offs.
    """

    def __init__(self, workers: int):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="strips") if workers > 1 else None

    def map(self, function: Callable[[Item], Value], items: Iterable[Item]) -> list[Value]:
        """``[function(item) for item in items]``, the calls spread over the workers, results in order."""
        items = list(items)
        if self._executor is None or len(items) < 2:
            return [function(item) for item in items]
        return list(self._executor.map(function, items))

    def over_rows(self, function: Callable[[slice], Value], height: int, rows: int) -> list[Value]:
        """``function(strip)`` for each strip of ``rows`` rows of an image ``height`` rows high."""
        return self.map(function, row_strips(height, rows))


SERIAL = StripPool(1)  # the single-core path: what callers get unless they pass the process's pool
