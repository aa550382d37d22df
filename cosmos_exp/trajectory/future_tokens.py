"""Stage 1's discrete future trajectory: the normalised actions as backbone tokens, and back.

Each of the T waypoints' (acceleration, curvature), normalised (action_space.normalise), falls into one of
token_bins uniform bins over [token_min, token_max] (values outside go to the edge bins; the reference: 3,000
bins over [-10, 10]). The 2 T bins are written waypoint-major, acceleration before curvature (a_0, k_0, a_1, k_1,
...), each as the token <|traj_fut_{bin}|>, right after <|traj_future_start|>. Decoding maps a token back to its
bin's centre (within half a bin width of the value binned).
"""

from typing import Any

import torch

from cosmos_exp.config.trajectory import ActionSpaceConfig
from cosmos_exp.trajectory.action_space import from_bins, to_bins
from cosmos_exp.trajectory.token_names import consecutive_offset, future_tokens


def future_token_offset(tokenizer: Any, cfg: ActionSpaceConfig) -> int:
    """Id of bin 0; checks that every bin is in the tokenizer at consecutive ids."""
    return consecutive_offset(tokenizer, future_tokens(cfg), "future-trajectory")


def future_token_ids(normalised: torch.Tensor, cfg: ActionSpaceConfig, offset: int) -> torch.Tensor:
    """Token ids (..., 2 T) of normalised actions (..., T, 2)."""
    if normalised.shape[-2:] != (cfg.n_steps, 2):
        raise ValueError(f"future tokens: actions of shape {tuple(normalised.shape)}, expected [..., {cfg.n_steps}, 2]")
    return to_bins(normalised, cfg.token_bins, cfg.token_min, cfg.token_max).flatten(-2) + offset


def actions_from_future_ids(ids: torch.Tensor, cfg: ActionSpaceConfig, offset: int) -> torch.Tensor:
    """Normalised actions (..., T, 2) of token ids (..., 2 T): each bin's centre."""
    bins = (ids - offset).clamp(0, cfg.token_bins - 1)
    return from_bins(bins, cfg.token_bins, cfg.token_min, cfg.token_max).unflatten(-1, (-1, 2))
