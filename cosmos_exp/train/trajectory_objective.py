"""The module DeepSpeed wraps for a trajectory task: the TrajectoryModel, with the stage's loss as forward().

    stage1   model.token_loss: the backbone's cross-entropy on the discrete future tokens
    stage2   model.stage2_loss: the expert's flow-matching loss, the backbone under no_grad, its cache detached
             (and the backbone kept in eval mode: it is not being trained)
    cotrain  model.cotrain_flow_loss on the prefix (the future tokens masked out) + token_loss_weight x token_loss

The flow-matching noise and times come from the global RNG in training (saved and restored with every
checkpoint, so a resumed run draws what the uninterrupted one drew) and from a generator seeded the same way
for every held-out batch in eval mode, so the validation loss of two steps is measured on the same draws.
"""

from dataclasses import dataclass
from typing import Any, Dict, Optional

import torch
from torch import nn

from cosmos_exp.config.task import TrajectoryTaskConfig


@dataclass
class ObjectiveOutput:
    loss: torch.Tensor


def prefix_view(batch: Dict[str, Any]) -> Dict[str, Any]:
    """The batch as its prefixes alone: the attention mask cut at each prefix's length (the appended future
    tokens then read as right padding: the backbone's causal cache over the prefix is unchanged)."""
    mask = batch["attention_mask"]
    positions = torch.arange(mask.shape[1], device=mask.device)[None]
    cut = positions < batch["prefix_length"].to(mask.device)[:, None]
    return dict(batch, attention_mask=mask * cut.to(mask.dtype))


class TrajectoryObjective(nn.Module):
    def __init__(self, model: nn.Module, cfg: TrajectoryTaskConfig, eval_seed: int) -> None:
        super().__init__()
        self.model = model
        self.stage = cfg.stage
        self.token_loss_weight = float(cfg.token_loss_weight)
        self.eval_seed = int(eval_seed)

    def train(self, mode: bool = True) -> "TrajectoryObjective":
        super().train(mode)
        if self.stage == "stage2":
            self.model.backbone.eval()
        return self

    def forward(self, **batch: Any) -> ObjectiveOutput:
        generator: Optional[torch.Generator] = None
        if not self.training:
            generator = torch.Generator().manual_seed(self.eval_seed)
        if self.stage == "stage1":
            return ObjectiveOutput(self.model.token_loss(batch))
        if self.stage == "stage2":
            return ObjectiveOutput(self.model.stage2_loss(batch, generator=generator))
        flow = self.model.cotrain_flow_loss(prefix_view(batch), generator=generator)
        return ObjectiveOutput(flow + self.token_loss_weight * self.model.token_loss(batch))
