"""stage=rig_change: the rig-change study (experiment=rig_change), its runs and its table.

    cosmos-exp experiment=rig_change                                   # every run, then rig_change.{json,md}
    cosmos-exp experiment=rig_change hydra.run.dir=<study dir>         # continue: finished runs are skipped
    cosmos-exp experiment=rig_change hydra.run.dir=<study dir> rig_change.report_only=true   # the table again

The runs, their order and the rules of a rerun are cosmos_exp/study/rig_change.py's; the table is
cosmos_exp/study/rig_change_report.py's. This stage hands them the study directory and the study's own
command-line overrides (which every run it starts gets too).
"""

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from cosmos_exp import rundir
from cosmos_exp.config import Config
from cosmos_exp.plan import Plan


def hydra_view() -> Tuple[Optional[Path], List[str]]:
    """(this run's directory, its command-line overrides incl. hydra.searchpath); (None, []) outside a Hydra app
    (a sweep's preflight plans each job before it has a directory)."""
    from hydra.core.hydra_config import HydraConfig

    try:
        hc = HydraConfig.get()
    except ValueError:
        return None, []
    searchpath = [o for o in hc.overrides.hydra if o.split("=", 1)[0].lstrip("+~") == "hydra.searchpath"]
    return Path(hc.runtime.output_dir).absolute(), list(hc.overrides.task) + searchpath


def plan(cfg: Config) -> Plan:
    from cosmos_exp.study.rig_change import VARIANTS, log_path, plan_runs

    study = cfg.rig_change
    study_dir, overrides = hydra_view()
    p = Plan(stage="rig_change")
    p.outputs += [f"{rundir.STUDY_RUNS_DIR}/<run>/ (each a whole run directory)", f"{rundir.LOGS_DIR}/<run>.log",
                  rundir.RIG_CHANGE_JSON, rundir.RIG_CHANGE_MD]
    if study.report_only:
        p.outputs = [rundir.RIG_CHANGE_JSON, rundir.RIG_CHANGE_MD]
        p.notes.append("report only: the table from " + ", ".join(
            f"{rundir.STUDY_RUNS_DIR}/{v.evaluation}" for v in VARIANTS) + "; no run is started")
        return p
    if study_dir is None:
        p.notes.append("each run's config is composed and checked when the study starts, with its directory")
        return p
    for run in plan_runs(cfg, study_dir, overrides):
        if run.state == "done":
            p.notes.append(f"{run.phase.name}: finished with the same config; skipped")
            continue
        p.commands.append(run.argv())
        p.notes.append(f"{run.phase.name}: {'continues' if run.state == 'continue' else 'runs'} "
                       f"(log {log_path(study_dir, run.phase.name)})")
    if study.own_data:
        p.notes.append(f"the scenes and the tiny backbone are made inside the study directory ({study_dir}/data, "
                       f"{study_dir}/models)")
    return p


def run(cfg: Config, run_dir: Path) -> Dict[str, Any]:
    from cosmos_exp.study.rig_change import run_study
    from cosmos_exp.study.rig_change_report import write_report

    run_dir = Path(run_dir).absolute()
    _, overrides = hydra_view()
    runs = {} if cfg.rig_change.report_only else run_study(cfg, run_dir, overrides)
    report = write_report(run_dir, cfg.rig_change)
    return {"runs": runs, "report": str(run_dir / rundir.RIG_CHANGE_MD), "findings": report["findings"]}
