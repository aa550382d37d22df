"""Writing a training run's checkpoints: atomic publication, `latest`, retention, resume (names: cosmos_exp.rundir).

Layout under <run_dir>/checkpoints/:
    step_N/               a complete checkpoint: Hugging Face files (config, safetensors, tokenizer,
                          processor files) + ds/ (DeepSpeed optimizer/scheduler state) +
                          train_state_rank<R>.pt (RNG states, data position) + complete.json
    latest                text file holding "step_N" of the newest complete checkpoint
    .tmp_step_N/          a checkpoint being written; renamed to step_N once complete

A step directory exists only once every rank has finished writing into its temp directory, so a
crash (even SIGKILL) leaves either the whole checkpoint or none. Temp dirs from killed runs are
removed at the next start.
"""

import shutil
from pathlib import Path
from typing import List, Optional, Union

from cosmos_exp.repro.atomic import write_json_atomic, write_text_atomic
from cosmos_exp.rundir import (COMPLETE, LATEST, TEMP_STEP_PREFIX, checkpoints_dir, is_complete, list_complete,
                               newest_complete, step_dir, temp_step_dir)


def clean_temp_dirs(run_dir: Union[str, Path]) -> List[str]:
    """Remove half-written checkpoints left by a killed run (rank 0, before training starts)."""
    root = checkpoints_dir(run_dir)
    removed = []
    if root.is_dir():
        for p in root.iterdir():
            if p.name.startswith(TEMP_STEP_PREFIX):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p.name)
    return removed


def publish(run_dir: Union[str, Path], step: int, info: dict) -> Path:
    """Mark the temp dir complete and rename it to step_N, then update `latest` (rank 0, after a barrier)."""
    tmp, final = temp_step_dir(run_dir, step), step_dir(run_dir, step)
    write_json_atomic(tmp / COMPLETE, {"step": step, **info})
    if final.exists():  # re-saving a step after a resume: the new copy wins
        shutil.rmtree(final)
    tmp.rename(final)
    write_text_atomic(checkpoints_dir(run_dir) / LATEST, final.name + "\n")
    return final


def apply_retention(run_dir: Union[str, Path], keep_last: Optional[int]) -> List[str]:
    """Delete the oldest complete checkpoints beyond `keep_last` (None keeps all)."""
    if keep_last is None:
        return []
    done = list_complete(run_dir)
    removed = []
    for old in done[:-keep_last] if len(done) > keep_last else []:
        # Drop the marker first: a crash mid-delete leaves an incomplete dir, never a broken "complete" one.
        (old / COMPLETE).unlink(missing_ok=True)
        shutil.rmtree(old, ignore_errors=True)
        removed.append(old.name)
    return removed


def resume_target(run_dir: Union[str, Path], resume: str) -> Optional[Path]:
    """The checkpoint to resume from: none, the newest complete one of this run (auto), or a path."""
    if resume == "none":
        return None
    if resume == "auto":
        return newest_complete(run_dir)
    path = Path(resume)
    if not is_complete(path):
        raise FileNotFoundError(f"train.resume={resume}: not a complete checkpoint (no {COMPLETE})")
    return path
