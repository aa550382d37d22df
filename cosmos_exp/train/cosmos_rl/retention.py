"""Checkpoint retention for cosmos-rl runs, done by us.

cosmos-rl's `train.ckpt.max_keep` deletes a training state (`<OUT>/checkpoints/step_N/`) together with its
Hugging Face export (`<OUT>/safetensors/step_N/`, utils/checkpoint.py `_delete_checkpoint`), so keeping few
states would lose the exports a checkpoint sweep evaluates. The TOML therefore says `max_keep = -1` (cosmos-rl
deletes nothing) and the stage prunes the two separately, at every checkpoint poll while cosmos-rl runs and
once after it ends: training states beyond train.keep_last_states, exports beyond train.keep_last_exports.
Only complete states count (cosmos-rl's own rule: `policy/cosmos_config` and one `.rank_<r>_complete` per saving
rank), one being written is never touched, and neither is what cosmos-rl links as `best/`.
"""

import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Set

from cosmos_exp import rundir
from cosmos_exp.train.cosmos_rl.checkpoints import list_exports
from cosmos_exp.train.cosmos_rl.render import output_dir


def saving_ranks(doc: Dict[str, Any]) -> int:
    """Ranks that write a state: cosmos-rl's world size / dp_replicate."""
    par = doc["policy"]["parallelism"]
    n = 1
    for key in ("tp_size", "dp_shard_size", "cp_size", "pp_size"):
        n *= max(1, int(par.get(key, 1)))
    return n


def state_complete(step: Path, ranks: int) -> bool:
    policy = step / "policy"
    return (policy / "cosmos_config").exists() and all((policy / f".rank_{r}_complete").exists() for r in range(ranks))


def complete_states(run_dir: Path, ranks: int) -> List[Path]:
    """Complete training states, oldest step first."""
    root = output_dir(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and rundir.is_step_dir(p)
             and state_complete(p, ranks)]
    return sorted(found, key=rundir.step_of)


def _best(run_dir: Path) -> Set[Path]:
    """What cosmos-rl links as the best checkpoint (validation on): kept whatever its age."""
    best = output_dir(run_dir).parent / "best"
    return {(best / name).resolve() for name in ("checkpoints", "safetensors") if (best / name).is_symlink()}


def _older_than_newest(paths: List[Path], keep: Optional[int]) -> List[Path]:
    return [] if keep is None else paths[:-keep]


def prune(run_dir: Path, doc: Dict[str, Any], keep_states: Optional[int],
          keep_exports: Optional[int]) -> Dict[str, List[str]]:
    """Delete training states beyond the newest `keep_states` and exports beyond the newest `keep_exports`
    (None keeps all); returns the step names removed of each."""
    run_dir = Path(run_dir)
    best = _best(run_dir)
    removed: Dict[str, List[str]] = {"states": [], "exports": []}
    for kind, paths, keep in (("states", complete_states(run_dir, saving_ranks(doc)), keep_states),
                              ("exports", list_exports(run_dir), keep_exports)):
        for path in _older_than_newest(paths, keep):
            if path.resolve() in best:
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed[kind].append(path.name)
    return removed

