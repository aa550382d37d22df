"""Schema of the `sweep` node: checkpoint sweeps and the reports that aggregate them."""

from dataclasses import dataclass
from typing import Optional


@dataclass
class SweepConfig:
    # A training run directory: `-m stage=evaluate sweep.checkpoints=<run>` evaluates each of its checkpoints.
    checkpoints: Optional[str] = None
    # A multirun directory whose children stage=report aggregates.
    dir: Optional[str] = None
