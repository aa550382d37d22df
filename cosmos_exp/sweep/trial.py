"""One job of a sweeper that proposes values as it goes (Optuna): validate the proposed config, run the stage,
return the objective as a float.

A trial that cannot run (a proposed value the config rules refuse, a run that fails) returns None with its
reason logged and written to objective.json: the Optuna sweeper records a trial whose value is not a number as
failed (TrialState.FAIL) and goes on, where an exception or exit would end the whole study. A trial whose run
directory holds a finished record of the same config returns that value again (a resumed search).
"""

import logging
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, List, Optional

from cosmos_exp import rundir
from cosmos_exp.config import Config, ConfigError, DataError

log = logging.getLogger("cosmos_exp.sweep")


def _fail(run_dir: Path, cfg: Optional[Config], reason: str, config: Optional[str] = None) -> None:
    from cosmos_exp.sweep import objective

    metric = direction = None
    if cfg is not None:
        try:
            metric, direction = objective.metric_of(cfg), objective.direction_of(cfg)
        except Exception:  # a config too broken to name its metric: the failure is recorded all the same
            pass
    objective.record(run_dir, metric, direction, None, error=reason, config=config)
    log.error("trial failed: %s", reason)
    print(f"cosmos-exp: trial {run_dir.name} failed (recorded as failed, the search goes on): {reason}")


def run_trial(raw_cfg: Any, run_dir: Path, overrides: List[str],
              stage_module: Callable[[Config], ModuleType]) -> Optional[float]:
    """The objective of this job, or None for a failed trial."""
    from cosmos_exp.config.validate import typed, validate
    from cosmos_exp.repro.record import RunRecord, resolved_yaml
    from cosmos_exp.sweep import objective

    run_dir = Path(run_dir)
    cfg = None
    try:
        cfg = typed(raw_cfg)
        validate(cfg)
        objective.check(cfg)
        done = objective.finished(run_dir, cfg)
        if done is not None:
            log.info("trial %s finished earlier with the same config: %s = %r", run_dir.name,
                     objective.metric_of(cfg), done)
            return done
        recorded = run_dir / rundir.RESOLVED_YAML
        if recorded.is_file() and recorded.read_text(encoding="utf-8") != resolved_yaml(cfg):
            raise ConfigError("hydra.sweep.dir", f"{run_dir} holds a trial of another config (its "
                              f"{rundir.RESOLVED_YAML} differs)", "resume a search with the command and seed it started with, or start "
                              "a new sweep directory")
        module = stage_module(cfg)
        module.plan(cfg)
    except (ConfigError, DataError) as err:
        _fail(run_dir, cfg, str(err))
        return None
    config = objective.config_hash(cfg)
    metric, direction = objective.metric_of(cfg), objective.direction_of(cfg)
    record = RunRecord(run_dir, cfg, overrides)
    try:
        result = module.run(cfg, run_dir) or {}
        value = objective.value_of(cfg, run_dir)
    except KeyboardInterrupt as err:  # the search itself is being stopped: resume it later
        record.finish("interrupted", error=err)
        raise
    except Exception as err:
        log.exception("trial %s failed", run_dir.name)
        record.finish("failed", error=err)
        _fail(run_dir, cfg, f"{type(err).__name__}: {err}" if not isinstance(err, (ConfigError, DataError))
              else str(err), config)
        return None
    record.finish("succeeded", result={**result, "objective": {metric: value}})
    objective.record(run_dir, metric, direction, value, config=config)
    log.info("trial %s: %s = %r", run_dir.name, metric, value)
    return value
