"""Ego history -> 48 discrete levels, as upstream's delta tokenizer lays them out."""

import pytest
import torch

from cosmos_exp.config.trajectory import TrajectoryPromptConfig
from cosmos_exp.trajectory.history_tokens import history_from_levels, history_levels, history_token_offset

CFG = TrajectoryPromptConfig()


def _straight(speed: float) -> torch.Tensor:
    """16 points at 10 Hz ending at the origin, driving along +x."""
    x = torch.arange(-15, 1, dtype=torch.float64) * speed * 0.1
    return torch.stack([x, torch.zeros_like(x)], dim=-1)


def test_levels_are_point_major_steps_with_the_first_from_the_origin():
    levels = history_levels(_straight(10.0), CFG)
    assert levels.shape == (48,) and levels.dtype == torch.long
    xyz = levels.view(16, 3)
    # step 1 m along x, none along y / z: level round((d - min) / (max - min) * 999)
    assert xyz[1:, 0].tolist() == [round(5.0 / 8.0 * 999)] * 15
    assert xyz[1:, 1].tolist() == [round(4.0 / 8.0 * 999)] * 15
    assert xyz[:, 2].tolist() == [round(10.0 / 20.0 * 999)] * 16  # no z given: zero steps
    # the first "step" is the oldest point itself (-15 m), clamped to the lowest level
    assert xyz[0, 0] == 0


def test_levels_round_trip_within_half_a_level_per_step():
    g = torch.Generator().manual_seed(0)
    hist = torch.cumsum(torch.rand(4, 16, 3, generator=g, dtype=torch.float64) * 2 - 1, dim=-2)  # steps in +-1 m
    levels = history_levels(hist, CFG)
    assert levels.shape == (4, 48) and int(levels.min()) >= 0 and int(levels.max()) < CFG.history_bins
    back = history_from_levels(levels, CFG)
    half = (torch.tensor(CFG.history_xyz_max) - torch.tensor(CFG.history_xyz_min)) / (CFG.history_bins - 1) / 2
    step_err = torch.diff(back - hist, dim=-2, prepend=torch.zeros_like(hist[..., :1, :])).abs()
    assert bool((step_err <= half + 1e-12).all())


def test_bad_inputs_fail_with_one_line():
    with pytest.raises(ValueError, match="history must be"):
        history_levels(torch.zeros(16, 4), CFG)
    with pytest.raises(ValueError, match="max > min"):
        history_levels(torch.zeros(16, 2), TrajectoryPromptConfig(history_xyz_min=[5.0, 0.0, 0.0]))


def test_offset_needs_every_level_at_consecutive_ids():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    cfg = TrajectoryPromptConfig(history_bins=5)
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"a": 0, "<unk>": 1}, unk_token="<unk>")),
                                  unk_token="<unk>")
    with pytest.raises(ValueError, match="prepare_backbone"):
        history_token_offset(tok, cfg)
    tok.add_tokens([f"<|traj_hist_{i}|>" for i in range(5)], special_tokens=True)
    assert history_token_offset(tok, cfg) == 2
