"""Process topology: are we inside a launcher (torchrun, SLURM, deepspeed), and starting ranks ourselves.

Inside a launcher every process already runs this code, so each joins the process group. Outside
one, with more than one process wanted on this node, `launch_local` starts one worker subprocess
per rank (torchrun-style environment), forwards stop signals to them, waits for all, and fails if
any fails, stopping the rest.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

from cosmos_exp.train.signals import STOP_SIGNALS


@dataclass(frozen=True)
class Topology:
    rank: int
    local_rank: int
    world_size: int
    launched: bool  # True when an external launcher (or our own) started this process


def in_launcher(env: Optional[Dict[str, str]] = None) -> bool:
    env = os.environ if env is None else env
    return "RANK" in env or "WORLD_SIZE" in env or "SLURM_PROCID" in env


def topology(env: Optional[Dict[str, str]] = None) -> Topology:
    """Rank / world size from torchrun-style variables, else SLURM's, else a single process."""
    env = os.environ if env is None else env
    if "RANK" in env or "WORLD_SIZE" in env:
        return Topology(int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0)), int(env.get("WORLD_SIZE", 1)), True)
    if "SLURM_PROCID" in env:
        return Topology(int(env["SLURM_PROCID"]), int(env.get("SLURM_LOCALID", 0)),
                        int(env.get("SLURM_NTASKS", 1)), True)
    return Topology(0, 0, 1, False)


TORCH_ENV_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def export_torch_env(topo: Topology, master_port: int) -> None:
    """torch.distributed's env:// init reads these; a SLURM task only has SLURM_* variables."""
    os.environ.setdefault("RANK", str(topo.rank))
    os.environ.setdefault("LOCAL_RANK", str(topo.local_rank))
    os.environ.setdefault("WORLD_SIZE", str(topo.world_size))
    os.environ.setdefault("MASTER_ADDR", os.environ.get("SLURM_LAUNCH_NODE_IPADDR", "127.0.0.1"))
    os.environ.setdefault("MASTER_PORT", str(master_port))


@contextlib.contextmanager
def lone_process() -> Iterator[None]:
    """Train in this process with nothing launching it, then remove the rank variables export_torch_env
    set, so the next job of a Hydra multirun (same process) is not mistaken for a launched rank. The
    one-process group stays: DeepSpeed caches its groups, and the next job reuses it."""
    saved = {k: os.environ.get(k) for k in TORCH_ENV_VARS}
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def rendezvous_port(topo: Topology, configured: int, env: Optional[Dict[str, str]] = None) -> int:
    """The process group's port. Ranks started by torchrun/srun must agree on one: `configured` (or the
    launcher's MASTER_PORT, which export_torch_env keeps). Ranks we start ourselves (a lone process, or
    launch_local's workers) take a free port from the OS: two runs started at the same moment would
    both find the configured port free and then collide on it (EADDRINUSE)."""
    env = os.environ if env is None else env
    if topo.launched:
        return configured
    return free_port(int(env["MASTER_PORT"]) if env.get("MASTER_PORT") else 0)


def free_port(preferred: int) -> int:
    """`preferred` if nothing listens on it, else a free port the OS picks (several runs on one host)."""
    import socket

    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise OSError("no free TCP port for the process group rendezvous")


def worker_argv(run_dir: Path) -> List[str]:
    return [sys.executable, "-m", "cosmos_exp.train.worker", str(run_dir)]


def rank_env(rank: int, world_size: int, master_port: int, base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ if base is None else base)
    env.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_WORLD_SIZE=str(world_size),
               MASTER_ADDR="127.0.0.1", MASTER_PORT=str(master_port), GROUP_RANK="0")
    return env


def launch_local(argv: Sequence[str], world_size: int, master_port: int, log_dir: Path,
                 poll_s: float = 0.2, grace_s: float = 30.0) -> None:
    """Run `argv` once per rank; rank 0 shares our console, the others log to log_dir/rank_N.log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    procs: List[subprocess.Popen] = []
    logs = []
    forwarded = {}

    def forward(signum, frame):  # noqa: ARG001 - a stop signal goes to every rank, which checkpoint together
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    for sig in STOP_SIGNALS:
        forwarded[sig] = signal.signal(sig, forward)
    try:
        for rank in range(world_size):
            out = None
            if rank > 0:
                out = open(log_dir / f"rank_{rank}.log", "ab")
                logs.append(out)
            procs.append(subprocess.Popen(list(argv), env=rank_env(rank, world_size, master_port),
                                          stdout=out, stderr=subprocess.STDOUT if out else None))
        failed = _wait_all(procs, poll_s)
        if failed is not None:
            _stop_all(procs, grace_s)
            rank, code = failed
            where = "the console above" if rank == 0 else str(log_dir / f"rank_{rank}.log")
            raise RuntimeError(f"training rank {rank} exited with status {code}; see {where}")
    except BaseException:
        _stop_all(procs, grace_s)
        raise
    finally:
        for sig, handler in forwarded.items():
            signal.signal(sig, handler)
        for f in logs:
            f.close()


def _wait_all(procs: List[subprocess.Popen], poll_s: float):
    """Wait until all exit 0 (returns None) or the first one fails (returns (rank, code))."""
    while True:
        codes = [p.poll() for p in procs]
        for rank, code in enumerate(codes):
            if code not in (None, 0):
                return rank, code
        if all(c == 0 for c in codes):
            return None
        time.sleep(poll_s)


def _stop_all(procs: List[subprocess.Popen], grace_s: float) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + grace_s
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
