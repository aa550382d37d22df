"""stage=evaluate: caption the eval split with one checkpoint, then judge it, in ONE run directory.

    cosmos-exp stage=evaluate model.path=<run>/checkpoints/step_N eval=local
    cosmos-exp -m stage=evaluate sweep.checkpoints=<train run>      # one job per complete checkpoint

The run directory holds captions/ (the caption stage), scores/ + summary.json (the judge stage) and
evaluate.json: the checkpoint, its training step and training run, and a fingerprint of the settings that
decide the scores. A rerun into the same directory (a resumed sweep) whose evaluate.json fingerprint matches
and whose summary.json exists does nothing and says so.
"""

import json
import logging
import os
from pathlib import Path
from typing import Any, Dict

from omegaconf import DictConfig, OmegaConf

from cosmos_exp.config import ConfigError
from cosmos_exp.plan import Plan
from cosmos_exp.repro.atomic import write_json_atomic
from cosmos_exp.sweep.checkpoints import checkpoint_lineage, settings_fingerprint

log = logging.getLogger("cosmos_exp.evaluate")

EVALUATE_JSON = "evaluate.json"
SUMMARY_JSON = "summary.json"


def _check_judge_inputs(cfg: DictConfig) -> None:
    """What the judge half can check before any caption exists: metrics and their rubrics."""
    from cosmos_exp.evaluate.judge_stage import METRICS
    from cosmos_exp.evaluate.rubric import load_rubric

    metrics = list(cfg.eval.metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ConfigError("eval.metrics", f"unknown or empty metrics {unknown or metrics}",
                          f"choose from {list(METRICS)}")
    if cfg.captions:
        raise ConfigError("captions", "stage=evaluate captions into its own run directory",
                          "drop captions=..., or use stage=judge to score an existing caption run")
    if cfg.generation.output_dir:
        raise ConfigError("generation.output_dir", "stage=evaluate keeps captions in its run directory",
                          "resume an evaluation by rerunning into the same hydra.run.dir / hydra.sweep.dir")
    rubrics = []
    if {"llm_judge", "local", "bleu"} & set(metrics):
        rubrics.append(("eval.judge.rubric", cfg.eval.judge.rubric))
    if "lingoqa" in metrics and not cfg.eval.lingo_judge_path:
        rubrics.append(("eval.judge.lingoqa_rubric", cfg.eval.judge.lingoqa_rubric))
    for key, name in rubrics:
        try:
            load_rubric(name)
        except (FileNotFoundError, ValueError) as err:
            raise ConfigError(key, str(err), "name a file under cosmos_exp/evaluate/rubrics/ or give a path") from None
    if cfg.eval.lingo_judge_path and "lingoqa" in metrics and \
            not (Path(cfg.eval.lingo_judge_path) / "config.json").is_file():
        raise ConfigError("eval.lingo_judge_path", f"{cfg.eval.lingo_judge_path}/config.json not found")
    if set(metrics) & {"llm_judge"} or ("lingoqa" in metrics and not cfg.eval.lingo_judge_path):
        if not os.environ.get(cfg.eval.judge.api_key_env) and not cfg.dry_run:
            raise ConfigError("eval.judge.api_key_env", f"environment variable ${cfg.eval.judge.api_key_env} is not "
                              "set and the LLM judge may need it", "export the key (any value for a local server)")


def plan(cfg: DictConfig) -> Plan:
    from cosmos_exp.infer import caption_stage

    _check_judge_inputs(cfg)
    cap = caption_stage.plan(cfg)
    lineage = checkpoint_lineage(cfg.model.path, cfg.sweep.checkpoints)
    p = Plan(stage="evaluate", inputs=list(cap.inputs), commands=list(cap.commands))
    if lineage["step"] is not None:
        p.add_input(f"training run (checkpoint step {lineage['step']})", str(lineage["train_run"]))
    p.outputs += cap.outputs + ["scores/<id>.score.json", SUMMARY_JSON, EVALUATE_JSON]
    p.notes += [f"caption: {n}" for n in cap.notes]
    p.notes.append(f"judge: metrics {', '.join(cfg.eval.metrics)} on the captions of this run directory")
    p.notes.append("a rerun into a directory whose summary.json exists with the same settings is "
                   + ("skipped" if cfg.sweep.skip_done else "judged again (sweep.skip_done=false)"))
    return p


def already_done(run_dir: Path, fingerprint: str) -> bool:
    """True when run_dir holds a finished evaluation made with the same settings."""
    try:
        record = json.loads((Path(run_dir) / EVALUATE_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return record.get("fingerprint") == fingerprint and (Path(run_dir) / SUMMARY_JSON).is_file()


def run(cfg: DictConfig, run_dir: Path) -> Dict[str, Any]:
    from cosmos_exp.evaluate import judge_stage
    from cosmos_exp.infer import caption_stage

    run_dir = Path(run_dir)
    fingerprint = settings_fingerprint(cfg)
    lineage = checkpoint_lineage(cfg.model.path, cfg.sweep.checkpoints)
    if cfg.sweep.skip_done and already_done(run_dir, fingerprint):
        summary = json.loads((run_dir / SUMMARY_JSON).read_text(encoding="utf-8"))
        log.info("evaluate: %s already holds summary.json with the same settings; skipped", run_dir)
        return {"skipped": "already evaluated with the same settings", **lineage,
                "headline": {m: v.get("headline") for m, v in summary.get("metrics", {}).items()}}
    (run_dir / EVALUATE_JSON).unlink(missing_ok=True)  # a stale record must not vouch for new outputs
    captioned = caption_stage.run(cfg, run_dir)  # a sweep point captions its whole split (see infer/sharding.py)
    judge_cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    judge_cfg.captions = str(run_dir)
    judged = judge_stage.run(judge_cfg, run_dir)
    record = {"stage": "evaluate", "fingerprint": fingerprint, **lineage,
              "split": caption_stage.eval_split(cfg), "dataset": cfg.dataset.name,
              "metrics": list(cfg.eval.metrics), "summary": SUMMARY_JSON,
              "captions": {k: v for k, v in captioned.items() if k != "captions_dir"}}
    write_json_atomic(run_dir / EVALUATE_JSON, record)  # last: its presence marks the evaluation finished
    return {**lineage, "split": record["split"], "summary": str(run_dir / SUMMARY_JSON),
            "items": judged["items"], "headline": judged["headline"]}
