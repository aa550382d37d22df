"""run.json: what is needed to trust and reproduce a run (code revision, environment, launcher ids)."""

import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import platform
import re
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
PACKAGE_DIR = Path(__file__).resolve().parents[1]
# Written into a built wheel by setup.py (the commit it was built from); absent from a source checkout.
BUILD_INFO = "_build_info.json"
PROJECT_NAME = "cosmos_exp"


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def _git(root: Path, *args: str) -> Optional[str]:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.decode("utf-8", "replace")


def git_state(root: Path) -> Dict[str, Any]:
    """Revision of the git work tree whose top is `root` (not of some repository above it); a dirty tree is
    hashed (tracked diff + untracked names)."""
    top = _git(root, "rev-parse", "--show-toplevel")
    sha = _git(root, "rev-parse", "HEAD")
    if top is None or sha is None or Path(top.strip()).resolve() != Path(root).resolve():
        return {"commit": None, "dirty": None, "diff_sha256": None, "note": f"{root} is not the top of a git checkout"}
    status = _git(root, "status", "--porcelain", "--untracked-files=all") or ""
    diff = _git(root, "diff", "HEAD", "--binary") or ""
    untracked = "".join(line for line in status.splitlines(True) if line.startswith("??"))
    dirty = bool(status.strip())
    return {
        "commit": sha.strip(),
        "branch": (_git(root, "rev-parse", "--abbrev-ref", "HEAD") or "").strip() or None,
        "dirty": dirty,
        "diff_sha256": hashlib.sha256((diff + untracked).encode()).hexdigest() if dirty else None,
        "changed_files": [line[3:] for line in status.splitlines()][:200],
    }


def is_project_root(root: Path) -> bool:
    """Whether `root` holds this project's pyproject.toml (the one that names cosmos_exp)."""
    try:
        text = (root / "pyproject.toml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return re.search(rf'^name\s*=\s*["\']{PROJECT_NAME}["\']', text, re.MULTILINE) is not None


def source_root(package_dir: Path = PACKAGE_DIR) -> Optional[Path]:
    """The source tree this package is imported from (a checkout, or an editable install of one), or None
    for an installed copy: site-packages may sit inside some unrelated git repository, whose state says
    nothing about this code."""
    return package_dir.parent if is_project_root(package_dir.parent) else None


def build_info(package_dir: Path = PACKAGE_DIR) -> Dict[str, Any]:
    """What setup.py recorded when the installed wheel was built (commit, dirty flag, diff hash)."""
    path = package_dir / BUILD_INFO
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return {"commit": None, "dirty": None, "diff_sha256": None,
                "note": f"no build record ({path}: {type(err).__name__}); installed some other way than a built wheel"}
    return {k: info.get(k) for k in ("commit", "branch", "dirty", "diff_sha256", "note") if k in info}


def code_state(package_dir: Path = PACKAGE_DIR) -> Dict[str, Any]:
    """Where the running code came from: a source checkout (its git state now) or an installed package
    (its version and the commit its wheel was built from)."""
    from cosmos_exp import __version__

    root = source_root(package_dir)
    if root is not None:
        return {"origin": "source checkout", "version": __version__, "path": str(root), **git_state(root)}
    return {"origin": "installed package", "version": __version__, "path": str(package_dir), **build_info(package_dir)}


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
