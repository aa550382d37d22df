"""Helpers shared by the benchmarks (run them from the project root): subprocess timing and RESULTS.md."""

import statistics
import subprocess
import time
from pathlib import Path
from typing import List

REPEATS = 5
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def median_seconds(argv: List[str], cwd: Path, repeats: int = REPEATS) -> float:
    """Median wall time of a subprocess over `repeats` runs (each must exit 0)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:  # a failed command would time its error path: stop and say why
            raise SystemExit(f"bench: {' '.join(argv)} exited {proc.returncode}:\n{proc.stderr.strip()[-2000:]}")
    return statistics.median(times)


def record_result(section: str, line: str, path: Path = RESULTS) -> None:
    """Append `line` at the end of `## section` in bench/RESULTS.md (the section is made if absent), so each
    benchmark's history stays together, oldest first. The file is replaced atomically."""
    from cosmos_exp.repro.atomic import write_text_atomic

    header = f"## {section}"
    lines = path.read_text(encoding="utf-8").rstrip("\n").split("\n") if path.exists() else ["# Benchmark results"]
    if header not in lines:
        lines += ["", header]
    start = lines.index(header)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    while end > start + 1 and not lines[end - 1].strip():  # keep the blank line before the next section
        end -= 1
    lines.insert(end, line.rstrip("\n"))
    write_text_atomic(path, "\n".join(lines) + "\n")
