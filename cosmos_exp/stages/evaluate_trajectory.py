"""stage=evaluate with a trajectory task (eval=trajectory): predict, score and record one trajectory checkpoint.

    cosmos-exp stage=evaluate experiment=trajectory_synthetic model.path=<run>/checkpoints/step_N \
        dataset.rigs=[rig_a,rig_b]

stages/evaluate.py hands a trajectory task here. The run directory holds predictions/<rig>/<scene>.json (the
expert's K samples and the backbone's token decode, infer/trajectory.py), scores/<rig>__<scene>.score.json and
summary.json (evaluate/trajectory_scores.py: metrics.trajectory, headline minADE of the expert with its CI, per
source and rig, rig differences on the same scenes), data_report.json, and evaluate.json (checkpoint lineage and
settings fingerprint) written last, so a rerun with the same settings is skipped as a caption evaluation is.
"""

import logging
from pathlib import Path
from typing import Any, Dict

from omegaconf import OmegaConf

from cosmos_exp import rundir
from cosmos_exp.config import Config, ConfigError
from cosmos_exp.evaluate.headline import describe, headlines
from cosmos_exp.evaluate.trajectory_scores import METRIC, score_predictions
from cosmos_exp.infer.caption import eval_split
from cosmos_exp.plan import Plan
from cosmos_exp.repro.atomic import write_json_atomic
from cosmos_exp.sweep.checkpoints import begin_evaluation, checkpoint_lineage

log = logging.getLogger("cosmos_exp.evaluate")


def _check_checkpoint(cfg: Config) -> None:
    """model.path is a trajectory checkpoint (backbone + action_expert/) whose settings are the task's."""
    from cosmos_exp.models.trajectory_checkpoint import EXPERT_DIR
    from cosmos_exp.train.trajectory_task import check_checkpoint

    path = Path(str(cfg.model.path))
    if not (path / EXPERT_DIR / "config.json").is_file():
        raise ConfigError("model.path", f"{path} is not a trajectory checkpoint (no {EXPERT_DIR}/config.json)",
                          "pass a checkpoints/step_N of a trajectory training run")
    check_checkpoint(cfg)


def plan(cfg: Config) -> Plan:
    from cosmos_exp.data.driving_datasets import count_driving, split_rigs

    _check_checkpoint(cfg)
    split = eval_split(cfg)
    tr = cfg.task.trajectory
    lineage = checkpoint_lineage(cfg.model.path, cfg.sweep.checkpoints)
    p = Plan(stage="evaluate")
    p.add_input("trajectory checkpoint", str(cfg.model.path))
    if lineage["step"] is not None:
        p.add_input(f"training run (checkpoint step {lineage['step']})", str(lineage["train_run"]))
    rigs = split_rigs(cfg.dataset, split) if cfg.dataset.kind == "driving" else []
    p.add_input(f"driving clips, split {split}" + (f", rigs {', '.join(rigs)}" if rigs else ""),
                str(cfg.dataset.root), count_driving(cfg.dataset, split))
    p.outputs += [f"{rundir.PREDICTIONS_DIR}/<rig>/<scene>.json", f"{rundir.SCORES_DIR}/<rig>__<scene>"
                  f"{rundir.SCORE_SUFFIX}", rundir.SUMMARY_JSON, rundir.DATA_REPORT, rundir.EVALUATE_JSON]
    p.notes.append(f"per clip: {tr.metrics.k} expert samples ({tr.flow_matching.euler_steps} Euler steps, noise "
                   f"seeded by seed={cfg.seed} and the scene id) and the greedy decode of the future tokens; "
                   f"{cfg.generation.batch_size} clips per forward pass")
    p.notes.append(f"headline: minADE of the {tr.metrics.headline_source} over the first {tr.metrics.k} samples, "
                   f"metres, with {round(100 * cfg.eval.confidence)}% bootstrap CIs per source and rig")
    p.notes.append("clips with a prediction file are not predicted again"
                   + (" (generation.force=true: all are)" if cfg.generation.force else ""))
    p.notes.append("a rerun into a directory whose summary.json exists with the same settings is "
                   + ("skipped" if cfg.sweep.skip_done else "scored again (sweep.skip_done=false)"))
    return p


def run(cfg: Config, run_dir: Path) -> Dict[str, Any]:
    from cosmos_exp.infer.trajectory import SOURCES, run_predictions

    run_dir = Path(run_dir)
    fingerprint, lineage, done = begin_evaluation(cfg, run_dir)
    if done is not None:
        log.info("evaluate: %s already holds summary.json with the same settings; skipped", run_dir)
        return done
    _check_checkpoint(cfg)
    split = eval_split(cfg)
    predicted = run_predictions(cfg, run_dir, split)
    write_json_atomic(run_dir / rundir.DATA_REPORT, predicted["report"].to_dict())
    ev = cfg.eval
    boot = {"samples": int(ev.bootstrap_samples), "confidence": float(ev.confidence), "seed": int(ev.seed)}
    metrics_cfg = OmegaConf.to_object(cfg.task.trajectory.metrics)  # the dataclass its summary records
    items, metric = score_predictions(predicted["records"], SOURCES, metrics_cfg, boot, rundir.trajectory_item_id)
    for stale in set(rundir.score_files(run_dir)) - set(items):  # clips of an earlier run with other rigs
        rundir.score_path(run_dir, stale).unlink()
    for item_id, record in items.items():
        write_json_atomic(rundir.score_path(run_dir, item_id), record)
    summary = {"stage": "evaluate", "task": cfg.task.name, "checkpoint": lineage["checkpoint"],
               "dataset": cfg.dataset.name, "split": split, "items": len(items),
               "rigs": sorted({r["rig"] for r in predicted["records"]}), "bootstrap": boot,
               "predictions": {k: predicted[k] for k in ("clips", "predicted", "reused")}, "metrics": {METRIC: metric}}
    write_json_atomic(run_dir / rundir.SUMMARY_JSON, summary)
    log.info("evaluate: %s", describe(summary["metrics"], boot["confidence"]))
    record = {"stage": "evaluate", "fingerprint": fingerprint, **lineage, "split": split, "dataset": cfg.dataset.name,
              "task": cfg.task.name, "metrics": list(ev.metrics), "summary": rundir.SUMMARY_JSON,
              "predictions": summary["predictions"]}
    write_json_atomic(run_dir / rundir.EVALUATE_JSON, record)  # last: its presence marks the evaluation finished
    return {**lineage, "split": split, "summary": str(run_dir / rundir.SUMMARY_JSON), "items": len(items),
            "headline": headlines(summary)}
