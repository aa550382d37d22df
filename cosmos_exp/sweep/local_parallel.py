"""hydra/launcher=local_parallel: the jobs of a multirun on `workers` processes of this machine at once.

Hydra's basic launcher runs the jobs one after another in the submitting process; submitit's local executor
(hydra/launcher=local) starts every job at once, so a 20-checkpoint sweep on 2 cores runs 20 jobs on them.
Here a pool of `workers` processes, forked from the submitting one once the sweep is expanded and validated,
takes the jobs in order; each runs as the basic launcher runs one (Hydra's run_job: its own run directory,
log and config), and a worker takes its next job when one ends. One worker that runs all jobs is the basic
launcher in another process. The work a worker inherits (Hydra's context, the sweep config, the task
function) is not pickled: fork passes it, only the job's overrides travel. fork needs a parent that has not
started CUDA or threads of its own, which the submitting process never does. The modules in `preload` (torch,
transformers: seconds to import) are imported here once, before the fork, as the basic launcher imports them
once for all its jobs; without that every worker pays them again in its first job.
"""

import importlib
import logging
import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)

# What the forked workers inherit: (hydra context, sweep config, task function, Hydra's singletons).
_INHERITED: Optional[Tuple[HydraContext, DictConfig, TaskFunction, Any]] = None


class ParallelLauncher(Launcher):
    def __init__(self, workers: int = 2, preload: Sequence[str] = ()) -> None:
        if int(workers) < 1:
            raise ValueError(f"hydra.launcher.workers={workers}: needs at least one worker process")
        self.workers = int(workers)
        self.preload = list(preload)
        self.config: Optional[DictConfig] = None
        self.task_function: Optional[TaskFunction] = None
        self.hydra_context: Optional[HydraContext] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        global _INHERITED
        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        workers = min(self.workers, len(job_overrides))
        log.info(f"Launching {len(job_overrides)} jobs on {workers} local worker process(es)")
        jobs = [(initial_job_idx + i, list(overrides)) for i, overrides in enumerate(job_overrides)]
        for idx, overrides in jobs:
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        for name in self.preload:
            try:
                importlib.import_module(name)
            except ImportError as err:  # a job that needs it fails with its own message
                log.warning(f"hydra.launcher.preload: cannot import {name} ({err}); the jobs import what they need")
        _INHERITED = (self.hydra_context, self.config, self.task_function, Singleton.get_state())
        try:
            with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
                futures = [pool.submit(_run_one, idx, overrides) for idx, overrides in jobs]
                outcomes = [f.result() for f in futures]
        finally:
            _INHERITED = None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return [self._job_return(overrides, outcome) for (_, overrides), outcome in zip(jobs, outcomes)]

    def _job_return(self, overrides: List[str], outcome: dict) -> JobReturn:
        """The worker's JobReturn, rebuilt here: its configs hold Hydra's structured-config classes, which do not
        pickle, so they are composed again (cheap next to a job)."""
        assert self.config is not None and self.hydra_context is not None
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        ret = JobReturn(overrides=overrides, cfg=cfg, hydra_cfg=cfg, working_dir=outcome["working_dir"],
                        task_name=outcome["task_name"], status=outcome["status"])
        ret.return_value = outcome["value"]
        return ret


def _run_one(idx: int, overrides: List[str]) -> dict:
    """One job in a worker, as Hydra's basic launcher runs it; what the parent needs of its JobReturn."""
    assert _INHERITED is not None, "local_parallel workers must be forked by ParallelLauncher.launch"
    hydra_context, config, task_function, singletons = _INHERITED
    setup_globals()
    Singleton.set_state(singletons)
    sweep_config = hydra_context.config_loader.load_sweep_config(config, overrides)
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = idx
        sweep_config.hydra.job.num = idx
    ret = run_job(hydra_context=hydra_context, task_function=task_function, config=sweep_config,
                  job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    value = ret._return_value
    try:
        pickle.dumps(value)
    except Exception as err:  # noqa: BLE001 (anything a job returns or raises must reach the sweeper)
        value = RuntimeError(f"job {idx} {'failed' if ret.status == JobStatus.FAILED else 'returned'}: "
                             f"{value!r} (not picklable: {err})")
    return {"status": ret.status, "value": value, "working_dir": ret.working_dir, "task_name": ret.task_name}
