"""What the cosmos-rl backend adds before a launch: rendering and validating its TOML.

Figures: (1) in-process time to render the TOML, run the strict 0.4.7 key check and cosmos-rl's own
pydantic validation (config module loaded alone), against rendering alone (baseline, same process);
(2) `stage=sft backend=cosmos_rl dry_run=true` against `backend=deepspeed` (baseline, same run), both
on the demo experiment. Goal: the dry run stays under 2 s (the start-up goal) and within 1.5x of the
DeepSpeed backend's. It prepares the synthetic data and tiny model in a temporary folder first. Run:
    .venv/bin/python bench/bench_cosmos_rl_plan.py
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import REPEATS, median_seconds, record_result  # noqa: E402

INNER = 50


def in_process_ms():
    from hydra import compose, initialize_config_dir

    from cosmos_exp.config import register_configs
    from cosmos_exp.config.validate import typed
    from cosmos_exp.run import CONF_DIR
    from cosmos_exp.train.cosmos_rl import pydantic_check, render, schema, toml_io

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = typed(compose(config_name="config", overrides=["stage=sft", "backend=cosmos_rl", "experiment=demo"]))
    start = time.perf_counter()
    pydantic_check.load_config_class()
    load_ms = (time.perf_counter() - start) * 1000

    def timed(fn):
        runs = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            for _ in range(INNER):
                fn()
            runs.append((time.perf_counter() - start) * 1000 / INNER)
        return statistics.median(runs)

    run_dir = Path("/runs/bench")
    base = timed(lambda: render.render(cfg, run_dir))

    def full():
        doc = toml_io.round_trip(render.render(cfg, run_dir))
        schema.check_document(doc)
        assert pydantic_check.validate(doc) is None

    return base, timed(full), load_ms


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    base_ms, full_ms, load_ms = in_process_ms()
    with tempfile.TemporaryDirectory() as tmp:
        cli = [sys.executable, "-m", "cosmos_exp.run", f"paths.root={tmp}/outputs"]
        subprocess.run(cli + ["stage=prepare"], cwd=root, check=True, capture_output=True)
        sft = cli + ["stage=sft", "experiment=demo", "dry_run=true"]
        deepspeed = median_seconds(sft + ["backend=deepspeed"], root)
        cosmos_rl = median_seconds(sft + ["backend=cosmos_rl"], root)
    lines = [f"render {base_ms:.2f} ms (baseline); render + TOML round trip + strict check + cosmos-rl pydantic "
             f"{full_ms:.2f} ms ({full_ms / base_ms:.1f}x); loading cosmos-rl's config module alone {load_ms:.0f} ms",
             f"sft dry run: backend=deepspeed {deepspeed:.2f} s (baseline), backend=cosmos_rl {cosmos_rl:.2f} s "
             f"({cosmos_rl / deepspeed:.2f}x; goal < 2 s and <= 1.5x)"]
    print("\n".join(lines))
    record_result("cosmos-rl TOML render + validation (bench/bench_cosmos_rl_plan.py)",
                  f"- {time.strftime('%Y-%m-%d')} median of {REPEATS}, {os.cpu_count()}-core CPU: " + "; ".join(lines))


if __name__ == "__main__":
    main()
