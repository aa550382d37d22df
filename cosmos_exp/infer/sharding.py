"""Which share of the items this process answers, from torchrun or SLURM variables.

Two levels combine: the processes of one launch (torchrun's RANK/WORLD_SIZE, else srun's
SLURM_PROCID/SLURM_NTASKS) inside the tasks of a SLURM job array (SLURM_ARRAY_TASK_ID/COUNT).
Items are dealt by position in the sorted list, never by what is already done, so ranks that start
at different times still agree on who owns which item: none is done twice and none is lost.
"""

import contextlib
import os
from dataclasses import dataclass
from typing import Iterator, Mapping, Optional, Sequence, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    rank: int
    world_size: int
    source: str  # which variables decided: "single", "torchrun", "slurm", "slurm_array", combinations with "+"


def _int(env: Mapping[str, str], name: str) -> Optional[int]:
    value = env.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from exc


def shard_from_env(env: Optional[Mapping[str, str]] = None) -> Shard:
    env = os.environ if env is None else env
    rank, world, sources = 0, 1, []
    if _int(env, "WORLD_SIZE") is not None:
        rank, world = _int(env, "RANK") or 0, _int(env, "WORLD_SIZE")
        sources.append("torchrun")
    elif _int(env, "SLURM_NTASKS") is not None and _int(env, "SLURM_PROCID") is not None:
        rank, world = _int(env, "SLURM_PROCID"), _int(env, "SLURM_NTASKS")
        sources.append("slurm")

    task_id, task_count = _int(env, "SLURM_ARRAY_TASK_ID"), _int(env, "SLURM_ARRAY_TASK_COUNT")
    if task_id is not None and task_count is not None:
        # Arrays may start anywhere (--array=1-4); they must be contiguous for the shares to tile.
        index = task_id - (_int(env, "SLURM_ARRAY_TASK_MIN") or 0)
        if not 0 <= index < task_count:
            raise ValueError(
                f"SLURM_ARRAY_TASK_ID={task_id} does not fit a contiguous array of {task_count} tasks "
                "starting at SLURM_ARRAY_TASK_MIN (use --array=A-B without steps or lists)"
            )
        rank, world = index * world + rank, task_count * world
        sources.append("slurm_array")

    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"rank {rank} is outside world size {world} (from {'+'.join(sources)})")
    return Shard(rank=rank, world_size=world, source="+".join(sources) or "single")


@contextlib.contextmanager
def sweep_point_is_one_unit() -> Iterator[None]:
    """hydra-submitit runs each point of a `-m` sweep as one task of a SLURM job array: those
    SLURM_ARRAY_TASK_* variables say "another configuration", not "answer 1/N of the items". Inside a
    Hydra multirun job they are hidden (from this process and the workers it starts) while the block runs."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    in_sweep = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    hidden = {k: os.environ.pop(k) for k in list(os.environ) if in_sweep and k.startswith("SLURM_ARRAY_TASK_")}
    try:
        yield
    finally:
        os.environ.update(hidden)


def take_shard(items: Sequence[T], shard: Shard) -> list:
    """Every world_size-th item starting at rank: disjoint shares that together cover all items."""
    return list(items[shard.rank :: shard.world_size])
