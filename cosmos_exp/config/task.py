"""Schema of the `task` group: what stage=sft trains.

caption: the vision-language model learns the answer text (cross-entropy on the answer tokens), as the Cosmos
recipes do. trajectory: the Alpamayo-style model of cosmos_exp/models/trajectory_model.py (a Qwen3-VL backbone
plus an action expert reading its KV cache), in one of the reference recipe's stages
(/work/shared/reference/alpamayo.md, "Training"):
  stage1   the backbone trains with cross-entropy on the discrete future-trajectory tokens (64 x 2 bins of the
           normalised actions after <|traj_future_start|>); the expert is not trained;
  stage2   the backbone is frozen and run without gradients, its KV cache detached; only the expert trains,
           with the flow-matching loss;
  cotrain  both train: the expert's flow-matching loss reaches the backbone through its cache, plus the
           backbone's token cross-entropy weighted by token_loss_weight.
"""

from dataclasses import dataclass, field
from typing import Optional

from omegaconf import MISSING

from cosmos_exp.config.trajectory import (ActionSpaceConfig, ExpertConfig, FlowMatchingConfig, TrajectoryMetricsConfig,
                                          TrajectoryPromptConfig)


@dataclass
class TrajectoryTaskConfig:
    stage: str = MISSING  # stage1 | stage2 | cotrain
    # cotrain only: the token cross-entropy's weight next to the flow-matching loss (ours; upstream's optional
    # VLM co-training adds the language loss unweighted).
    token_loss_weight: float = 1.0
    # The action space, including the stage-1 token bins (token_bins over [token_min, token_max] of the
    # normalised actions), flow matching, the expert, what the backbone is shown, and the metrics.
    action_space: ActionSpaceConfig = field(default_factory=ActionSpaceConfig)
    flow_matching: FlowMatchingConfig = field(default_factory=FlowMatchingConfig)
    expert: ExpertConfig = field(default_factory=ExpertConfig)
    prompt: TrajectoryPromptConfig = field(default_factory=TrajectoryPromptConfig)
    metrics: TrajectoryMetricsConfig = field(default_factory=TrajectoryMetricsConfig)
    # Encoded training samples kept in each loader process's memory, up to this many MiB (0: off), so later
    # epochs skip image decoding and action fitting. For small CPU studies whose split fits (the synthetic rigs:
    # ~0.1 MiB a sample); a real-resolution sample is tens of MiB of float patches.
    sample_memory_mib: int = 0


@dataclass
class TaskConfig:
    name: str = "caption"  # the preset (conf/task/<name>.yaml), for the record
    kind: str = "caption"  # caption | trajectory
    # Set exactly when kind=trajectory.
    trajectory: Optional[TrajectoryTaskConfig] = None
