"""The objective of a search: the one number a run returns to a sweeper plugin that proposes values as it goes
(hydra/sweeper=optuna), read from the run's own files, and objective.json, the trial's record of it.

    sft         eval_loss: the held-out loss of the run's last evaluation (metrics.jsonl)
    evaluate    a metric of eval.metrics: its headline in summary.json
    train_eval  either: the held-out loss of the checkpoint it picked (train_eval.json), or the metric's
                headline in its evaluation run (runs/evaluate/summary.json)

objective.json holds the value (or why there is none) and a hash of the trial's resolved config: a search
resumed into the same sweep directory proposes the same values in the same order (the sampler is seeded,
sweep/search.py), so a trial whose directory holds a finished record of the same config returns that value
without running again.
"""

import hashlib
import math
from pathlib import Path
from typing import Any, Dict, Optional

from cosmos_exp import rundir
from cosmos_exp.config import Config, ConfigError
from cosmos_exp.config.names import EVAL_LOSS
from cosmos_exp.repro.atomic import write_json_atomic

BASIC_SWEEPER = "BasicSweeper"  # Hydra's grid sweeper: its jobs return their result dict, not a number
STAGES_WITH_OBJECTIVE = ("sft", "evaluate", "train_eval")


def metric_of(cfg: Config) -> str:
    """sweep.objective.metric, or the stage's own: eval_loss for sft, the first of eval.metrics otherwise."""
    if cfg.sweep.objective.metric:
        return str(cfg.sweep.objective.metric)
    return EVAL_LOSS if cfg.stage.name == "sft" else str(cfg.eval.metrics[0])


def direction_of(cfg: Config) -> str:
    """sweep.objective.direction, or the metric's: lower is better for losses and displacement errors."""
    from cosmos_exp.evaluate.headline import LOWER_IS_BETTER

    if cfg.sweep.objective.direction:
        return str(cfg.sweep.objective.direction)
    metric = metric_of(cfg)
    return "minimize" if metric == EVAL_LOSS or metric in LOWER_IS_BETTER else "maximize"


def check(cfg: Config) -> None:
    """The objective can be measured by this run: a ConfigError naming the key otherwise (the direction's
    spelling is config/validate.py's)."""
    key = "sweep.objective.metric"
    stage = cfg.stage.name
    if stage not in STAGES_WITH_OBJECTIVE:
        raise ConfigError("stage", f"stage={stage} has no objective to return to a sweeper",
                          f"search over one of {', '.join(STAGES_WITH_OBJECTIVE)}")
    metric = metric_of(cfg)
    if metric == EVAL_LOSS:
        if stage == "evaluate":
            raise ConfigError(key, "stage=evaluate trains nothing, so it has no eval_loss",
                              f"pick one of eval.metrics {list(cfg.eval.metrics)}, or search with stage=train_eval")
        if not cfg.train.eval_every:
            raise ConfigError("train.eval_every", "the objective eval_loss needs held-out evaluations during training",
                              "set train.eval_every=<steps>")
        return
    if stage == "sft":
        raise ConfigError(key, f"stage=sft measures only eval_loss, not {metric}",
                          "use sweep.objective.metric=eval_loss, or stage=train_eval to evaluate each trial")
    if metric not in cfg.eval.metrics:
        raise ConfigError(key, f"{metric} is not among eval.metrics {list(cfg.eval.metrics)}",
                          "add it to eval.metrics or pick one of them")


def _last_eval_loss(train_run: Path) -> Optional[float]:
    losses = [r["eval_loss"] for r in rundir.read_metrics(train_run) if r.get("eval_loss") is not None]
    return float(losses[-1]) if losses else None


def value_of(cfg: Config, run_dir: Path) -> float:
    """The objective of a finished run, from its files; a ValueError saying what is missing."""
    run_dir = Path(run_dir)
    metric = metric_of(cfg)
    parts = rundir.read_json_optional(run_dir / rundir.TRAIN_EVAL_JSON) or {}
    if metric == EVAL_LOSS and cfg.stage.name == "train_eval":  # the held-out loss of the checkpoint it picked
        value = parts.get("eval_loss")
        where = run_dir / rundir.TRAIN_EVAL_JSON
    elif metric == EVAL_LOSS:
        value = _last_eval_loss(run_dir)
        where = run_dir / rundir.METRICS_JSONL
    else:
        scored = Path(parts["evaluate"]) if cfg.stage.name == "train_eval" and parts.get("evaluate") else run_dir
        summary = rundir.read_json_optional(scored / rundir.SUMMARY_JSON) or {}
        value = ((summary.get("metrics") or {}).get(metric) or {}).get("headline")
        where = scored / rundir.SUMMARY_JSON
    if value is None or not math.isfinite(float(value)):
        raise ValueError(f"no value of the objective {metric} in {where}")
    return float(value)


def config_hash(cfg: Config) -> str:
    """sha256 of the resolved config as resolved.yaml holds it: what makes two trials the same trial."""
    from cosmos_exp.repro.record import resolved_yaml

    return hashlib.sha256(resolved_yaml(cfg).encode("utf-8")).hexdigest()


def record(run_dir: Path, metric: Optional[str], direction: Optional[str], value: Optional[float],
           error: Optional[str] = None, config: Optional[str] = None) -> Dict[str, Any]:
    """Write objective.json: the value, or the failure the sweeper was told of (value null)."""
    out = {"metric": metric, "direction": direction, "value": value,
           "status": "succeeded" if error is None else "failed", "error": error, "config_sha256": config}
    write_json_atomic(Path(run_dir) / rundir.OBJECTIVE_JSON, out)
    return out


def finished(run_dir: Path, cfg: Config) -> Optional[float]:
    """The recorded value when this run directory holds a finished trial of the same config, else None."""
    found = rundir.read_json_optional(Path(run_dir) / rundir.OBJECTIVE_JSON) or {}
    if found.get("status") != "succeeded" or found.get("value") is None:
        return None
    if found.get("config_sha256") != config_hash(cfg) or found.get("metric") != metric_of(cfg):
        return None
    return float(found["value"])


def wants_number(hydra_cfg: Any) -> bool:
    """True for a job of a multirun whose sweeper is not Hydra's grid sweeper: it must return a float."""
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    if hydra_cfg.mode != RunMode.MULTIRUN:
        return False
    return BASIC_SWEEPER not in str(OmegaConf.select(hydra_cfg, "sweeper._target_", default="") or "")
