"""SFT through `cosmos-exp -m hydra/launcher=slurm` on the real single-node SLURM: two ranks as two srun tasks in
one run directory; a job that submitit requeues on its pre-timeout signal (USR2) and one requeued by an admin
(`scontrol requeue`) resume from their checkpoints and end at the weights of the uninterrupted job.

One uninterrupted job is the reference of the interrupted one (CI time: each job start costs ~20 s of imports).
"""

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List

import pytest

from conftest import run_cli
from cosmos_exp.rundir import step_of
from test_train_sft import _assert_same_weights, _metrics
from _slurm import MARKS, fail_if_down, job_fields, queued_job

pytestmark = MARKS

STEPS = 12
# Two tasks x one CPU: the whole test node in CI. save_every beyond STEPS: the only checkpoints before the last
# step are the ones the signals make.
SLURM_2 = ["-m", "hydra/launcher=slurm", "hydra.launcher.tasks_per_node=2", "hydra.launcher.cpus_per_task=1",
           "hydra.launcher.mem_gb=4", "hydra.launcher.timeout_min=10"]
TRAIN = ["stage=sft", "experiment=demo", "model=tiny_qwen3_vl", "parallelism=zero2", "train.micro_batch_size=1",
         "train.global_batch_size=2", f"train.max_steps={STEPS}", "train.save_every=1000", "train.log_every=1",
         "train.eval_every=null", "train.warmup_ratio=null", "train.warmup_steps=1", "dataset.num_workers=1"]


@pytest.fixture(autouse=True)
def _cluster_required():
    fail_if_down()


def _args(prepared, sweep_dir: Path, name: str) -> List[str]:
    return [*SLURM_2, f"hydra.launcher.name={name}", *TRAIN, f"paths.root={prepared['outputs']}",
            f"hydra.sweep.dir={sweep_dir}"]


@pytest.fixture(scope="module")
def reference(prepared, tmp_path_factory) -> Path:
    """The uninterrupted 2-rank job: its run directory."""
    sweep = tmp_path_factory.mktemp("reference") / "sweep"
    proc = run_cli(_args(prepared, sweep, "cosmos-exp-reference"), cwd=sweep.parent)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return sweep / "0"


def test_two_rank_sft_job_shares_one_run_directory(reference):
    assert [p.name for p in reference.parent.iterdir() if not p.name.startswith(".") and p.is_dir()] == ["0"]
    run = json.loads((reference / "run.json").read_text())
    assert run["status"] == "succeeded" and "attempts" not in run
    assert run["slurm"]["SLURM_NTASKS"] == "2" and run["slurm"]["SLURM_PROCID"] == "0"  # task 0 keeps the record
    assert run["result"]["world_size"] == 2 and run["result"]["steps"] == STEPS
    last = reference / "checkpoints" / f"step_{STEPS}"
    assert json.loads((last / "complete.json").read_text())["world_size"] == 2
    assert sorted(p.name for p in last.glob("train_state_rank*.pt")) == ["train_state_rank0.pt", "train_state_rank1.pt"]
    assert [m["step"] for m in _metrics(reference)] == list(range(1, STEPS + 1))


def _wait(what: str, until: Callable[[], bool], proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        assert proc.poll() is None, f"cosmos-exp ended (rc {proc.returncode}) while waiting for {what}: " \
                                    f"{proc.communicate()[1][-3000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _steps_logged(run_dir: Path) -> List[int]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line)["step"] for line in path.read_text().splitlines() if line.endswith("}")] \
        if path.is_file() else []


def _requeued_then_released(job: str, restarts: int, proc: subprocess.Popen) -> None:
    """Wait for the job to wait in the queue after its `restarts`-th requeue, then let it start now (SLURM holds
    a requeued job ~2 minutes)."""
    def pending() -> bool:
        fields = job_fields(job)
        return fields.get("JobState") == "PENDING" and fields.get("Restarts") == str(restarts)

    _wait(f"job {job} requeued ({restarts})", pending, proc)
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True, timeout=30)


def test_requeued_job_resumes_and_matches_the_uninterrupted_one(prepared, reference, tmp_path):
    name = f"cosmos-exp-requeue-{tmp_path.name}"
    sweep = tmp_path / "sweep"
    run_dir = sweep / "0"
    proc = subprocess.Popen([sys.executable, "-m", "cosmos_exp.run", *_args(prepared, sweep, name)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # 1. submitit's pre-timeout signal mid-training: the loop checkpoints, then submitit requeues the job.
        _wait("training to start", lambda: len(_steps_logged(run_dir)) >= 2, proc)
        job = queued_job(name)
        subprocess.run(["scancel", "--signal=USR2", job], check=True, timeout=30)
        _requeued_then_released(job, 1, proc)
        saved = [step_of(p) for p in (run_dir / "checkpoints").glob("step_*")]
        assert len(saved) == 1 and 2 <= saved[0] < STEPS, saved
        usr2_step = saved[0]
        log = (run_dir / "log.txt").read_text()
        assert log.index(f"checkpoint: {run_dir}/checkpoints/step_{usr2_step}") < log.index(f"Requeued job {job}")

        # 2. The second attempt resumes from it; an admin requeues it mid-training (SIGTERM: it checkpoints again).
        _wait("the requeued job to train", lambda: _steps_logged(run_dir)[-1:] > [usr2_step], proc)
        subprocess.run(["scontrol", "requeue", job], check=True, timeout=30)
        _requeued_then_released(job, 2, proc)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, (out + err)[-4000:]

    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "succeeded" and run["slurm"]["SLURM_RESTART_COUNT"] == "2"
    assert [a["status"] for a in run["attempts"]] == ["interrupted", "interrupted"]
    assert "submitit requeued the job" in run["attempts"][0]["error"]["message"]
    assert run["attempts"][1]["slurm"]["SLURM_RESTART_COUNT"] == "1"
    result = run["result"]
    assert result["start_step"] > usr2_step, "the SIGTERM of `scontrol requeue` wrote no checkpoint"
    log = (run_dir / "log.txt").read_text()
    assert f"resumed from {run_dir}/checkpoints/step_{usr2_step} at step {usr2_step}" in log
    assert f"resumed from {run_dir}/checkpoints/step_{result['start_step']} at step {result['start_step']}" in log
    _assert_same_weights(reference / "checkpoints" / f"step_{STEPS}", run_dir / "checkpoints" / f"step_{STEPS}")
    steps = [m["step"] for m in _metrics(run_dir)]
    assert steps[-1] == STEPS and set(steps) == set(range(1, STEPS + 1))

