"""cosmos-exp: compose one typed config, validate it, write the run directory, dispatch on the stage.

Nothing else lives here: each stage is a module with plan(cfg) and run(cfg, run_dir) (see plan.py).
Heavy libraries are imported inside the stages, so --help, --cfg job and dry runs start fast.
"""

import atexit
import importlib
import logging
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List, Optional, Union

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from cosmos_exp import rundir
from cosmos_exp.config import CONF_DIR, Config, ConfigError, DataError, register_configs
from cosmos_exp.config.validate import typed, validate
from cosmos_exp.repro.record import RunRecord, resolved_yaml
from cosmos_exp.runtime.topology import topology
from cosmos_exp.sweep.objective import wants_number
from cosmos_exp.sweep.trial import run_trial

log = logging.getLogger("cosmos_exp")

# stage -> module, or backend -> module for stages with backends.
STAGE_MODULES: Dict[str, Any] = {
    "prepare": "cosmos_exp.stages.prepare",
    "sft": {"deepspeed": "cosmos_exp.stages.sft", "cosmos_rl": "cosmos_exp.stages.sft_cosmos_rl"},
    "caption": "cosmos_exp.stages.caption",
    "judge": "cosmos_exp.stages.judge",
    "compare": "cosmos_exp.stages.compare",
    "evaluate": "cosmos_exp.stages.evaluate",
    "report": "cosmos_exp.stages.report",
    "rig_change": "cosmos_exp.stages.rig_change",
    "train_eval": "cosmos_exp.stages.train_eval",
}
EXIT_CONFIG_ERROR = 2  # bad config or bad data: one line on stderr, never a traceback
_HYDRA_ONLY = {rundir.HYDRA_DIR, rundir.LOG_TXT}
# CONF_DIR (config/__init__.py) is an absolute file path, not pkg://: the sweep preflight and the rig-change
# study compose from the same directory with Hydra's compose API, and a lab adds its own presets beside it
# with --config-dir or hydra.searchpath.

register_configs()


def stage_module(cfg: Config) -> ModuleType:
    """The module of cfg.stage (of cfg.backend for stages that have backends): plan(cfg) and run(cfg, run_dir)."""
    entry = STAGE_MODULES[cfg.stage.name]
    if isinstance(entry, dict):
        entry = entry[cfg.backend.name]
    return importlib.import_module(entry)


def _user_error(err: Exception) -> "SystemExit":
    """Bad config or data: one line naming the key or file, exit 2."""
    kind = "" if isinstance(err, ConfigError) else "data error: "
    print(f"cosmos-exp: {kind}{err}", file=sys.stderr)
    return SystemExit(EXIT_CONFIG_ERROR)


def _discard_hydra_only_dir(run_dir: Optional[Path]) -> None:
    """A run that failed validation leaves no directory behind, unless it already held other files."""
    if run_dir is not None and run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= _HYDRA_ONLY:
        shutil.rmtree(run_dir, ignore_errors=True)
        try:  # and the date folder it may have created
            run_dir.parent.rmdir()
        except OSError:
            pass


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def app(raw_cfg: DictConfig) -> Union[Dict[str, Any], float, None]:
    hydra_cfg = HydraConfig.get()
    dry = bool(raw_cfg.get("dry_run", False))
    if not dry and wants_number(hydra_cfg):  # a trial of a sweeper plugin (Optuna): the objective, as a float
        return run_trial(raw_cfg, Path(hydra_cfg.runtime.output_dir), list(hydra_cfg.overrides.task), stage_module)
    run_dir = None if dry else Path(hydra_cfg.runtime.output_dir)
    try:
        cfg = typed(raw_cfg)
        validate(cfg)
        module = stage_module(cfg)
        plan = module.plan(cfg)
    except (ConfigError, DataError) as err:
        _discard_hydra_only_dir(run_dir)
        raise _user_error(err) from None

    if dry:
        print("# resolved config (secrets redacted)")
        print(resolved_yaml(cfg))
        print(plan.render())
        print("dry run: nothing was written")
        return None

    if topology().rank > 0:  # every rank of a torchrun/srun launch runs this; rank 0 keeps the record
        try:
            return module.run(cfg, run_dir) or {}
        except (ConfigError, DataError) as err:
            raise _user_error(err) from None
    record = RunRecord(run_dir, cfg, list(hydra_cfg.overrides.task))
    log.info("run directory: %s", run_dir)
    log.info("%s", plan.render())
    try:
        result = module.run(cfg, run_dir) or {}
    except (ConfigError, DataError) as err:  # found only once the stage read its inputs
        record.finish("failed", error=err)
        raise _user_error(err) from None
    except KeyboardInterrupt as err:
        record.finish("interrupted", error=err)
        raise
    except BaseException as err:
        record.finish("failed", error=err)
        raise
    record.finish("succeeded", result=result)
    log.info("done: %s", run_dir)
    print(f"cosmos-exp: stage {cfg.stage.name} finished; results in {run_dir}")
    return result


def _is_dry_run(args: List[str]) -> bool:
    return any(a.lower() in ("dry_run=true", "dry_run=1", "dry_run=yes", "dry_run=on") for a in args)


def shared_run_dir_overrides(args: List[str], env: Optional[Dict[str, str]] = None) -> List[str]:
    """Under torchrun or srun every rank starts cosmos-exp; give them one run directory, named by the launch
    (Hydra's time-stamped default would differ per rank), and one log file each."""
    try:
        topo = topology(env)
    except ValueError as err:  # a launcher variable that is not a rank
        raise SystemExit(f"cosmos-exp: {err}") from None
    if topo.world_size <= 1 or any(a.startswith("hydra.run.dir=") for a in args) or {"-m", "--multirun"} & set(args):
        return []
    if topo.launch_id is None:
        raise SystemExit("cosmos-exp: started by a launcher with no job id (SLURM_JOB_ID / torchrun --rdzv-id): "
                         "pass hydra.run.dir=<one directory for all ranks>")
    launch_dir = f"${{paths.runs_dir}}/${{now:%Y-%m-%d}}/launch-{topo.launch_id}_${{stage.name}}_${{name}}"
    overrides = [f"hydra.run.dir={launch_dir}"]
    if topo.rank > 0:
        log_file = f"${{hydra.runtime.output_dir}}/log_rank{topo.rank}.txt"
        overrides.append(f"hydra.job_logging.handlers.file.filename={log_file}")
    return overrides


def sweep_preflight(args: List[str]) -> List[str]:
    """A multirun is expanded (checkpoint sweeps), validated job by job and recorded before Hydra launches it;
    a search by a sweeper plugin (Optuna) gets its search space and fixed config checked (sweep/search.py)."""
    from cosmos_exp.sweep.search import preflight_any

    return preflight_any(args, CONF_DIR, stage_module)


def main() -> None:
    """Console entry point. A dry run gets its Hydra directories in a temporary folder that is removed at
    exit, so it writes nothing under outputs/. Ranks of one launch share one run directory."""
    sys.argv += shared_run_dir_overrides(sys.argv[1:])
    sys.argv[1:] = sweep_preflight(sys.argv[1:])
    if _is_dry_run(sys.argv[1:]):
        scratch = tempfile.mkdtemp(prefix="cosmos-exp-dry-")
        atexit.register(shutil.rmtree, scratch, True)
        sys.argv += [f"hydra.run.dir={scratch}/run", f"hydra.sweep.dir={scratch}/sweep", "hydra.output_subdir=null"]
    app()


if __name__ == "__main__":
    main()
