"""Before a multirun launches anything: expand checkpoint sweeps, validate every job, record the sweep.

    cosmos-exp -m stage=evaluate sweep.checkpoints=<train run> [other overrides, sweeps]

becomes `model.path='<run>/checkpoints/step_1','<run>/checkpoints/step_2',...` (complete checkpoints only,
oldest first). Every job's config is then composed, typed, validated and planned here, in the submitting
process, so a bad value fails with its key before the first job starts (on SLURM: before anything is
queued). The sweep directory is pinned (hydra.sweep.dir) and gets sweep.json: the command, what was expanded,
and each job's overrides and sub-directory, plus which jobs a resumed sweep will skip. A lab's own presets
(--config-dir, hydra.searchpath) are found here as the jobs will find them.
"""

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from cosmos_exp import rundir
from cosmos_exp.config import Config, ConfigError, DataError
from cosmos_exp.repro.atomic import write_json_atomic
from cosmos_exp.runtime.topology import environ_restored

CHECKPOINTS_KEY = "sweep.checkpoints"
MULTIRUN_FLAGS = ("-m", "--multirun")
# Hydra flags after which nothing is launched (or that replace the primary config): leave alone.
PASSIVE_FLAGS = ("--cfg", "-c", "--info", "-i", "--help", "-h", "--hydra-help", "--shell-completion", "-sc",
                 "--config-path", "-cp", "--config-name", "-cn", "--experimental-rerun")
# Hydra flags whose value is the next argument (unless given as --flag=value).
VALUE_FLAGS = ("--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
               "--config-dir", "-cd", "--experimental-rerun")
CONFIG_DIR_FLAGS = ("--config-dir", "-cd")
SEARCHPATH_KEY = "hydra.searchpath"


def quote_value(value: str) -> str:
    """A Hydra override value in single quotes (paths may hold characters the grammar reserves)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def override_key(arg: str) -> str:
    """The key an override sets (`+a.b=1`, `~a.b` -> `a.b`)."""
    return arg.split("=", 1)[0].lstrip("+~")


def _value(args: List[str], key: str) -> Optional[str]:
    found = [a.split("=", 1)[1] for a in args if "=" in a and override_key(a) == key]
    return found[-1] if found else None


def split_argv(argv: List[str]) -> Tuple[List[str], List[str]]:
    """(flags, overrides): a flag's value stays right after it (`--config-dir /lab` is not an override)."""
    flags: List[str] = []
    overrides: List[str] = []
    pending_value = False
    for arg in argv:
        if pending_value:
            flags.append(arg)
            pending_value = False
        elif arg.startswith("-"):
            flags.append(arg)
            pending_value = arg in VALUE_FLAGS
        else:
            overrides.append(arg)
    return flags, overrides


def config_dir(flags: List[str]) -> Optional[Path]:
    """The lab's --config-dir (Hydra keeps the last one given), absolute; None when not given."""
    found = None
    for i, flag in enumerate(flags):
        name, eq, value = flag.partition("=")
        if name in CONFIG_DIR_FLAGS:
            found = value if eq else (flags[i + 1] if i + 1 < len(flags) else "")
    if found is None:
        return None
    path = Path(found).expanduser().absolute()
    if not path.is_dir():
        print(f"cosmos-exp: --config-dir {path} is not a directory; give the folder that holds your presets "
              "(e.g. model/<name>.yaml)", file=sys.stderr)
        raise SystemExit(2)
    return path


def expand_checkpoints(overrides: List[str]) -> Tuple[List[str], Optional[Dict[str, Any]]]:
    """Replace sweep.checkpoints=<run> by a model.path sweep over its complete checkpoints (kept for the record)."""
    from cosmos_exp.sweep.checkpoints import base_model, complete_checkpoints

    train_run = _value(overrides, CHECKPOINTS_KEY)
    if train_run in (None, "", "null"):
        return overrides, None
    if _value(overrides, "model.path") is not None:
        raise ConfigError(CHECKPOINTS_KEY, "sweep.checkpoints and model.path are both given",
                          "the checkpoints of the training run become the model.path sweep; drop model.path")
    found = complete_checkpoints(train_run)
    if str(_value(overrides, "sweep.include_base")).lower() in ("true", "1", "yes", "on"):
        found = [base_model(train_run)] + found  # step 0: where training started
    # The absolute run path keeps the record and the jobs independent of where they start.
    rest = [a for a in overrides if override_key(a) != CHECKPOINTS_KEY]
    expanded = rest + [f"{CHECKPOINTS_KEY}={quote_value(str(Path(train_run).resolve()))}",
                       "model.path=" + ",".join(quote_value(str(p)) for p in found)]
    return expanded, {"key": CHECKPOINTS_KEY, "train_run": str(Path(train_run).resolve()),
                      "model.path": [str(p) for p in found]}


