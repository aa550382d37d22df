"""A checkpoint sweep of N checkpoints on K local worker processes (hydra/launcher=local_parallel) against the
same N jobs one after another (Hydra's basic launcher, one process), in one run, and the framework's overhead
per job.

Each job evaluates one checkpoint of a tiny Qwen2.5-VL (caption 32 held-out clips, TOKENS new tokens each, score
them with the local metrics): ~15-20 s of work, because what a sweep pays once (process start, the preflight,
importing torch and the model classes: ~20 s here) does not divide by K, and the goal is about the jobs.
single = the sequential sweep's wall time / N; goal: the parallel sweep's wall time <= 1.2 x N/K x single with
K = 2 on a 2-core machine. Overhead per job: the sweep's wall time (x K for the
parallel one: core-seconds) less the time its jobs spent between their first log line ("run directory") and
their last ("done"), over N: process start, the preflight, Hydra's compose and job set-up, the run record.
Run from the project root:
    .venv/bin/python bench/bench_sweep_parallel.py [N] [K]
"""

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import List, Tuple

from timing import record_result  # bench/ is the script's own folder

N, K = 4, 2
CLIPS = 32
TOKENS = 768  # new tokens per clip: ~15 s of a job's own work on an idle core (128 gave ~2 s, too little to time)
JOB = ["stage=evaluate", "model=tiny_qwen2_5_vl", "eval=local", f"generation.max_items={CLIPS}",
       f"generation.max_new_tokens={TOKENS}", "generation.batch_size=4"]


def _stamp(line: str) -> float:
    """The time of a Hydra log line: [2026-12-02 05:11:04,205][...]."""
    return datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def job_work_seconds(sweep: Path) -> List[float]:
    """Each job's time between its first log line and its "done" line."""
    spans = []
    for log in sorted(sweep.glob("*/log.txt")):
        lines = [ln for ln in log.read_text().splitlines() if ln.startswith("[20")]
        done = [ln for ln in lines if "][cosmos_exp][INFO] - done: " in ln]
        if not done:
            raise SystemExit(f"bench: {log} has no 'done' line: the job did not finish")
        spans.append(_stamp(done[-1]) - _stamp(lines[0]))
    return spans


def sweep(root: Path, name: str, launcher: List[str], train_run: Path, outputs: Path) -> Tuple[float, List[float]]:
    out = root / name
    argv = [sys.executable, "-m", "cosmos_exp.run", "-m", *launcher, *JOB, f"sweep.checkpoints={train_run}",
            f"paths.root={outputs}", f"hydra.sweep.dir={out}"]
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=root, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"bench: {name} sweep exited {proc.returncode}:\n{proc.stderr.strip()[-3000:]}")
    return wall, job_work_seconds(out)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else N
    k = int(sys.argv[2]) if len(sys.argv) > 2 else K
    os.environ["OMP_NUM_THREADS"] = "1"  # one core per job: K jobs fill K cores
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        outputs = root / "outputs"
        subprocess.run([sys.executable, "-m", "cosmos_exp.run", "stage=prepare", f"paths.root={outputs}",
                        f"dataset.synthetic.num_eval={CLIPS}"], cwd=root, check=True, capture_output=True)
        train_run = root / "train"
        for step in range(1, n + 1):
            d = train_run / "checkpoints" / f"step_{step}"
            shutil.copytree(outputs / "models" / "tiny_qwen2_5_vl", d)
            (d / "complete.json").write_text(json.dumps({"step": step}))
        load_before = os.getloadavg()[0]
        seq_wall, seq_work = sweep(root, "sequential", ["hydra/launcher=basic"], train_run, outputs)
        par_wall, par_work = sweep(root, "parallel", ["hydra/launcher=local_parallel", f"hydra.launcher.workers={k}"],
                                   train_run, outputs)
    single = seq_wall / n
    goal = 1.2 * n / k * single
    seq_overhead = (seq_wall - sum(seq_work)) / n
    par_overhead = (k * par_wall - sum(par_work)) / n
    line = (f"{n}-checkpoint evaluate sweep (tiny qwen2_5_vl, {CLIPS} clips x {TOKENS} tokens a job): one after another "
            f"{seq_wall:.1f} s (single {single:.1f} s a job), {k} local workers {par_wall:.1f} s = "
            f"{par_wall / (n / k * single):.2f} x N/K x single (goal <= 1.2: {'met' if par_wall <= goal else 'missed'}; "
            f"speed-up {seq_wall / par_wall:.2f}x); framework overhead per job {seq_overhead:.2f} s one after another, "
            f"{par_overhead:.2f} core-s on {k} workers (jobs' own work: median {sorted(seq_work)[n // 2]:.1f} s vs "
            f"{sorted(par_work)[n // 2]:.1f} s in parallel)")
    print(line)
    record_result("checkpoint sweep on parallel local workers (bench/bench_sweep_parallel.py)",
                  f"- {time.strftime('%Y-%m-%d')} {platform.node() or 'host'} ({os.cpu_count()} cpus, load average "
                  f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after): {line}")


if __name__ == "__main__":
    main()
