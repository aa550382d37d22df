"""Training metrics to the console (with a progress bar), metrics.jsonl, wandb and TensorBoard.

Only rank 0 logs. metrics.jsonl in the run directory is always written (tests and reports read it).
The wandb run id is stored in the run directory, so a resumed run continues the same wandb run;
WANDB_MODE=offline works without network.
"""

import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from cosmos_exp.repro.atomic import write_text_atomic
from cosmos_exp import rundir
from cosmos_exp.rundir import METRICS_JSONL, TENSORBOARD_DIR, WANDB_RUN_ID

log = logging.getLogger("cosmos_exp.train")


class MetricsLogger:
    def __init__(self, run_dir: Path, loggers: Sequence[str], total_steps: int, start_step: int,
                 project: str, run_name: str, config: Optional[Dict[str, Any]] = None, enabled: bool = True) -> None:
        self.enabled = enabled
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / METRICS_JSONL
        self._bar = self._wandb = self._tb = None
        if not enabled:
            return
        self._truncate_after(start_step)
        self._file = open(self.path, "a", encoding="utf-8")
        if "console" in loggers:
            from tqdm import tqdm

            self._bar = tqdm(total=total_steps, initial=start_step, desc="sft", unit="step", dynamic_ncols=True)
        if "wandb" in loggers:
            self._wandb = _start_wandb(self.run_dir, project, run_name, config)
        if "tensorboard" in loggers:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(self.run_dir / TENSORBOARD_DIR))

    def _truncate_after(self, step: int) -> None:
        """A resumed run redoes the steps after its checkpoint: drop their old lines."""
        if not self.path.exists():
            return
        kept = [line for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= step]
        write_text_atomic(self.path, "".join(line + "\n" for line in kept))

    def log(self, step: int, metrics: Dict[str, float]) -> None:
        if not self.enabled:
            return
        self._file.write(json.dumps({"step": step, **metrics}) + "\n")
        self._file.flush()
        if self._bar is not None:
            self._bar.n = step
            shown = {k: metrics[k] for k in ("loss", "lr", "grad_norm", "eval_loss", "tokens_per_s") if k in metrics}
            self._bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items()}, refresh=True)
        if self._wandb is not None:
            self._wandb.log(metrics, step=step)
        if self._tb is not None:
            for key, value in metrics.items():
                self._tb.add_scalar(key, value, step)

    def message(self, text: str) -> None:
        if self.enabled:
            log.info(text)

    def close(self) -> None:
        if not self.enabled:
            return
        self._file.close()
        if self._bar is not None:
            self._bar.close()
        if self._wandb is not None:
            self._wandb.finish()
        if self._tb is not None:
            self._tb.close()


def _start_wandb(run_dir: Path, project: str, run_name: str, config: Optional[Dict[str, Any]]):
    import wandb

    id_file = run_dir / WANDB_RUN_ID
    if id_file.exists():
        run_id = id_file.read_text().strip()
    else:
        run_id = secrets.token_hex(4)  # wandb ids: lowercase letters and digits
        write_text_atomic(id_file, run_id + "\n")
    return wandb.init(project=project, name=run_name, id=run_id, resume="allow", dir=str(run_dir),
                      config=config, mode=os.environ.get("WANDB_MODE") or None)


def read_metrics(run_dir: Path) -> list:
    return rundir.read_metrics(run_dir)
