"""stage=train_eval: fine-tune, then evaluate the checkpoint it picked, in one job: the trial of a search that
optimises a validation metric rather than a training loss.

    cosmos-exp stage=train_eval experiment=demo eval=local [sweep.pick=best]
    cosmos-exp -m hydra/sweeper=optuna 'train.lr=tag(log, interval(1e-5,1e-3))' stage=train_eval experiment=demo

Each step is a child cosmos-exp run with a run directory of its own inside this one (console output in logs/):

    runs/sft/        stage=sft with this run's overrides: checkpoints/, metrics.jsonl
    runs/evaluate/   stage=evaluate model.path=<the picked checkpoint>: captions/, scores/, summary.json

and train_eval.json names both and the checkpoint picked by sweep.pick: final (the newest complete checkpoint)
or best (the saved checkpoint with the lowest held-out loss). Both children's configs are validated by plan()
before either starts. A rerun into the same directory skips a training run that finished, continues one that
stopped (from its newest checkpoint), and the evaluation reuses what it scored already.
"""

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from omegaconf import OmegaConf

from cosmos_exp import rundir
from cosmos_exp.config import Config, ConfigError
from cosmos_exp.plan import Plan
from cosmos_exp.repro.atomic import write_json_atomic

TRAIN, EVALUATE = "sft", "evaluate"
# Keys this stage sets for each child itself, or that only this run reads.
NOT_FORWARDED = ("stage", "dry_run", "sweep.pick", "sweep.objective", "sweep.objective.metric",
                 "sweep.objective.direction")


def as_stage(cfg: Config, stage: str) -> Config:
    """This config as the child of `stage` will compose it, validated (the rules that key on the stage)."""
    from cosmos_exp.config.validate import typed, validate

    child = typed(OmegaConf.merge(cfg, {"stage": {"name": stage}}))
    validate(child)
    return child


def plan(cfg: Config) -> Plan:
    from cosmos_exp.stages import evaluate, sft, sft_cosmos_rl

    train_cfg, eval_cfg = as_stage(cfg, TRAIN), as_stage(cfg, EVALUATE)
    train = (sft_cosmos_rl if cfg.backend.name == "cosmos_rl" else sft).plan(train_cfg)
    if cfg.task.kind == "trajectory":  # its evaluation reads the expert the training writes: rules only, here
        scored = Plan(stage=EVALUATE, outputs=[rundir.SUMMARY_JSON, rundir.EVALUATE_JSON],
                      notes=["the trajectory checkpoint is checked once the training wrote it"])
    else:  # on the base model: every check the evaluation can make before the checkpoint exists
        scored = evaluate.plan(eval_cfg)
    p = Plan(stage="train_eval", inputs=list(train.inputs))
    p.outputs += [f"{rundir.STUDY_RUNS_DIR}/{TRAIN}/{o}" for o in train.outputs]
    p.outputs += [f"{rundir.STUDY_RUNS_DIR}/{EVALUATE}/{o}" for o in scored.outputs]
    p.outputs += [rundir.TRAIN_EVAL_JSON, f"{rundir.LOGS_DIR}/{TRAIN}.log", f"{rundir.LOGS_DIR}/{EVALUATE}.log"]
    p.notes += [f"train: {n}" for n in train.notes]
    p.notes += [f"evaluate (model.path: the picked checkpoint): {n}" for n in scored.notes]
    p.notes.append(f"evaluates the {'final' if cfg.sweep.pick == 'final' else 'lowest held-out loss'} checkpoint "
                   f"(sweep.pick={cfg.sweep.pick})")
    return p


def pick_checkpoint(train_run: Path, pick: str) -> Tuple[Path, Optional[float]]:
    """(the checkpoint to evaluate, its held-out loss when one was logged at its step)."""
    complete = rundir.list_complete(train_run)
    if not complete:
        raise ConfigError("sweep.pick", f"the training run {train_run} saved no complete checkpoint")
    losses = {int(r["step"]): float(r["eval_loss"]) for r in rundir.read_metrics(train_run)
              if r.get("eval_loss") is not None and r.get("step") is not None}
    if pick == "final":
        final = complete[-1]
        return final, losses.get(rundir.step_of(final))
    scored = [(losses[rundir.step_of(c)], rundir.step_of(c), c) for c in complete if rundir.step_of(c) in losses]
    if not scored:
        raise ConfigError("sweep.pick", f"no saved checkpoint of {train_run} has a held-out loss at its step "
                          f"(losses at steps {sorted(losses)}, checkpoints {[c.name for c in complete]})",
                          "make train.eval_every a multiple of train.save_every, or use sweep.pick=final")
    loss, _, best = min(scored, key=lambda t: (t[0], t[1]))  # ties: the earlier step
    return best, loss


def _child(name: str, overrides: List[str], run_dir: Path) -> None:
    import sys

    from cosmos_exp.study.children import child_failure, run_child

    log_file = run_dir / rundir.LOGS_DIR / f"{name}.log"
    code, received = run_child([sys.executable, "-m", "cosmos_exp.run", *overrides], log_file)
    if received:
        raise KeyboardInterrupt(f"stopped during the {name} step; rerun into {run_dir} to continue")
    if code != 0:
        raise child_failure(f"the {name} step of {run_dir}", code, log_file)


def run(cfg: Config, run_dir: Path) -> Dict[str, Any]:
    from cosmos_exp.evaluate.headline import headlines
    from cosmos_exp.stages.rig_change import hydra_view
    from cosmos_exp.sweep.preflight import override_key, quote_value

    run_dir = Path(run_dir).absolute()
    _, overrides = hydra_view()
    common = [a for a in overrides if override_key(a) not in NOT_FORWARDED]
    train_dir, eval_dir = rundir.study_run(run_dir, TRAIN), rundir.study_run(run_dir, EVALUATE)
    record: Dict[str, Any] = {"sft": str(train_dir), "evaluate": str(eval_dir), "pick": cfg.sweep.pick,
                              "checkpoint": None}
    write_json_atomic(run_dir / rundir.TRAIN_EVAL_JSON, record)
    if rundir.read_run_json(train_dir).get("status") != "succeeded":
        _child(TRAIN, common + [f"stage={TRAIN}", f"hydra.run.dir={quote_value(str(train_dir))}"], run_dir)
    checkpoint, loss = pick_checkpoint(train_dir, cfg.sweep.pick)
    record.update(checkpoint=str(checkpoint), step=rundir.step_of(checkpoint), eval_loss=loss)
    write_json_atomic(run_dir / rundir.TRAIN_EVAL_JSON, record)
    scored = [a for a in common if override_key(a) != "model.path"]
    _child(EVALUATE, scored + [f"stage={EVALUATE}", f"model.path={quote_value(str(checkpoint))}",
                               f"hydra.run.dir={quote_value(str(eval_dir))}"], run_dir)
    record["metrics"] = headlines(rundir.read_json(eval_dir / rundir.SUMMARY_JSON))
    write_json_atomic(run_dir / rundir.TRAIN_EVAL_JSON, record)
    return record
