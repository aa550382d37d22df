"""The real single-node SLURM of the tests (launchers/slurm_test_cluster.sh start): whether it is up, the marks
its tests carry, and small readers of job state. Tests are skipped, with the reason, where the daemons are
absent or down; CI sets COSMOS_EXP_REQUIRE_SLURM=1 after starting the cluster, and there they fail instead."""

import os
import shutil
import subprocess
import time
from typing import List

import pytest


def cluster_problem() -> str:
    if shutil.which("sinfo") is None:
        return "SLURM is not installed here (sinfo not found): run `bash launchers/slurm_test_cluster.sh start` as root"
    try:
        states = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"sinfo failed ({err}): the SLURM test cluster is down"
    if states.returncode != 0 or not any(s.strip().startswith(("idle", "mix", "alloc")) for s in states.stdout.split()):
        return f"the SLURM test cluster is down (sinfo: {(states.stdout + states.stderr).strip()[:200]!r}): " \
               "run `bash launchers/slurm_test_cluster.sh start`"
    return ""


PROBLEM = cluster_problem()
REQUIRED = os.environ.get("COSMOS_EXP_REQUIRE_SLURM") == "1"
MARKS = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.skipif(bool(PROBLEM) and not REQUIRED, reason=PROBLEM)]


def fail_if_down() -> None:
    """For an autouse fixture: reached only when not skipped, i.e. CI requires the cluster."""
    if PROBLEM:
        pytest.fail(f"COSMOS_EXP_REQUIRE_SLURM=1 but {PROBLEM}", pytrace=False)


def _out(argv: List[str]) -> str:
    for _ in range(15):  # slurmdbd can refuse sacct for a few seconds on a busy machine: ask again
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if out.returncode == 0 or "Unable to connect to database" not in out.stderr:
            break
        time.sleep(2)
    assert out.returncode == 0, f"{argv}: {out.stderr}"
    return out.stdout


def jobs_named(name: str) -> List[str]:
    """Queued, running or finished jobs with this name (squeue is immediate; sacct can lag a few seconds)."""
    found = []
    for argv in (["squeue", "-h", "-n", name, "-o", "%i"],
                 ["sacct", "-n", "-X", "-P", "-S", "now-1days", "--name", name, "-o", "JobID"]):
        found += [line for line in _out(argv).split() if line]
    return found


def queued_job(name: str) -> str:
    """The id of the one queued or running job with this name ("" when none)."""
    ids = _out(["squeue", "-h", "-n", name, "-o", "%i"]).split()
    assert len(ids) <= 1, ids
    return ids[0] if ids else ""


def job_fields(job_id: str) -> dict:
    """`scontrol show job`'s Key=Value fields (JobState, Restarts, ...); {} once the job has left the queue."""
    out = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        return {}
    return dict(f.split("=", 1) for f in out.stdout.split() if "=" in f)
