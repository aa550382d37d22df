"""Every measurement runs in its own process, so its peak memory is its own and nothing one leaves allocated
weighs on the next: our SFT stage exactly as a user starts it, and the children of this package (the Hugging Face
Trainer, the captioning) that read a JSON spec and write a JSON result."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"


class PartError(Exception):
    """A measurement that did not finish; the message says where its log is."""


def child_env() -> Dict[str, str]:
    """This process's environment with the checkout and bench/ importable, and nothing reaching a network."""
    path = [str(REPO), str(BENCH)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(path)), "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1", "WANDB_MODE": "offline", "TOKENIZERS_PARALLELISM": "false",
            "PYTHONUNBUFFERED": "1"}


def _tail(log: Path, lines: int = 25) -> str:
    try:
        return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _start(argv: List[str], log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8") as out:
        # a session of its own, so stopping it stops its data-loader workers too
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=child_env(), cwd=str(REPO),
                                start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    """SIGKILL to the child's process group while the child is alive (its loader workers go with it; a child
    that ended on its own has stopped its workers, and PyTorch's exit when their parent dies)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _logged_steps(metrics: Path) -> List[Dict[str, Any]]:
    """The complete lines of a metrics.jsonl being written (a line is complete once its newline is there)."""
    try:
        text = metrics.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.split("\n")[:-1] if line.strip()]


def run_sft_stage(run_dir: Path, overrides: List[str], steps: int, timeout_s: float) -> List[Dict[str, Any]]:
    """`cosmos-exp stage=sft <overrides>` into run_dir (one process trains in place), stopped with SIGKILL once
    `steps` steps are in its metrics.jsonl; returns those steps' metrics. Stopped, not finished: a finished run
    writes a last checkpoint (tens of GB of ZeRO state at 2 B parameters) that is no part of the measurement."""
    from cosmos_exp.rundir import METRICS_JSONL

    argv = [sys.executable, "-m", "cosmos_exp.run", "stage=sft", f"hydra.run.dir={run_dir}", *overrides]
    log = run_dir.parent / f"{run_dir.name}.log"
    shutil.rmtree(run_dir, ignore_errors=True)  # an earlier run's metrics.jsonl would read as this run's steps
    proc = _start(argv, log)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            exited = proc.poll() is not None  # before reading: a run that ends has written its last line
            records = _logged_steps(run_dir / METRICS_JSONL)
            if len(records) >= steps:
                return records[:steps]
            if exited:
                raise PartError(f"stage=sft exited {proc.returncode} after {len(records)} of {steps} steps; "
                                f"log {log}:\n{_tail(log)}")
            if time.monotonic() > deadline:
                raise PartError(f"stage=sft logged {len(records)} of {steps} steps in {timeout_s:.0f} s; "
                                f"log {log}:\n{_tail(log)}")
            time.sleep(0.2)
    finally:
        _stop(proc)


def run_child(module: str, spec: Dict[str, Any], work: Path, timeout_s: float) -> Dict[str, Any]:
    """`python -m gpu_check.<module> <spec.json> <result.json>`; returns the result it wrote."""
    spec_path, result_path, log = (work / f"{module}.spec.json", work / f"{module}.result.json",
                                   work / f"{module}.log")
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(json.dumps(spec, indent=1), encoding="utf-8")
    result_path.unlink(missing_ok=True)
    proc = _start([sys.executable, "-m", f"gpu_check.{module}", str(spec_path), str(result_path)], log)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _stop(proc)
        raise PartError(f"gpu_check.{module} ran past {timeout_s:.0f} s; log {log}:\n{_tail(log)}") from None
    if proc.returncode != 0 or not result_path.is_file():
        raise PartError(f"gpu_check.{module} exited {proc.returncode}; log {log}:\n{_tail(log)}")
    return json.loads(result_path.read_text(encoding="utf-8"))
