"""Shared set-up of the trajectory-model tests: a tiny Qwen3-VL prepared with the trajectory tokens, two scenes
(straight at 10 m/s with square images, a left turn at 5 m/s with wider ones, so the first is right-padded in a
batch) and a small expert."""

import numpy as np
import pytest
import torch

from cosmos_exp.config.model import TinyModelConfig
from cosmos_exp.config.trajectory import ActionSpaceConfig, ExpertConfig, FlowMatchingConfig, TrajectoryPromptConfig
from cosmos_exp.data.processor import Processor
from cosmos_exp.data.trajectory_sample import collate_trajectory, encode_trajectory_sample
from cosmos_exp.models.tiny import build_tiny_model
from cosmos_exp.models.trajectory_model import TrajectoryModel
from cosmos_exp.models.trajectory_tokens import prepare_backbone

CAMERAS = ["camera_front_wide_120fov", "camera_cross_left_120fov"]  # listed out of the fixed order on purpose
PROMPT = TrajectoryPromptConfig(cameras=CAMERAS, frames_per_camera=2, image_min_pixels=1024, image_max_pixels=8192)
ACTIONS = ActionSpaceConfig()
FLOW = FlowMatchingConfig()
SMALL = ExpertConfig(hidden_size=32, intermediate_size=64, in_proj_hidden=32, in_proj_layers=2)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("traj")
    base = build_tiny_model("qwen3_vl", root / "base", TinyModelConfig())
    return {"root": root, "base": base, "backbone": prepare_backbone(base, root / "backbone", PROMPT)}


@pytest.fixture(scope="module")
def processor(dirs):
    return Processor.from_pretrained(dirs["backbone"])


@pytest.fixture(scope="module")
def batch(processor):
    return collate_trajectory(processor, features(processor))


def straight(speed: float, n: int, start: int) -> torch.Tensor:
    """n points at 10 Hz along +x, the first at time index `start` (so -15 ... 0 is a history ending at t0)."""
    return torch.stack([torch.arange(start, start + n, dtype=torch.float64) * speed * 0.1,
                        torch.zeros(n, dtype=torch.float64)], dim=-1)


def left_turn(speed: float, radius: float) -> torch.Tensor:
    angle = torch.arange(1, 65, dtype=torch.float64) * speed * 0.1 / radius
    return torch.stack([radius * torch.sin(angle), radius * (1 - torch.cos(angle))], dim=-1)


def scene_images(rng, prompt: TrajectoryPromptConfig, h: int, w: int):
    return {c: rng.integers(0, 256, (prompt.frames_per_camera, h, w, 3), dtype=np.uint8) for c in prompt.cameras}


def features(processor, seed: int = 0, prompt: TrajectoryPromptConfig = PROMPT):
    rng = np.random.default_rng(seed)
    scenes = [(10.0, straight(10.0, 64, 1), (64, 64)), (5.0, left_turn(5.0, 20.0), (64, 96))]
    return [encode_trajectory_sample(processor, scene_images(rng, prompt, h, w), straight(speed, 16, -15), prompt,
                                     ACTIONS, future) for speed, future, (h, w) in scenes]


def make_model(backbone_dir, expert=SMALL, prompt=PROMPT, seed=0, dtype="float32") -> TrajectoryModel:
    return TrajectoryModel.from_backbone(backbone_dir, expert, prompt, ACTIONS, FLOW, dtype=dtype, seed=seed)
