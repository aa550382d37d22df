"""cosmos-rl's training and validation reports -> <run_dir>/metrics.jsonl, as the DeepSpeed backend writes it.

cosmos-rl calls each of its `custom_logger_fns` with (report_data, step) on the master policy rank after
every optimiser step and after every validation. We keep our own names for the figures reports read
(loss, grad_norm, lr, eval_loss, step_time_s) and cosmos-rl's own numeric keys beside them. Runs in
cosmos-rl's environment: standard library only (cosmos_exp.rundir is).
"""

import json
import math
from pathlib import Path
from typing import Any, Dict, Optional

from cosmos_exp import rundir

_OURS = {"train/loss_avg": "loss", "optimizer/grad_norm": "grad_norm", "train/iteration_time": "step_time_s",
         "val/avg_loss": "eval_loss"}


def to_metrics(report: Dict[str, Any]) -> Dict[str, float]:
    """Finite numbers only: ours first, then cosmos-rl's keys as they are."""
    raw = {k: float(v) for k, v in report.items()
           if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
    ours = {name: raw[key] for key, name in _OURS.items() if key in raw}
    lrs = sorted(k for k in raw if k.startswith("optimizer/lr"))
    if lrs:
        ours["lr"] = raw[lrs[0]]
    return {**ours, **raw}


class MetricsFile:
    """Callable as a cosmos-rl custom logger. A resumed launch redoes the steps after its checkpoint:
    on the first report, lines of that step and later are dropped, as the DeepSpeed backend does."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / rundir.METRICS_JSONL
        self._first: Optional[int] = None

    def _drop_from(self, step: int) -> None:
        if not self.path.is_file():
            return
        from cosmos_exp.repro.atomic import write_text_atomic

        kept = [line for line in self.path.read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line).get("step", 0) < step]
        write_text_atomic(self.path, "".join(line + "\n" for line in kept))

    def __call__(self, report: Dict[str, Any], step: int) -> None:
        if self._first is None:
            self._first = int(step)
            self._drop_from(int(step))
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": int(step), **to_metrics(report)}) + "\n")
