"""Schema of the `sweep` node: checkpoint sweeps, the objective a search optimises, and the reports that
aggregate them."""

from dataclasses import dataclass, field
from typing import Optional


@dataclass
class ObjectiveConfig:
    # The number a run returns to a sweeper plugin that proposes values as it goes (hydra/sweeper=optuna):
    # eval_loss (the held-out loss of the run's last evaluation: stage=sft; of the checkpoint it picked:
    # stage=train_eval) or a metric of eval.metrics (its headline in summary.json: stage=evaluate, train_eval).
    # null: eval_loss for sft, the first of eval.metrics for evaluate and train_eval.
    metric: Optional[str] = None
    # minimize | maximize; null: minimize for eval_loss and trajectory (metres), maximize for scores and
    # accuracies. Passed to the sweeper (hydra.sweeper.direction) and checked against it when given there.
    direction: Optional[str] = None


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
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    # stage=train_eval: which checkpoint of the training step is evaluated: final (the last step) or best (the
    # saved checkpoint with the lowest held-out loss; needs train.eval_every to fall on save_every steps).
    pick: str = "final"
