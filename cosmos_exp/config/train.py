"""Schema of the `train` node: optimiser, schedule, checkpoints, logging of an SFT run."""

from dataclasses import dataclass, field
from typing import List, Optional


@dataclass
class ModuleLR:
    """A learning-rate multiplier for parameters whose name contains `pattern`."""

    pattern: str = "visual"
    scale: float = 0.1


@dataclass
class TrainConfig:
    # Defaults follow the Cosmos Cookbook Reason 2 SFT recipe (see cosmos_exp/conf/experiment/reason2_sft_recipe.yaml).
    lr: float = 2e-7
    weight_decay: float = 0.01
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    # Warm-up as a step count or a fraction of all steps; set one of them.
    warmup_steps: Optional[int] = None
    warmup_ratio: Optional[float] = 0.03
    lr_schedule: str = "cosine"  # cosine | linear | constant
    min_lr_ratio: float = 0.0
    module_lr: List[ModuleLR] = field(default_factory=list)
    # Parameter-name patterns (fnmatch) that are frozen, e.g. "model.visual.*".
    freeze: List[str] = field(default_factory=list)
    epochs: int = 3
    max_steps: Optional[int] = None
    micro_batch_size: int = 4  # per process, per forward ("mini_batch" in cosmos-rl)
    # Samples per optimiser step over all data-parallel ranks, on every backend (cosmos-rl's per-rank
    # train_batch_per_replica is rendered as this / its data-parallel ranks: config/batch.py).
    global_batch_size: int = 32
    grad_clip: float = 1.0
    gradient_checkpointing: bool = False
    save_every: int = 20
    # Retention, on both backends. A training state (optimizer, scheduler, RNG, data position: ~100 GB for an 8B
    # model) exists only to resume, which needs the newest; the exported Hugging Face weights (a few GB) are what
    # a checkpoint sweep evaluates. So states are pruned to the newest keep_last_states (one spare in case the
    # newest cannot be read) while exports stay: the newest keep_last_exports, None = every one.
    keep_last_states: Optional[int] = 2
    keep_last_exports: Optional[int] = None
    # The seed of training's data order and random draws (new weights, dropout); null: the run's `seed`. A grid
    # over it (-m ... train.seed=0,1,2) measures seed noise: stage=report and compare show its spread.
    seed: Optional[int] = None
    eval_every: Optional[int] = None
    eval_batches: int = 4
    # auto: newest complete checkpoint of this run directory; none; or a checkpoints/step_N path.
    resume: str = "auto"
    log_every: int = 1
    loggers: List[str] = field(default_factory=lambda: ["console"])  # console, wandb, tensorboard
    wandb_project: str = "cosmos_exp"


def training_seed(train: TrainConfig, seed: int) -> int:
    """The seed a training run draws from: train.seed, or the run's `seed` when it is null."""
    return int(seed if train.seed is None else train.seed)
