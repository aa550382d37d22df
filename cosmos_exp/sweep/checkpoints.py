"""Checkpoints of a training run as sweep points, and what ties an evaluation back to them (no torch here)."""

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from omegaconf import OmegaConf

from cosmos_exp.config.schema import Config
from cosmos_exp.config import ConfigError
from cosmos_exp import rundir

# The parts of a config that decide an evaluation's scores; name, paths, launcher settings do not.
FINGERPRINT_KEYS = ("stage", "model", "dataset", "generation", "eval", "seed")


def complete_checkpoints(train_run: Union[str, Path], key: str = "sweep.checkpoints") -> List[Path]:
    """The complete checkpoints/step_N of a training run, oldest first; a ConfigError naming `key` if none."""
    root = Path(train_run).expanduser()
    if not root.is_dir():
        raise ConfigError(key, f"training run directory {root} does not exist")
    found = rundir.list_complete(root)
    if not found:
        partial = sorted(p.name for p in rundir.checkpoints_dir(root).glob("*step_*")) \
            if rundir.checkpoints_dir(root).is_dir() else []
        raise ConfigError(key, f"{root} has no complete checkpoints/step_N (a complete one holds {rundir.COMPLETE})"
                          + (f"; found only incomplete {partial}" if partial else ""),
                          "point at a stage=sft run directory that saved at least one checkpoint")
    return [p.resolve() for p in found]


def base_model(train_run: Union[str, Path], key: str = "sweep.include_base") -> Path:
    """The model a training run started from: model.path of its resolved.yaml (relative to the run's cwd)."""
    run = Path(train_run)
    try:
        path = OmegaConf.select(rundir.load_run_config(run, typed=False), "model.path")
    except (OSError, ValueError) as err:
        raise ConfigError(key, f"cannot read the base model of {run} from its {rundir.RESOLVED_YAML}: {err}") from None
    if not path:
        raise ConfigError(key, f"{run}/{rundir.RESOLVED_YAML} names no model.path")
    base = Path(str(path)).expanduser()
    if not base.is_absolute():
        base = Path(rundir.read_run_json(run).get("cwd") or ".") / base
    if not base.is_dir():
        raise ConfigError(key, f"the base model {base} of training run {run} does not exist")
    return base.resolve()


def checkpoint_lineage(path: Optional[str], train_run: Optional[str] = None) -> Dict[str, Any]:
    """checkpoint -> training step -> training run, when the path is a checkpoints/step_N of a run, or the base
    model of `train_run` (step 0) when a checkpoint sweep included it."""
    out: Dict[str, Any] = {"checkpoint": str(Path(path).resolve()) if path else None, "step": None, "train_run": None}
    if not path:
        return out
    p = Path(path).resolve()
    try:
        out["step"] = rundir.step_of(p)
    except ValueError:  # a base model or any HF directory
        if train_run:
            try:
                if base_model(train_run) == p:
                    out.update(step=0, train_run=str(Path(train_run).resolve()), role="base model of the training run")
            except ConfigError:
                pass
        return out
    train_run_dir = rundir.train_run_of(p)
    if train_run_dir is not None:
        out["train_run"] = str(train_run_dir)
    if rundir.is_complete(p):
        try:
            info = rundir.read_checkpoint_info(p)
        except (OSError, ValueError):
            info = {}
        out["checkpoint_info"] = {k: v for k, v in info.items() if isinstance(v, (int, float, str, bool))}
    return out


def begin_evaluation(cfg: Config, run_dir: Path) -> Tuple[str, Dict[str, Any], Optional[Dict[str, Any]]]:
    """(fingerprint, lineage, the result of a finished evaluation in run_dir with the same settings, else None).
    When there is none, a stale evaluate.json is removed: it must not vouch for the outputs about to be written."""
    from cosmos_exp.evaluate.headline import headlines

    fingerprint = settings_fingerprint(cfg)
    lineage = checkpoint_lineage(cfg.model.path, cfg.sweep.checkpoints)
    if cfg.sweep.skip_done and rundir.evaluation_done(run_dir, fingerprint):
        summary = rundir.read_json(Path(run_dir) / rundir.SUMMARY_JSON)
        return fingerprint, lineage, {"skipped": "already evaluated with the same settings", **lineage,
                                      "headline": headlines(summary)}
    (Path(run_dir) / rundir.EVALUATE_JSON).unlink(missing_ok=True)
    return fingerprint, lineage, None


def settings_fingerprint(cfg: Config) -> str:
    """sha256 over the resolved settings that decide the scores (FINGERPRINT_KEYS)."""
    tree = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    keys = FINGERPRINT_KEYS + (("task",) if tree.get("task", {}).get("kind") == "trajectory" else ())
    picked = {k: tree.get(k) for k in keys}  # a trajectory task's metric, flow and prompt settings decide its scores
    blob = json.dumps(picked, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
