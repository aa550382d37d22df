"""The ego history as discrete tokens, the way Alpamayo-R1 shows it to the backbone.

Each history point (oldest first, the last at t0 in the t0 frame) becomes its (x, y, z) step from the point
before, the first step taken from the origin as upstream does (so the first token holds the oldest point's
offset, clamped, rather than a step), and each step component is quantised to one of `history_bins` levels
spaced evenly over [min, max] of its axis, ends included: level round((d - min) / (max - min) * (bins - 1)),
clamped. 16 points x 3 axes = 48 tokens, ordered point-major (x, y, z of point 0, then point 1, ...). The
history reaches the action expert only through the backbone's KV cache over these tokens.

Token names (token_names.py): the levels are `<|traj_hist_0|>` ... in order (a level's id is level 0's id plus the
level), and three delimiters; cosmos_exp/models/trajectory_tokens.py adds them to a checkpoint.
"""

from typing import Any

import torch

from cosmos_exp.config.trajectory import TrajectoryPromptConfig
from cosmos_exp.trajectory.token_names import consecutive_offset, history_token


def history_token_offset(tokenizer: Any, cfg: TrajectoryPromptConfig) -> int:
    """Id of level 0; checks that every level is in the tokenizer at consecutive ids."""
    return consecutive_offset(tokenizer, [history_token(i) for i in range(cfg.history_bins)], "history")


def _bounds(cfg: TrajectoryPromptConfig, like: torch.Tensor):
    lo = torch.tensor(cfg.history_xyz_min, dtype=torch.float64, device=like.device)
    hi = torch.tensor(cfg.history_xyz_max, dtype=torch.float64, device=like.device)
    if lo.shape != (3,) or hi.shape != (3,) or not bool((hi > lo).all()):
        raise ValueError(f"history_xyz_min/max must be three values each with max > min, got "
                         f"{cfg.history_xyz_min} / {cfg.history_xyz_max}")
    return lo, hi


def history_levels(history: torch.Tensor, cfg: TrajectoryPromptConfig) -> torch.Tensor:
    """Levels (..., 3 H) in [0, history_bins) of a history (..., H, 2) or (..., H, 3); z is 0 when absent."""
    if history.shape[-1] == 2:
        history = torch.cat([history, torch.zeros_like(history[..., :1])], dim=-1)
    if history.shape[-1] != 3:
        raise ValueError(f"ego history must be (..., H, 2) or (..., H, 3), got {tuple(history.shape)}")
    xyz = history.to(torch.float64)
    steps = torch.diff(xyz, dim=-2, prepend=torch.zeros_like(xyz[..., :1, :]))
    lo, hi = _bounds(cfg, xyz)
    levels = torch.round((steps - lo) / (hi - lo) * (cfg.history_bins - 1)).long().clamp(0, cfg.history_bins - 1)
    return levels.flatten(-2)


def history_from_levels(levels: torch.Tensor, cfg: TrajectoryPromptConfig) -> torch.Tensor:
    """The history (..., H, 3) the levels stand for: each step's level value, summed from the origin."""
    lo, hi = _bounds(cfg, levels)
    steps = lo + levels.unflatten(-1, (-1, 3)).to(torch.float64) * ((hi - lo) / (cfg.history_bins - 1))
    return torch.cumsum(steps, dim=-2)
