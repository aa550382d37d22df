"""stage=evaluate: caption the eval split with one checkpoint, then judge it, in ONE run directory.

    cosmos-exp stage=evaluate model.path=<run>/checkpoints/step_N eval=local
    cosmos-exp -m stage=evaluate sweep.checkpoints=<train run>      # one job per complete checkpoint

The run directory holds captions/ (the caption stage), scores/ + summary.json (the judge stage) and
evaluate.json: the checkpoint, its training step and training run, and a fingerprint of the settings that
decide the scores. A rerun into the same directory (a resumed sweep) whose evaluate.json fingerprint matches
and whose summary.json exists does nothing and says so.

A trajectory task (task.kind=trajectory, eval=trajectory) is predicted and scored by stages/evaluate_trajectory.py
into the same kind of run directory.
"""

import logging
from pathlib import Path
from typing import Any, Dict

from omegaconf import OmegaConf

from cosmos_exp import rundir
from cosmos_exp.config import Config
from cosmos_exp.evaluate.judging import check_api_key, load_rubrics
from cosmos_exp.infer.caption import eval_split
from cosmos_exp.plan import Plan
from cosmos_exp.repro.atomic import write_json_atomic
from cosmos_exp.sweep.checkpoints import begin_evaluation, checkpoint_lineage

log = logging.getLogger("cosmos_exp.evaluate")

def _check_judge_inputs(cfg: Config) -> None:
    """What the judge half can check before any caption exists: its rubric files and the judge's key."""
    load_rubrics(cfg.eval)
    if not cfg.dry_run:
        check_api_key(cfg.eval)


def plan(cfg: Config) -> Plan:
    from cosmos_exp.stages import caption

    if cfg.task.kind == "trajectory":
        from cosmos_exp.stages import evaluate_trajectory

        return evaluate_trajectory.plan(cfg)
    _check_judge_inputs(cfg)
    cap = caption.plan(cfg)
    lineage = checkpoint_lineage(cfg.model.path, cfg.sweep.checkpoints)
    p = Plan(stage="evaluate", inputs=list(cap.inputs), commands=list(cap.commands))
    if lineage["step"] is not None:
        p.add_input(f"training run (checkpoint step {lineage['step']})", str(lineage["train_run"]))
    p.outputs += cap.outputs + [f"{rundir.SCORES_DIR}/<id>{rundir.SCORE_SUFFIX}", rundir.SUMMARY_JSON,
                                rundir.EVALUATE_JSON]
    p.notes += [f"caption: {n}" for n in cap.notes]
    p.notes.append(f"judge: metrics {', '.join(cfg.eval.metrics)} on the captions of this run directory")
    p.notes.append("a rerun into a directory whose summary.json exists with the same settings is "
                   + ("skipped" if cfg.sweep.skip_done else "judged again (sweep.skip_done=false)"))
    return p


def run(cfg: Config, run_dir: Path) -> Dict[str, Any]:
    from cosmos_exp.stages import caption
    from cosmos_exp.stages import judge

    if cfg.task.kind == "trajectory":
        from cosmos_exp.stages import evaluate_trajectory

        return evaluate_trajectory.run(cfg, run_dir)
    run_dir = Path(run_dir)
    fingerprint, lineage, done = begin_evaluation(cfg, run_dir)
    if done is not None:
        log.info("evaluate: %s already holds summary.json with the same settings; skipped", run_dir)
        return done
    captioned = caption.run(cfg, run_dir)  # a sweep point captions its whole split (see runtime/topology.py)
    judge_cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    judge_cfg.captions = str(run_dir)
    judged = judge.run(judge_cfg, run_dir)
    record = {"stage": "evaluate", "fingerprint": fingerprint, **lineage,
              "split": eval_split(cfg), "dataset": cfg.dataset.name,
              "metrics": list(cfg.eval.metrics), "summary": rundir.SUMMARY_JSON,
              "captions": {k: v for k, v in captioned.items() if k != "captions_dir"}}
    write_json_atomic(run_dir / rundir.EVALUATE_JSON, record)  # last: its presence marks the evaluation finished
    return {**lineage, "split": record["split"], "summary": str(run_dir / rundir.SUMMARY_JSON),
            "items": judged["items"], "headline": judged["headline"]}
