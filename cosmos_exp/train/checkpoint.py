"""Writing a training run's checkpoints: atomic publication, `latest`, retention, resume (names: cosmos_exp.rundir).

Layout under <run_dir>/checkpoints/:
    step_N/               a complete checkpoint: the export (Hugging Face files: config, safetensors, tokenizer,
                          processor files) + its training state (ds/: DeepSpeed's optimizer, scheduler and module
                          state; train_state_rank<R>.pt: RNG states, data position) + complete.json
    latest                text file holding "step_N" of the newest complete checkpoint
    .tmp_step_N/          a checkpoint being written; renamed to step_N once complete

A step directory exists only once every rank has finished writing into its temp directory, so a
crash (even SIGKILL) leaves either the whole checkpoint or none. Temp dirs from killed runs are
removed at the next start.

Retention (train.keep_last_states, train.keep_last_exports) prunes the two parts separately: an older
checkpoint loses its training state (complete.json then says "training_state": false, and it stays a complete
checkpoint a sweep evaluates), and loses the whole directory only once its export is not kept either. Resume
takes the newest checkpoint that still holds a training state.
"""

import shutil
from pathlib import Path
from typing import Dict, List, Optional, Union

from cosmos_exp.config.train import TrainConfig
from cosmos_exp.repro.atomic import write_json_atomic, write_text_atomic
from cosmos_exp.rundir import (COMPLETE, LATEST, TEMP_STEP_PREFIX, checkpoints_dir, is_complete, list_complete,
                               read_checkpoint_info, step_dir, temp_step_dir)

STATE_DIR = "ds"  # DeepSpeed's checkpoint tag: its files land in step_N/ds/
STATE_FILE_GLOB = "train_state_rank*.pt"
HAS_STATE = "training_state"  # the complete.json field retention turns false


def state_file(rank: int) -> str:
    return f"train_state_rank{rank}.pt"


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
    write_json_atomic(tmp / COMPLETE, {"step": step, HAS_STATE: True, **info})
    if final.exists():  # re-saving a step after a resume: the new copy wins
        shutil.rmtree(final)
    tmp.rename(final)
    write_text_atomic(checkpoints_dir(run_dir) / LATEST, final.name + "\n")
    return final


def has_training_state(step_path: Union[str, Path]) -> bool:
    """A complete checkpoint that can be resumed from: its state was not pruned."""
    path = Path(step_path)
    return is_complete(path) and read_checkpoint_info(path).get(HAS_STATE, True) and (path / STATE_DIR).is_dir()


def _prune_state(path: Path) -> None:
    info = read_checkpoint_info(path)
    # The marker first: a crash mid-delete leaves a checkpoint that says it has no state, never a broken state.
    write_json_atomic(path / COMPLETE, {**info, HAS_STATE: False})
    shutil.rmtree(path / STATE_DIR, ignore_errors=True)
    for f in path.glob(STATE_FILE_GLOB):
        f.unlink()


def apply_retention(run_dir: Union[str, Path], keep_states: Optional[int],
                    keep_exports: Optional[int]) -> Dict[str, List[str]]:
    """Prune training states beyond the newest `keep_states`, and whole checkpoints whose export is beyond the
    newest `keep_exports` and whose state is not kept (None keeps all). The newest checkpoint keeps both."""
    done = list_complete(run_dir)
    with_state = [p for p in done if has_training_state(p)]
    states_kept = set(with_state if keep_states is None else with_state[-keep_states:])
    exports_kept = set(done if keep_exports is None else done[-keep_exports:])
    pruned: Dict[str, List[str]] = {"states": [], "checkpoints": []}
    for path in done:
        if path in exports_kept or path in states_kept:
            if path in with_state and path not in states_kept:
                _prune_state(path)
                pruned["states"].append(path.name)
            continue
        # Drop the marker first: a crash mid-delete leaves an incomplete dir, never a broken "complete" one.
        (path / COMPLETE).unlink(missing_ok=True)
        shutil.rmtree(path, ignore_errors=True)
        pruned["checkpoints"].append(path.name)
    return pruned


def retention_note(t: TrainConfig) -> str:
    """What a run keeps of its checkpoints, for the plan."""
    def kept(n: Optional[int], key: str) -> str:
        return "all" if n is None else f"the newest {n} (train.{key})"

    return (f"checkpoints: Hugging Face exports kept: {kept(t.keep_last_exports, 'keep_last_exports')}; training "
            f"states (optimizer, scheduler, RNG, data position) kept: {kept(t.keep_last_states, 'keep_last_states')}, "
            "an older one pruned once a newer checkpoint is complete")


def resume_target(run_dir: Union[str, Path], resume: str, requeued: bool = False) -> Optional[Path]:
    """The checkpoint to resume from: none, the newest one of this run that holds a training state (auto), or a
    path (which must hold one). A `requeued` job (SLURM_RESTART_COUNT > 0) continues its own run: its newest
    checkpoint with a state wins over `resume`, which only said where its first attempt starts."""
    if requeued:
        own = resume_target(run_dir, "auto")
        if own is not None:
            return own
    if resume == "none":
        return None
    if resume == "auto":
        with_state = [p for p in list_complete(run_dir) if has_training_state(p)]
        return with_state[-1] if with_state else None
    path = Path(resume)
    if not is_complete(path):
        raise FileNotFoundError(f"train.resume={resume}: not a complete checkpoint (no {COMPLETE})")
    if not has_training_state(path):
        newest = resume_target(path.parent.parent, "auto")
        raise FileNotFoundError(f"train.resume={resume}: holds the exported weights only, its training state was "
                                "pruned (train.keep_last_states); resume from "
                                + (str(newest) if newest else "a checkpoint that still has one")
                                + ", or use it as model.path to start a new run from these weights")
    return path
