"""Learning-rate schedule: linear warm-up, then cosine / linear decay or constant.

A LambdaLR multiplies each parameter group's own base lr by the factor, so per-module lr scales
(the vision tower at a fraction of the LM's lr) keep their ratio throughout.
"""

import math
from typing import Any, Optional

from cosmos_exp.config.train import TrainConfig

SCHEDULES = ("cosine", "linear", "constant")


def resolve_warmup(total_steps: int, warmup_steps: Optional[int], warmup_ratio: Optional[float]) -> int:
    """Warm-up length in optimiser steps from an explicit count or a fraction of all steps."""
    if warmup_steps is not None:
        return min(int(warmup_steps), total_steps)
    return int(math.ceil((warmup_ratio or 0.0) * total_steps))


def lr_factor(step: int, total_steps: int, warmup: int, schedule: str, min_lr_ratio: float = 0.0) -> float:
    """Multiplier of the base lr for the optimiser step with 0-based index `step`."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown lr schedule {schedule!r}; expected one of {SCHEDULES}")
    if step < warmup:
        return (step + 1) / warmup  # reaches 1.0 on the last warm-up step; never 0 on the first
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    if schedule == "cosine":
        shape = 0.5 * (1.0 + math.cos(math.pi * progress))
    else:
        shape = 1.0 - progress
    return min_lr_ratio + (1.0 - min_lr_ratio) * shape


def build_scheduler(optimizer: Any, train: TrainConfig, total_steps: int) -> Any:
    """A LambdaLR over `total_steps` optimiser steps from the `train` config node."""
    from torch.optim.lr_scheduler import LambdaLR

    warmup = resolve_warmup(total_steps, train.warmup_steps, train.warmup_ratio)
    schedule, floor = str(train.lr_schedule), float(train.min_lr_ratio)
    return LambdaLR(optimizer, lambda step: lr_factor(step, total_steps, warmup, schedule, floor))
