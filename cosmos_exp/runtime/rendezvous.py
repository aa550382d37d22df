"""Where the ranks of one process group meet: torch's env:// variables, their port, and undoing them afterwards."""

import contextlib
import os
import socket
from typing import Iterator, Mapping, Optional

from cosmos_exp.runtime.topology import Topology, environ_restored

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
    with environ_restored(TORCH_ENV_VARS):
        yield


def rendezvous_port(topo: Topology, configured: int, env: Optional[Mapping[str, str]] = None) -> int:
    """The process group's port. The ranks of a launch (torchrun, srun tasks, ours) must agree on one:
    `configured` (or the launcher's MASTER_PORT, which export_torch_env keeps). A process that is alone or
    starts its own ranks takes a free port from the OS: two runs started at the same moment would both
    find the configured port free and then collide on it (EADDRINUSE)."""
    env = os.environ if env is None else env
    if topo.in_launch:
        return configured
    return free_port(int(env["MASTER_PORT"]) if env.get("MASTER_PORT") else 0)


def free_port(preferred: int) -> int:
    """`preferred` if nothing listens on it, else a free port the OS picks (several runs on one host)."""
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise OSError("no free TCP port for the process group rendezvous")
