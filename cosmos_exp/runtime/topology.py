"""Who started this process and which part of the work is its own: the one reader of the launch variables.

    torchrun     RANK / LOCAL_RANK / WORLD_SIZE (and TORCHELASTIC_RUN_ID)
    ours         the same variables, plus LAUNCHER_ENV: ranks our launcher started (launcher.py)
    slurm        SLURM_PROCID / SLURM_LOCALID / SLURM_NTASKS of an srun (or submitit) task
    none         a process on its own

torchrun's variables win over SLURM's (torchrun inside a SLURM job). Independently, a SLURM job array
(SLURM_ARRAY_TASK_ID / _COUNT / _MIN) splits the items once more: the shares of one launch nest inside the
array task's share. Items are dealt by position in the sorted list, never by what is already done, so ranks
that start at different times agree on who owns which item: none is done twice and none is lost.
"""

import contextlib
import os
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping, Optional, Sequence, TypeVar

T = TypeVar("T")

TORCHRUN, OURS, SLURM, NONE = "torchrun", "ours", "slurm", "none"
LAUNCHER_ENV = "COSMOS_EXP_LAUNCHER"  # set in every rank our launcher starts
ARRAY_PREFIX = "SLURM_ARRAY_TASK_"


@dataclass(frozen=True)
class Shard:
    """This process's share of the items: every world_size-th one, starting at rank."""

    rank: int
    world_size: int
    source: str  # which variables decided: "single", "torchrun", "ours", "slurm", "slurm_array", joined by "+"


@dataclass(frozen=True)
class Topology:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    launched: str = NONE  # by whom: torchrun | ours | slurm | none
    launch_id: Optional[str] = None  # SLURM_JOB_ID, else torchrun's rendezvous id: the same in every rank
    array_index: Optional[int] = None  # SLURM array task, counted from the array's first task
    array_count: Optional[int] = None
    restart_count: int = 0  # SLURM_RESTART_COUNT: how often SLURM requeued this job (same job id, same run dir)

    @property
    def in_launch(self) -> bool:
        """This process is one rank of a launch that started all of them (torchrun, our launcher, srun with more
        than one task): it works in place and starts no ranks of its own. A one-task SLURM job is not: it may
        start its own ranks, whose shares nest inside its array task's."""
        return self.launched in (TORCHRUN, OURS) or self.world_size > 1

    def shard(self) -> Shard:
        """The share of the items this process answers: its rank in the launch, nested in the array task."""
        rank, world = self.rank, self.world_size
        sources = [] if self.launched == NONE else [self.launched]
        if self.array_index is not None and self.array_count is not None:
            # Arrays may start anywhere (--array=1-4); they must be contiguous for the shares to tile.
            if not 0 <= self.array_index < self.array_count:
                raise ValueError(
                    f"SLURM_ARRAY_TASK_ID (task {self.array_index} after SLURM_ARRAY_TASK_MIN) does not fit a "
                    f"contiguous array of {self.array_count} tasks (use --array=A-B without steps or lists)")
            rank, world = self.array_index * world + rank, self.array_count * world
            sources.append("slurm_array")
        return Shard(rank=rank, world_size=world, source="+".join(sources) or "single")


def _int(env: Mapping[str, str], name: str) -> Optional[int]:
    value = env.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from exc


def _given(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "") != ""


def topology(env: Optional[Mapping[str, str]] = None) -> Topology:
    """Read the launch from `env` (default os.environ); a ValueError names a variable that makes no sense."""
    env = os.environ if env is None else env
    if _given(env, "RANK") or _given(env, "WORLD_SIZE"):
        launched = OURS if _given(env, LAUNCHER_ENV) else TORCHRUN
        rank, local, world = _int(env, "RANK") or 0, _int(env, "LOCAL_RANK") or 0, _int(env, "WORLD_SIZE") or 1
    elif _given(env, "SLURM_PROCID"):
        launched = SLURM
        rank, local, world = _int(env, "SLURM_PROCID"), _int(env, "SLURM_LOCALID") or 0, _int(env, "SLURM_NTASKS") or 1
    else:
        launched, rank, local, world = NONE, 0, 0, 1
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"rank {rank} is outside world size {world} (from {launched}'s variables)")
    launch_id = env.get("SLURM_JOB_ID") or env.get("TORCHELASTIC_RUN_ID")
    task_id, task_count = _int(env, ARRAY_PREFIX + "ID"), _int(env, ARRAY_PREFIX + "COUNT")
    index = None if task_id is None or task_count is None else task_id - (_int(env, ARRAY_PREFIX + "MIN") or 0)
    return Topology(rank=rank, local_rank=local, world_size=world, launched=launched,
                    launch_id=None if launch_id in (None, "", "none") else launch_id,
                    array_index=index, array_count=task_count if index is not None else None,
                    restart_count=_int(env, "SLURM_RESTART_COUNT") or 0)


def in_multirun() -> bool:
    """Whether this process runs a job of a Hydra `-m` sweep."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@contextlib.contextmanager
def environ_restored(keys: Iterable[str]) -> Iterator[None]:
    """When the block ends, os.environ's `keys` are as they were before it (set to the same value, or unset)."""
    saved = {k: os.environ.get(k) for k in keys}
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def sweep_point_is_one_unit(multirun: Optional[bool] = None) -> Iterator[None]:
    """hydra-submitit runs each point of a `-m` sweep as one task of a SLURM job array: those SLURM_ARRAY_TASK_*
    variables say "another configuration", not "answer 1/N of the items". Inside a multirun job (`multirun`,
    default: Hydra says so) they are hidden, from topology() and from the ranks started, while the block runs."""
    hide = in_multirun() if multirun is None else multirun
    hidden = [k for k in os.environ if hide and k.startswith(ARRAY_PREFIX)]
    with environ_restored(hidden):
        for key in hidden:
            del os.environ[key]
        yield


def take_shard(items: Sequence[T], shard: Shard) -> list:
    """Every world_size-th item starting at rank: disjoint shares that together cover all items."""
    return list(items[shard.rank :: shard.world_size])
