"""run.json: what is needed to trust and reproduce a run (code revision, environment, launcher ids)."""

import datetime as dt
import hashlib
import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Optional

PACKAGES = ("cosmos_exp", "torch", "transformers", "accelerate", "deepspeed", "hydra-core", "omegaconf",
            "decord", "av", "openai", "wandb", "sacrebleu", "tokenizers", "safetensors", "numpy",
            "submitit", "hydra-submitit-launcher", "vllm")
SLURM_VARS = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_PROCID", "SLURM_NTASKS",
              "SLURM_NODELIST", "SLURM_JOB_NAME", "SLURM_RESTART_COUNT")
TORCHRUN_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                 "TORCHELASTIC_RUN_ID")
SOURCE_ROOT = Path(__file__).resolve().parents[2]


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def _git(*args: str) -> Optional[str]:
    try:
        out = subprocess.run(["git", "-C", str(SOURCE_ROOT), *args], capture_output=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.decode("utf-8", "replace")


def git_state() -> Dict[str, Any]:
    """Revision of the cosmos_exp source tree; a dirty tree is hashed (tracked diff + untracked names)."""
    sha = _git("rev-parse", "HEAD")
    if sha is None:
        return {"sha": None, "dirty": None, "diff_sha256": None, "note": f"{SOURCE_ROOT} is not a git checkout"}
    status = _git("status", "--porcelain", "--untracked-files=all") or ""
    diff = _git("diff", "HEAD", "--binary") or ""
    untracked = "".join(line for line in status.splitlines(True) if line.startswith("??"))
    dirty = bool(status.strip())
    return {
        "sha": sha.strip(),
        "branch": (_git("rev-parse", "--abbrev-ref", "HEAD") or "").strip() or None,
        "dirty": dirty,
        "diff_sha256": hashlib.sha256((diff + untracked).encode()).hexdigest() if dirty else None,
        "changed_files": [line[3:] for line in status.splitlines()][:200],
    }


def package_versions() -> Dict[str, Optional[str]]:
    versions: Dict[str, Optional[str]] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def environment_record() -> Dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "cwd": os.getcwd(),
        "argv": list(sys.argv),
        "packages": package_versions(),
        "slurm": {k: os.environ[k] for k in SLURM_VARS if k in os.environ},
        "torchrun": {k: os.environ[k] for k in TORCHRUN_VARS if k in os.environ},
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