def job_overrides(overrides: List[str]) -> List[List[str]]:
    """The override list of each job, in the order Hydra's basic sweeper numbers them."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides=overrides)
    return BasicSweeper.split_arguments(parsed, max_batch_size=None)[0]


def _is_hydra_override(arg: str) -> bool:
    key = override_key(arg)
    return key == "hydra" or key.startswith("hydra.") or key.startswith("hydra/")


@contextmanager
def hydra_context(conf_dir: Path, extra_dir: Optional[Path] = None) -> Iterator[None]:
    """Hydra's config search set up once for every job of a sweep (or re-used when already set up): our
    config tree and, as `--config-dir` does, a lab's presets after it."""
    from hydra import version
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.core.global_hydra import GlobalHydra
    from hydra.initialize import get_gh_backup, restore_gh_from_backup

    if GlobalHydra.instance().is_initialized():
        yield
        return
    backup = get_gh_backup()
    version.setbase("1.3")
    # What initialize_config_dir does, plus the extra directory where Hydra's own --config-dir puts it.
    search_path = create_config_search_path(str(conf_dir))
    if extra_dir is not None:
        search_path.prepend(provider="command-line", path=f"file://{extra_dir}",
                            anchor=SearchPathQuery(provider="schema"))
    Hydra.create_main_hydra2(task_name="cosmos-exp", config_search_path=search_path)
    try:
        yield
    finally:
        restore_gh_from_backup(backup)


def compose_job(conf_dir: Path, overrides: List[str], with_hydra: bool = False) -> Any:
    from hydra import compose

    # hydra.searchpath stays: it decides where the job's presets come from.
    task = [a for a in overrides if with_hydra or not _is_hydra_override(a) or override_key(a) == SEARCHPATH_KEY]
    with hydra_context(conf_dir):
        return compose(config_name="config", overrides=task, return_hydra_config=with_hydra)


def validate_job(conf_dir: Path, overrides: List[str], stage_module: Callable[[Any], ModuleType]) -> Any:
    """Compose, type, validate and plan one job exactly as the job itself will; return its typed config."""
    from cosmos_exp.config.validate import typed, validate

    cfg = typed(compose_job(conf_dir, overrides))
    validate(cfg)
    stage_module(cfg).plan(cfg)
    return cfg


def _hydra_settings(conf_dir: Path, overrides: List[str]) -> Tuple[Path, Dict[str, str]]:
    """Where Hydra will put this sweep (its ${now:} resolved once, here, as an absolute path) and the variables
    its launcher will give each job. Composing with the hydra overrides also checks them (launcher keys)."""
    from omegaconf import OmegaConf

    cfg = compose_job(conf_dir, overrides, with_hydra=True)
    given = _value(overrides, "hydra.sweep.dir") or OmegaConf.select(cfg, "hydra.sweep.dir")
    return Path(str(given).strip("'\"")).expanduser().resolve(), launcher_env(cfg)


def launcher_env(hydra_cfg: Any) -> Dict[str, str]:
    """What a job will see of its launcher, so the plan made here is the one the job makes: under SLURM every
    job is rank 0 of nodes x tasks_per_node tasks (a one-task job too), which decides e.g. whether sft starts
    its own ranks or is one."""
    from omegaconf import OmegaConf

    if "SlurmLauncher" not in str(OmegaConf.select(hydra_cfg, "hydra.launcher._target_") or ""):
        return {}
    nodes = int(OmegaConf.select(hydra_cfg, "hydra.launcher.nodes") or 1)
    tasks = int(OmegaConf.select(hydra_cfg, "hydra.launcher.tasks_per_node") or 1)
    return {"SLURM_JOB_ID": "preflight", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0",
            "SLURM_NTASKS": str(nodes * tasks), "SLURM_NNODES": str(nodes)}


@contextmanager
def _environment(extra: Dict[str, str]) -> Iterator[None]:
    with environ_restored(extra):
        os.environ.update(extra)
        yield


def _skip_state(cfg: Config, job_dir: Path) -> str:
    if cfg.stage.name != "evaluate" or not cfg.sweep.skip_done:
        return "to run"
    from cosmos_exp.sweep.checkpoints import settings_fingerprint

    done = rundir.evaluation_done(job_dir, settings_fingerprint(cfg))
    return "already evaluated with the same settings: skipped" if done else "to run"


