"""Timing helpers shared by the benchmarks (run them from the project root)."""

import statistics
import subprocess
import time
from pathlib import Path
from typing import List

REPEATS = 5


def median_seconds(argv: List[str], cwd: Path, repeats: int = REPEATS) -> float:
    """Median wall time of a subprocess over `repeats` runs (each must exit 0)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)
