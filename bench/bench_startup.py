"""Start-up time of `cosmos-exp --cfg job` and of a dry run, against a trivial Hydra app (baseline).

Goal (issue 2): both under 2 s on a 2-core CPU machine. Run from the project root:
    .venv/bin/python bench/bench_startup.py
(it first prepares a tiny model and data under a temporary paths.root, which the dry runs then find).
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import REPEATS, median_seconds, record_result  # noqa: E402

TRIVIAL_APP = '''
import hydra
from omegaconf import DictConfig
@hydra.main(version_base="1.3", config_path=None)
def app(cfg: DictConfig) -> None:
    print("ok")
app()
'''


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / "trivial_app.py"
        app.write_text(TRIVIAL_APP)
        cli = [sys.executable, "-m", "cosmos_exp.run", f"paths.root={tmp}/outputs"]
        subprocess.run(cli + ["stage=prepare"], cwd=root, check=True, capture_output=True)
        baseline = median_seconds([sys.executable, str(app), f"hydra.run.dir={tmp}/run"], root)
        cfg_job = median_seconds(cli + ["--cfg", "job"], root)
        dry = {stage: median_seconds(cli + [f"stage={stage}", "dry_run=true"], root)
               for stage in ("prepare", "sft", "caption")}
    lines = [f"trivial Hydra app (baseline): {baseline:.2f} s",
             f"cosmos-exp --cfg job: {cfg_job:.2f} s ({cfg_job / baseline:.2f}x baseline; goal < 2 s)"]
    lines += [f"cosmos-exp stage={s} dry_run=true: {t:.2f} s ({t / baseline:.2f}x baseline; goal < 2 s)"
              for s, t in dry.items()]
    print("\n".join(lines))
    record_result("start-up (bench/bench_startup.py)",
                  f"- {time.strftime('%Y-%m-%d')} median of {REPEATS}, {os.cpu_count()}-core CPU: " + "; ".join(lines))


if __name__ == "__main__":
    main()
