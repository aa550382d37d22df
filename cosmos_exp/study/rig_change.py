"""experiment=rig_change: train the trajectory model on rig A, fine-tune it on rig B three ways, evaluate the four
models on both rigs, and tabulate what the rig change did and what each fix cost (study/rig_change_report.py).

Every step is a child `cosmos-exp` process (an argv list) with its run directory <study>/runs/<phase>/ and its
console output in <study>/logs/<phase>.log:

    prepare           the scenes through both rigs, and the tiny backbone with the trajectory tokens
    a_stage1          stage 1 on rig A, from the backbone
    a_stage2          stage 2 on rig A, from a_stage1's final checkpoint          -> the model "trained on A"
    b_expert          stage 2 on rig B, from a_stage2's (the backbone frozen, the expert trains further)
    b_stage1, b_stage2      stage 1 then stage 2 on rig B, from a_stage2's
    mix_stage1, mix_stage2  stage 1 then stage 2 on rigs A and B, from a_stage2's
    eval_<variant>    stage=evaluate eval=trajectory on both rigs, for each of the four models

A child gets the study's own command-line overrides (so `paths.root=...` or `rig_change.*` settings reach every
run), then its phase's: stage, task, rigs, model.path, the steps and lr of rig_change.<phase> and its overrides.
Before the first child starts, every child's config is composed and validated here, in process (every rule on
values; the files a child reads are checked by the child, once the runs before it made them). A rerun into the
same study directory skips each run that finished with the same config (training: its final checkpoint is
complete; evaluation: evaluate.json with the same settings; prepare: run.json says succeeded), continues a run
that stopped half-way (training resumes from its newest checkpoint), and refuses a run directory that holds
another config, naming the first key that differs.
"""

import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from cosmos_exp import rundir
from cosmos_exp.config import CONF_DIR, Config, ConfigError
from cosmos_exp.config.study import RigChangeConfig
from cosmos_exp.study.children import child_failure, run_child

log = logging.getLogger("cosmos_exp.study")

STAGE1, STAGE2 = "trajectory_stage1", "trajectory_stage2"
# Keys the study sets for each run itself: a command-line value of the study is not passed on.
NOT_FORWARDED = ("stage", "task", "dry_run")
# Keys of a run's config that do not decide what it computes: left out when a rerun compares configs.
NOT_COMPARED = ("rig_change", "dry_run")


@dataclass(frozen=True)
class Phase:
    name: str  # its run directory <study>/runs/<name>; a training phase's settings are rig_change.<name>
    stage: str  # prepare | sft | evaluate
    task: str  # conf/task/<task>.yaml
    rigs: Tuple[str, ...]  # dataset.rigs
    start: Optional[str] = None  # the training phase whose final checkpoint is model.path (None: the configured one)


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    trained_by: str  # the training phase whose final checkpoint this model is

    @property
    def evaluation(self) -> str:
        return f"eval_{self.name}"


VARIANTS = (Variant("a", "trained on A", "a_stage2"), Variant("b_expert", "+ expert only on B", "b_expert"),
            Variant("b_stage12", "+ stage 1+2 on B", "b_stage2"),
            Variant("mix_stage12", "+ stage 1+2 on A+B", "mix_stage2"))


def phases(study: RigChangeConfig) -> List[Phase]:
    """Every run of the study, in the order they run."""
    a, b = study.rig_a, study.rig_b
    return [Phase("prepare", "prepare", STAGE1, (a, b)),
            Phase("a_stage1", "sft", STAGE1, (a,)),
            Phase("a_stage2", "sft", STAGE2, (a,), "a_stage1"),
            Phase("b_expert", "sft", STAGE2, (b,), "a_stage2"),
            Phase("b_stage1", "sft", STAGE1, (b,), "a_stage2"),
            Phase("b_stage2", "sft", STAGE2, (b,), "b_stage1"),
            Phase("mix_stage1", "sft", STAGE1, (a, b), "a_stage2"),
            Phase("mix_stage2", "sft", STAGE2, (a, b), "mix_stage1")] + \
        [Phase(v.evaluation, "evaluate", STAGE2, (a, b), v.trained_by) for v in VARIANTS]


def final_checkpoint(study_dir: Path, study: RigChangeConfig, training_phase: str) -> Path:
    return rundir.step_dir(rundir.study_run(study_dir, training_phase), study[training_phase].steps)


def log_path(study_dir: Path, phase: str) -> Path:
    return Path(study_dir) / rundir.LOGS_DIR / f"{phase}.log"


def child_overrides(phase: Phase, study: RigChangeConfig, study_dir: Path, parent: Sequence[str]) -> List[str]:
    """The overrides of one child: the study's own (less what the study sets per run), then the phase's."""
    from cosmos_exp.sweep.preflight import override_key, quote_value

    out = [a for a in parent if override_key(a) not in NOT_FORWARDED]
    out += [f"stage={phase.stage}", f"task={phase.task}",
            "dataset.rigs=[" + ",".join(quote_value(r) for r in phase.rigs) + "]"]
    if study.own_data:
        out += [f"paths.data_dir={quote_value(str(Path(study_dir) / 'data'))}",
                f"paths.models_dir={quote_value(str(Path(study_dir) / 'models'))}"]
    if phase.start is not None:
        out.append(f"model.path={quote_value(str(final_checkpoint(study_dir, study, phase.start)))}")
    if phase.stage == "sft":
        settings = study[phase.name]
        out.append(f"train.max_steps={settings.steps}")
        if settings.lr is not None:
            out.append(f"train.lr={settings.lr!r}")
        out += list(settings.overrides)
    if phase.stage == "evaluate":
        out += ["eval=trajectory", f"task.trajectory.metrics.baseline_rig={quote_value(study.rig_a)}"]
        out += list(study.eval_overrides)
    out.append(f"hydra.run.dir={quote_value(str(rundir.study_run(study_dir, phase.name)))}")
    return out


