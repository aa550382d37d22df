"""What validating every job of a checkpoint sweep before launch costs, against composing the same configs.

The sweep's submitting process composes, types, validates and plans each job (cosmos_exp/sweep/preflight.py)
so a bad value fails before anything is queued. Baseline, measured in the same run: Hydra's bare compose()
of the same job configs, which launching costs anyway. Goal: preflight of a 20-checkpoint sweep < 2 s on
a 2-core CPU, i.e. negligible next to jobs that take minutes. Run from the project root:
    .venv/bin/python bench/bench_sweep_preflight.py
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import record_result  # bench/ is the script's own folder

CHECKPOINTS = 20
REPEATS = 3


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    from cosmos_exp.run import CONF_DIR, stage_module
    from cosmos_exp.sweep.preflight import compose_job, expand_checkpoints, hydra_context, job_overrides, preflight

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "outputs"
        subprocess.run([sys.executable, "-m", "cosmos_exp.run", "stage=prepare", f"paths.root={out}"], cwd=tmp,
                       check=True, capture_output=True)
        model = out / "models" / "tiny_qwen2_5_vl"
        for step in range(1, CHECKPOINTS + 1):
            d = Path(tmp) / "train" / "checkpoints" / f"step_{step * 10}"
            shutil.copytree(model, d)
            (d / "complete.json").write_text(json.dumps({"step": step * 10}))
        argv = ["-m", "stage=evaluate", f"sweep.checkpoints={tmp}/train", f"paths.root={out}", "eval=local"]
        jobs = job_overrides(expand_checkpoints(argv[1:])[0])
        assert len(jobs) == CHECKPOINTS
        compose_s, preflight_s = [], []
        for _ in range(REPEATS):
            start = time.perf_counter()
            with hydra_context(CONF_DIR):  # as Hydra does: its config search set up once, then one compose a job
                for job in jobs:
                    compose_job(CONF_DIR, job)
            compose_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            preflight(argv + [f"hydra.sweep.dir={tmp}/sweep_{len(preflight_s)}"], CONF_DIR, stage_module)
            preflight_s.append(time.perf_counter() - start)
    base, ours = statistics.median(compose_s), statistics.median(preflight_s)
    line = (f"{CHECKPOINTS}-checkpoint evaluate sweep, median of {REPEATS}: bare Hydra compose of every job "
            f"{base:.2f} s (baseline), preflight (expand + compose + type + validate + plan every job + sweep.json) "
            f"{ours:.2f} s = {ours / base:.2f}x, {ours / CHECKPOINTS * 1000:.0f} ms per job (goal < 2 s in all)")
    print(line)
    record_result("sweep preflight (bench/bench_sweep_preflight.py)",
                  f"- {time.strftime('%Y-%m-%d')} vm ({os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}): {line}")


if __name__ == "__main__":
    main()
