"""Checkpoint sweeps on a real single-node SLURM (launchers/slurm_test_cluster.sh start), through
`cosmos-exp -m hydra/launcher=slurm`. Skipped, with the reason, where the daemons are absent or down."""

import json
import time

import pytest

from conftest import run_cli
from test_sweep_evaluate import make_train_run, run_dirs
from _slurm import MARKS, fail_if_down, jobs_named

pytestmark = MARKS


@pytest.fixture(autouse=True)
def _cluster_required():
    fail_if_down()


# One CPU and 1 GB per array task: the test node has only the machine's cores (2 in CI).
SLURM = ["hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1",
         "hydra.launcher.timeout_min=5"]
SMALL = ["generation.max_new_tokens=8", "generation.max_items=3", "eval=local"]


def test_checkpoint_sweep_on_slurm_then_resume_and_report(prepared, tmp_path):
    train_run = make_train_run(prepared["tiny_qwen2_5_vl"], tmp_path, steps=(2, 4))
    sweep_dir = tmp_path / "sweep"
    args = ["-m", *SLURM, "stage=evaluate", f"sweep.checkpoints={train_run}", f"paths.root={prepared['outputs']}",
            f"hydra.sweep.dir={sweep_dir}", *SMALL]
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    children = run_dirs(sweep_dir)
    assert [c.name for c in children] == ["0", "1"]
    steps = []
    for child in children:
        run = json.loads((child / "run.json").read_text())
        assert run["status"] == "succeeded"
        assert run["slurm"]["SLURM_ARRAY_JOB_ID"] and run["slurm"]["SLURM_ARRAY_TASK_ID"] == child.name
        # Each array task is one sweep point: it captions the whole split, not 1/N of it.
        counts = json.loads((child / "captions" / "index.json").read_text())["counts"]
        assert counts["items"] == counts["done"] == 3
        steps.append(json.loads((child / "evaluate.json").read_text())["step"])
    assert steps == [2, 4]

    again = run_cli(args, cwd=tmp_path)
    assert again.returncode == 0, (again.stdout + again.stderr)[-4000:]
    assert "2 already done and will be skipped" in again.stderr
    assert all(json.loads((c / "run.json").read_text())["result"]["skipped"] for c in children)

    report = run_cli(["stage=report", f"sweep.dir={sweep_dir}", f"paths.root={prepared['outputs']}",
                      f"hydra.run.dir={tmp_path}/report"], cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-3000:]
    table = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [c["step"] for c in table["children"]] == [2, 4] and table["best"]["bleu"][0]["split"] == "eval"


def test_bad_sweep_value_queues_nothing(prepared, tmp_path):
    train_run = make_train_run(prepared["tiny_qwen2_5_vl"], tmp_path, steps=(1,))
    name = f"cosmos-exp-refused-{tmp_path.name}"
    proc = run_cli(["-m", *SLURM, f"hydra.launcher.name={name}", "stage=evaluate", f"sweep.checkpoints={train_run}",
                    f"paths.root={prepared['outputs']}", "generation.batch_size=4,0", *SMALL], cwd=tmp_path)
    assert proc.returncode == 2 and "generation.batch_size" in proc.stderr
    time.sleep(2)  # let accounting catch up, were anything submitted
    assert jobs_named(name) == []


def test_failing_job_fails_the_sweep(prepared, tmp_path):
    """A job that fails inside SLURM (its checkpoint vanished after validation) reaches the submitter."""
    train_run = make_train_run(prepared["tiny_qwen2_5_vl"], tmp_path, steps=(1,))
    broken = train_run / "checkpoints" / "step_1" / "model.safetensors"
    broken.write_bytes(b"not a safetensors file")
    proc = run_cli(["-m", *SLURM, "stage=evaluate", f"sweep.checkpoints={train_run}",
                    f"paths.root={prepared['outputs']}", f"hydra.sweep.dir={tmp_path}/sweep", *SMALL], cwd=tmp_path)
    assert proc.returncode != 0
    run = json.loads((tmp_path / "sweep" / "0" / "run.json").read_text())
    assert run["status"] == "failed" and not (tmp_path / "sweep" / "0" / "evaluate.json").exists()
