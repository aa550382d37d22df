"""The files every run directory gets besides the stage's own outputs: resolved.yaml and run.json."""

import os
import traceback
from pathlib import Path
from typing import Any, Dict, Optional

from omegaconf import OmegaConf

from cosmos_exp.config.schema import Config
from cosmos_exp.rundir import HYDRA_DIR, RESOLVED_YAML, RUN_JSON, read_run_json
from cosmos_exp.repro.atomic import write_json_atomic, write_text_atomic
from cosmos_exp.repro.data_fingerprint import fingerprint_summary
from cosmos_exp.repro.metadata import code_state, environment_record, now_iso
from cosmos_exp.repro.secrets import redact_tree, scrub_dir

# Set by cosmos-exp-reproduce in the child it starts.
REPRODUCE_ENV = "COSMOS_EXP_REPRODUCE_OF"


def resolved_yaml(cfg: Config) -> str:
    """The fully resolved config with secret-named values and secret env values redacted."""
    tree = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    return OmegaConf.to_yaml(OmegaConf.create(redact_tree(tree)))


ATTEMPT_KEYS = ("status", "start_time", "end_time", "slurm", "error")


def _earlier_attempts(run_dir: Path) -> list:
    """What earlier runs into this directory (a resume, a requeued SLURM job) ended with, oldest first: run.json
    is rewritten by each attempt, and an interrupted one would otherwise leave no trace."""
    before = read_run_json(run_dir)
    if not before:
        return []
    last = {k: before[k] for k in ATTEMPT_KEYS if k in before}
    if "error" in last:
        last["error"] = {k: v for k, v in last["error"].items() if k != "traceback"}
    return list(before.get("attempts", [])) + [last]


class RunRecord:
    """Writes resolved.yaml and run.json at start, and run.json again with the outcome at the end."""

    def __init__(self, run_dir: Path, cfg: Config, overrides: list) -> None:
        self.run_dir = Path(run_dir)
        self.info: Dict[str, Any] = {
            "stage": cfg.stage.name,
            "backend": cfg.backend.name,
            "name": cfg.name,
            "run_dir": str(self.run_dir.resolve()),
            "overrides": redact_tree(list(overrides)),
            "reproduce_of": os.environ.get(REPRODUCE_ENV),
            "code": code_state(),  # a source checkout's git state, or an installed wheel's build commit
            **environment_record(),
            "start_time": now_iso(),
            "end_time": None,
            "status": "running",
        }
        self.info["argv"] = redact_tree(self.info["argv"])
        earlier = _earlier_attempts(self.run_dir)
        if earlier:
            self.info["attempts"] = earlier
        write_text_atomic(self.run_dir / RESOLVED_YAML, resolved_yaml(cfg))
        self._write()
        scrub_dir(self.run_dir / HYDRA_DIR)

    def _write(self) -> None:
        write_json_atomic(self.run_dir / RUN_JSON, self.info)

    def finish(self, status: str, result: Optional[Dict[str, Any]] = None, error: Optional[BaseException] = None) -> None:
        self.info.update(status=status, end_time=now_iso())
        data = fingerprint_summary(self.run_dir)
        if data is not None:
            self.info["data"] = data
        if result is not None:
            self.info["result"] = redact_tree(result)
        if error is not None:
            self.info["error"] = {"type": type(error).__name__, "message": str(error),
                                  "traceback": traceback.format_exception(error)[-20:]}
        self.info = redact_tree(self.info)
        self._write()
        scrub_dir(self.run_dir)
