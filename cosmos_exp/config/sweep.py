"""Schema of the `sweep` node: checkpoint sweeps and the reports that aggregate them."""

from dataclasses import dataclass
from typing import Optional


@dataclass
class SweepConfig:
    # A training run directory: `-m stage=evaluate sweep.checkpoints=<run>` evaluates each of its complete
    # checkpoints/step_N (expanded to a model.path sweep before launch; recorded in <sweep dir>/sweep.json).
    checkpoints: Optional[str] = None
    # Evaluate the training run's base model too (its resolved.yaml model.path), reported as step 0.
    include_base: bool = False
    # A multirun directory whose children stage=report aggregates.
    dir: Optional[str] = None
    # A rerun into the same sweep directory skips jobs whose summary.json exists with the same settings;
    # false judges them again (their finished captions are still reused unless generation.force=true).
    skip_done: bool = True
