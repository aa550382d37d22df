"""hydra/launcher=local_parallel: a multirun's jobs on K forked worker processes, each job as Hydra's basic
launcher runs it (its own directory), results back in job order, a failing job failing the sweep."""

import json
import os
from pathlib import Path

from conftest import CONF_DIR, REPO_ROOT, run_cli

# Job 0 finishes only once job 1 has started: with fewer than 2 workers running at once it would wait in vain.
APP = '''
import json, os, sys, time
from pathlib import Path
import hydra

@hydra.main(version_base="1.3", config_path=None, config_name=None)
def app(cfg):
    out = Path(cfg.out)
    (out / f"started_{cfg.x}").touch()
    if cfg.x == 0:
        deadline = time.monotonic() + 120
        while not (out / "started_1").exists():
            if time.monotonic() > deadline:
                raise RuntimeError("job 1 never started while job 0 ran")
            time.sleep(0.05)
    if cfg.x == 99:
        raise ValueError("job 99 fails on purpose")
    record = {"x": cfg.x, "pid": os.getpid(), "parent": os.getppid()}
    (out / f"job_{cfg.x}.json").write_text(json.dumps(record))
    return cfg.x * 10

if __name__ == "__main__":
    app()
'''


def _sweep(tmp_path: Path, xs: str, workers: int = 2):
    app = tmp_path / "app.py"
    app.write_text(APP)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    return run_cli(["-m", f"hydra.searchpath=[file://{CONF_DIR}]", "hydra/launcher=local_parallel",
                    f"hydra.launcher.workers={workers}", "hydra.launcher.preload=[json]", f"+x={xs}", f"+out={out}", f"hydra.sweep.dir={tmp_path}/sweep"],
                   cwd=tmp_path, env=env, module="app", timeout=300), out


def test_jobs_run_on_two_workers_at_once_in_their_own_directories(tmp_path):
    proc, out = _sweep(tmp_path, "0,1,2,3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = [json.loads((out / f"job_{x}.json").read_text()) for x in range(4)]
    assert len({j["pid"] for j in jobs}) == 2  # two workers, each took several jobs
    assert len({j["parent"] for j in jobs}) == 1 and jobs[0]["parent"] != jobs[0]["pid"]
    assert all((tmp_path / "sweep" / str(x) / ".hydra" / "overrides.yaml").is_file() for x in range(4))
    assert "Launching 4 jobs on 2 local worker process(es)" in proc.stdout


def test_a_failing_job_fails_the_sweep_with_its_error(tmp_path):
    proc, out = _sweep(tmp_path, "2,99")
    assert proc.returncode != 0
    assert "job 99 fails on purpose" in proc.stderr
    assert (out / "job_2.json").is_file()  # the other job still ran


def test_cosmos_exp_sweep_through_the_preset(tmp_path):
    """The preset composes through cosmos-exp's preflight and runs its jobs (dry runs: plans only)."""
    proc = run_cli(["-m", "hydra/launcher=local_parallel", "hydra.launcher.preload=[]", "stage=prepare", "name=a,b,c",
                    f"paths.root={tmp_path}/outputs", "dry_run=true"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("plan for stage 'prepare'") == 3
    assert "Launching 3 jobs on 2 local worker process(es)" in proc.stdout
