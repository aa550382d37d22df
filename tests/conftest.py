"""Shared test set-up: quiet, single-threaded, offline; helpers to run the real CLI in a subprocess."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import pytest

# The 2 CI cores are shared: one thread per process. Nothing may reach the network.
for _k, _v in {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
               "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "WANDB_MODE": "offline",
               "HYDRA_FULL_ERROR": "0"}.items():
    os.environ[_k] = _v

REPO_ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = REPO_ROOT / "cosmos_exp" / "conf"  # package data: it ships inside the wheel


def run_cli(args: List[str], cwd: Path, env: Optional[Dict[str, str]] = None, module: str = "cosmos_exp.run",
            timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python -m <module> <args>` the way a user runs cosmos-exp (argv list, real process)."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    """Wait until `path` exists while `proc` runs (a test that kills a run once it has checkpointed)."""
    import time

    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, "training ended before the checkpoint appeared"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A fresh working directory; runs write under <workdir>/outputs."""
    return tmp_path


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> Dict[str, Path]:
    """Synthetic dataset + both tiny models, made once per session by the real `stage=prepare`."""
    root = tmp_path_factory.mktemp("prepared")
    for model in ("tiny_qwen2_5_vl", "tiny_qwen3_vl"):
        proc = run_cli(["stage=prepare", f"model={model}", f"paths.root={root}/outputs"], cwd=root)
        assert proc.returncode == 0, proc.stderr[-3000:]
    out = root / "outputs"
    return {"root": root, "outputs": out, "data": out / "data" / "synthetic_av",
            "tiny_qwen2_5_vl": out / "models" / "tiny_qwen2_5_vl", "tiny_qwen3_vl": out / "models" / "tiny_qwen3_vl"}
