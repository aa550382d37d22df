"""Freezing, parameter groups with per-module learning rates, and the AdamW optimiser."""

import fnmatch
from typing import Any, Dict, List, Sequence, Tuple

from cosmos_exp.config.train import TrainConfig


def apply_freeze(model: Any, patterns: Sequence[str]) -> List[str]:
    """Set requires_grad=False on parameters whose name matches any fnmatch pattern.

    A pattern that matches nothing is an error: a typo would otherwise silently train everything.
    """
    names = [n for n, _ in model.named_parameters()]
    frozen: List[str] = []
    for pattern in patterns:
        hits = fnmatch.filter(names, pattern)
        if not hits:
            sample = ", ".join(names[:3])
            raise ValueError(f"train.freeze pattern {pattern!r} matches no parameter (names look like: {sample}, ...)")
        frozen.extend(hits)
    frozen_set = set(frozen)
    for name, param in model.named_parameters():
        if name in frozen_set:
            param.requires_grad_(False)
    if len(frozen_set) == len(names):
        raise ValueError("train.freeze freezes every parameter; nothing would train")
    return sorted(frozen_set)


def _lr_scale(name: str, module_lr: Sequence[Any]) -> float:
    for rule in module_lr:  # first matching rule wins
        if rule.pattern in name:
            return float(rule.scale)
    return 1.0


def param_groups(model: Any, train: TrainConfig) -> List[Dict[str, Any]]:
    """Trainable parameters grouped by (lr scale, weight decay). Biases and norm weights (1-D) get no decay."""
    groups: Dict[Tuple[float, bool], Dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        scale = _lr_scale(name, train.module_lr)
        decay = param.ndim >= 2
        key = (scale, decay)
        if key not in groups:
            groups[key] = {"params": [], "names": [], "lr": train.lr * scale,
                           "weight_decay": train.weight_decay if decay else 0.0, "lr_scale": scale}
        groups[key]["params"].append(param)
        groups[key]["names"].append(name)
    for i, rule in enumerate(train.module_lr):
        if not any(rule.pattern in n for g in groups.values() for n in g["names"]):
            raise ValueError(f"train.module_lr[{i}].pattern {rule.pattern!r} matches no trainable parameter")
    return [groups[k] for k in sorted(groups)]


def build_optimizer(model: Any, train: TrainConfig, fused: bool = False) -> Any:
    """torch AdamW over `param_groups` (names are dropped: torch rejects unknown keys only in strict code)."""
    import torch

    groups = [{k: v for k, v in g.items() if k != "names"} for g in param_groups(model, train)]
    kwargs = {"fused": True} if fused else {}
    return torch.optim.AdamW(groups, lr=train.lr, betas=tuple(train.betas), weight_decay=train.weight_decay, **kwargs)