@dataclass
class PlannedRun:
    phase: Phase
    overrides: List[str]
    cfg: Config  # the child's config, composed and validated here
    state: str = "new"  # new | continue (a run that stopped half-way) | done

    def argv(self) -> List[str]:
        return [sys.executable, "-m", "cosmos_exp.run", *self.overrides]


def _settings_key(phase: Phase) -> str:
    """The study key whose overrides a run's composition error most likely comes from."""
    return {"sft": f"rig_change.{phase.name}.overrides", "evaluate": "rig_change.eval_overrides"}.get(phase.stage,
                                                                                                   "rig_change")


def compose_child(phase: Phase, overrides: List[str]) -> Config:
    """The child's typed config, validated on values (its inputs do not exist yet); errors name the run."""
    from cosmos_exp.config.validate import typed, validate
    from cosmos_exp.sweep.preflight import compose_job

    try:
        cfg = typed(compose_job(CONF_DIR, overrides))
        validate(cfg, inputs=False)
    except ConfigError as err:
        raise ConfigError(err.key, f"in the study's {phase.name} run: {err.message}", err.hint) from None
    except Exception as err:  # Hydra's own composition errors: an unknown key or group in an override list
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(_settings_key(phase), f"the study's {phase.name} run does not compose: {first}") from None
    return cfg


def _comparable(text: str) -> Dict[str, Any]:
    import yaml

    tree = yaml.safe_load(text) or {}
    return {k: v for k, v in tree.items() if k not in NOT_COMPARED}


def _first_difference(a: Any, b: Any, prefix: str = "") -> Optional[Tuple[str, Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            found = _first_difference(a.get(key), b.get(key), f"{prefix}.{key}" if prefix else str(key))
            if found:
                return found
        return None
    return None if a == b else (prefix or "<root>", a, b)


def _finished(run: PlannedRun, study_dir: Path, study: RigChangeConfig) -> bool:
    from cosmos_exp.sweep.checkpoints import settings_fingerprint

    where = rundir.study_run(study_dir, run.phase.name)
    if run.phase.stage == "sft":
        return rundir.is_complete(final_checkpoint(study_dir, study, run.phase.name))
    if run.phase.stage == "evaluate":
        return rundir.evaluation_done(where, settings_fingerprint(run.cfg))
    return rundir.read_run_json(where).get("status") == "succeeded"


def run_state(run: PlannedRun, study_dir: Path, study: RigChangeConfig) -> str:
    """new, continue or done; a ConfigError when the run directory holds a run of another config."""
    from cosmos_exp.repro.record import resolved_yaml

    where = rundir.study_run(study_dir, run.phase.name)
    recorded = where / rundir.RESOLVED_YAML
    if not recorded.is_file():
        return "new"
    differ = _first_difference(_comparable(recorded.read_text(encoding="utf-8")), _comparable(resolved_yaml(run.cfg)))
    if differ:
        key, then, now = differ
        raise ConfigError(key, f"{where} was run with {then!r}, the study now asks for {now!r}",
                          f"a study directory holds one study: rerun it with the settings it started with, remove "
                          f"{where} and the runs that start from it, or pass a new hydra.run.dir")
    return "done" if _finished(run, study_dir, study) else "continue"


def plan_runs(cfg: Config, study_dir: Path, parent_overrides: Sequence[str]) -> List[PlannedRun]:
    """Every child composed, validated and given its state, before any starts."""
    study = cfg.rig_change
    runs = []
    for phase in phases(study):
        overrides = child_overrides(phase, study, study_dir, parent_overrides)
        runs.append(PlannedRun(phase, overrides, compose_child(phase, overrides)))
    for run in runs:
        run.state = run_state(run, study_dir, study)
    done = {r.phase.name for r in runs if r.state == "done"}
    for run in runs:  # a finished run whose start is not finished was trained from something else
        if run.state == "done" and run.phase.start is not None and run.phase.start not in done:
            raise ConfigError("hydra.run.dir", f"runs/{run.phase.name} finished but runs/{run.phase.start}, which it "
                              f"starts from, has not, in {study_dir}",
                              f"remove runs/{run.phase.name} and the runs after it, or pass a new hydra.run.dir")
    return runs


def _failure(phase: str, code: int, log_file: Path) -> Exception:
    return child_failure(f"the study's {phase} run", code, log_file)


def run_study(cfg: Config, study_dir: Path, parent_overrides: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """Run, in order, every run of the study that has not finished; {phase: {"state": "ran" | "skipped", ...}}."""
    from cosmos_exp.runtime.signals import names

    study_dir = Path(study_dir).absolute()
    outcome: Dict[str, Dict[str, Any]] = {}
    for run in plan_runs(cfg, study_dir, parent_overrides):
        name = run.phase.name
        if run.state == "done":
            log.info("rig_change: %s finished earlier with the same config; skipped", name)
            outcome[name] = {"state": "skipped"}
            continue
        log_file = log_path(study_dir, name)
        log.info("rig_change: %s %s (log: %s)", "continuing" if run.state == "continue" else "starting", name, log_file)
        t0 = time.monotonic()
        code, received = run_child(run.argv(), log_file)
        if received:
            raise KeyboardInterrupt(f"stopped by {names(received)} during the {name} run; rerun the study with "
                                    f"hydra.run.dir={study_dir} to continue")
        if code != 0:
            raise _failure(name, code, log_file)
        outcome[name] = {"state": "ran", "seconds": round(time.monotonic() - t0, 1)}
        log.info("rig_change: %s done in %.0f s", name, outcome[name]["seconds"])
    return outcome