def preflight(argv: List[str], conf_dir: Path, stage_module: Callable[[Any], ModuleType]) -> List[str]:
    """argv (without the program name) -> argv to hand to Hydra. Exits 2 on a config error, naming the key
    and the job; single runs and passive invocations pass through unchanged. (A sweeper plugin that proposes
    values as it goes, such as Optuna, is checked by sweep/search.py instead: run.py asks it first.)"""
    flags, overrides = split_argv(argv)
    multirun = any(f in MULTIRUN_FLAGS for f in flags)
    if not multirun or any(f.split("=", 1)[0] in PASSIVE_FLAGS for f in flags):
        if not multirun and _value(overrides, CHECKPOINTS_KEY) not in (None, "", "null"):
            _fail(ConfigError(CHECKPOINTS_KEY, "a checkpoint sweep needs multirun",
                              "add -m: cosmos-exp -m stage=evaluate sweep.checkpoints=<training run>"))
        return argv
    try:
        overrides, expanded = expand_checkpoints(overrides)
        jobs = job_overrides(overrides)
    except ConfigError as err:
        _fail(err)
    except Exception as err:  # an unparsable override: Hydra would refuse it too, with its own words
        hint = " (interval() and tag(log, ...) are searches: add hydra/sweeper=optuna)" \
            if "does not support sweep type" in str(err) else ""
        print(f"cosmos-exp: cannot read the sweep overrides: {err}{hint}", file=sys.stderr)
        raise SystemExit(2) from None
    with hydra_context(conf_dir, config_dir(flags)):
        return _validate_and_record(argv, flags, overrides, jobs, expanded, conf_dir, stage_module)


def _validate_and_record(argv: List[str], flags: List[str], overrides: List[str], jobs: List[List[str]],
                         expanded: Optional[Dict[str, Any]], conf_dir: Path,
                         stage_module: Callable[[Any], ModuleType]) -> List[str]:
    dry = any(a.lower() in ("dry_run=true", "dry_run=1", "dry_run=yes", "dry_run=on") for a in overrides)
    try:
        sweep_dir, env = _hydra_settings(conf_dir, jobs[0]) if jobs else (None, {})
    except Exception as err:  # e.g. a misspelled hydra.launcher key
        print("cosmos-exp: the sweep's Hydra settings are invalid; no job was launched", file=sys.stderr)
        _fail(err)
    sweep_dir = None if dry else sweep_dir
    custom_subdir = _value(overrides, "hydra.sweep.subdir")
    records = []
    for num, job in enumerate(jobs):
        try:
            with _environment(env):
                cfg = validate_job(conf_dir, job, stage_module)
        except Exception as err:  # ours (ConfigError, ...) or Hydra's composition errors (unknown keys)
            print(f"cosmos-exp: sweep job {num} of {len(jobs)} ({' '.join(_task_only(job))}) is invalid; "
                  "no job was launched", file=sys.stderr)
            _fail(err)
        # Hydra's <sweep dir>/<job num> (cosmos_exp/conf/config.yaml); a custom hydra.sweep.subdir: not predicted.
        subdir = sweep_dir / str(num) if sweep_dir is not None and custom_subdir is None else None
        state = _skip_state(cfg, subdir) if subdir is not None else "to run"
        records.append({"num": num, "overrides": _task_only(job), "dir": str(subdir) if subdir else None,
                        "state": state})
    print(f"cosmos-exp: {len(jobs)} sweep job(s) validated"
          + (f"; {sum(r['state'] != 'to run' for r in records)} already done and will be skipped" if records else "")
          + (f"; expanded {expanded['key']} into {len(expanded['model.path'])} checkpoints" if expanded else ""),
          file=sys.stderr)
    if sweep_dir is None:
        return flags + overrides
    previous = (sweep_dir / rundir.SWEEP_JSON).is_file()
    write_json_atomic(sweep_dir / rundir.SWEEP_JSON, {
        "argv": list(argv), "expanded": expanded, "sweep_dir": str(sweep_dir), "resumed": previous,
        "jobs": records})
    print(f"cosmos-exp: sweep directory {sweep_dir} (resume: the same command with hydra.sweep.dir={sweep_dir}; "
          f"table and best checkpoint: cosmos-exp stage=report sweep.dir={sweep_dir})", file=sys.stderr)
    pinned = [a for a in overrides if override_key(a) != "hydra.sweep.dir"]
    pinned.append(f"hydra.sweep.dir={quote_value(str(sweep_dir))}")
    return flags + pinned


def _task_only(job: List[str]) -> List[str]:
    return [a for a in job if not _is_hydra_override(a)]


def _fail(err: Exception) -> None:
    known = isinstance(err, (ConfigError, DataError))
    print(f"cosmos-exp: {err}" if known else f"cosmos-exp: {type(err).__name__}: {err}", file=sys.stderr)
    raise SystemExit(2)
