"""Which share of the items this process answers, from torchrun or SLURM variables.

Two levels combine: the processes of one launch (torchrun's RANK/WORLD_SIZE, else srun's
SLURM_PROCID/SLURM_NTASKS) inside the tasks of a SLURM job array (SLURM_ARRAY_TASK_ID/COUNT).
Items are dealt by position in the sorted list, never by what is already done, so ranks that start
at different times still agree on who owns which item: none is done twice and none is lost.
"""

import os
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, TypeVar

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


def take_shard(items: Sequence[T], shard: Shard) -> list:
    """Every world_size-th item starting at rank: disjoint shares that together cover all items."""
    return list(items[shard.rank :: shard.world_size])
