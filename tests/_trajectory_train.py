"""A trajectory training run on in-memory driving scenes (the data seam, cosmos_exp/train/trajectory_task.py's
TrajectorySource, until the driving-data reader lands): tiny straight and turning scenes with random camera
images, the cameras and sizes of tests/_trajectory_fixtures.py, a small expert.

As a script (its own process, so a test can SIGKILL it or torchrun can start two ranks):

    python tests/_trajectory_train.py <run_dir> <backbone dir> [config overrides...]
"""

import sys
from functools import partial
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `tests.` imports when run as a script

from tests._trajectory_fixtures import CAMERAS, left_turn, straight  # noqa: E402

SCENE_IMAGE = (48, 64)  # h, w: 12 image tokens per frame after the 2 x 2 merge
SMALL_TASK = [  # the fixtures' prompt and a small expert, as config overrides
    f"task.trajectory.prompt.cameras=[{','.join(CAMERAS)}]", "task.trajectory.prompt.frames_per_camera=2",
    "task.trajectory.prompt.image_min_pixels=1024", "task.trajectory.prompt.image_max_pixels=8192",
    "task.trajectory.expert.hidden_size=32", "task.trajectory.expert.intermediate_size=64",
    "task.trajectory.expert.in_proj_hidden=32", "task.trajectory.expert.in_proj_layers=2",
]


def scenes(n: int, seed: int) -> List[Dict[str, Any]]:
    """n scenes: straight at 6-12 m/s, left and right turns; each camera's frames show a pattern that tells
    the manoeuvre (so the future is learnable from the images) plus noise."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind = ("straight", "left", "right")[i % 3]
        speed = float(rng.uniform(6.0, 12.0))
        future = straight(speed, 64, 1) if kind == "straight" else left_turn(speed, float(rng.uniform(25.0, 60.0)))
        if kind == "right":
            future = future * torch.tensor([1.0, -1.0], dtype=future.dtype)
        level = {"straight": 60, "left": 140, "right": 220}[kind]
        images = {cam: np.clip(level + rng.normal(0, 20, (2, *SCENE_IMAGE, 3)), 0, 255).astype(np.uint8)
                  for cam in CAMERAS}
        out.append({"images": images, "history": straight(speed, 16, -15), "future": future})
    return out


def encode_scene(processor: Any, scene: Dict[str, Any], prompt: Any, actions: Any) -> Dict[str, Any]:
    from cosmos_exp.data.trajectory_sample import encode_trajectory_sample

    return encode_trajectory_sample(processor, scene["images"], scene["history"], prompt, actions, scene["future"])


def scene_source(cfg: Any, n_train: int = 6, n_eval: int = 2) -> Any:
    """A TrajectorySource over fixed in-memory scenes, encoded with the task's prompt and action space."""
    from cosmos_exp.train.trajectory_task import TrajectorySource, TrajectoryTask

    settings = TrajectoryTask._settings(cfg)
    splits = {cfg.dataset.train_split: scenes(n_train, 0), cfg.dataset.eval_split: scenes(n_eval, 1)}
    return TrajectorySource(items=splits.__getitem__,
                            encode=partial(encode_scene, prompt=settings.prompt, actions=settings.action_space))


def compose(run_dir: Path, backbone: Path, overrides: List[str]) -> Any:
    """The typed, validated config of a trajectory run (stage=sft, the tiny Qwen3-VL preset at `backbone`)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from cosmos_exp.config import register_configs
    from cosmos_exp.config.validate import typed, validate
    from cosmos_exp.run import CONF_DIR

    register_configs()
    GlobalHydra.instance().clear()
    base = ["stage=sft", "task=trajectory_stage2", "model=tiny_qwen3_vl", f"model.path={backbone}",
            "dataset=driving_synthetic", "dataset.driving_synthetic=null",  # the samples come in memory
            f"dataset.root={backbone}", f"paths.root={Path(run_dir).parent}/outputs", "dataset.num_workers=0",
            "train.micro_batch_size=2", "train.global_batch_size=2", "train.max_steps=4", "train.save_every=2",
            "train.warmup_ratio=null", "train.warmup_steps=1", "train.lr=3e-3", "train.loggers=[console]"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = typed(hydra_compose("config", overrides=[*base, *SMALL_TASK, *overrides]))
    validate(cfg)
    return cfg


def run(run_dir: Path, backbone: Path, overrides: List[str]) -> Dict[str, Any]:
    from cosmos_exp.runtime.rendezvous import lone_process
    from cosmos_exp.runtime.topology import topology
    from cosmos_exp.train.deepspeed_loop import train
    from cosmos_exp.train.trajectory_task import TrajectoryTask

    cfg = compose(run_dir, backbone, overrides)
    task = TrajectoryTask(cfg, scene_source(cfg))
    if topology().in_launch:  # a rank of torchrun
        return train(cfg, run_dir, task=task)
    with lone_process():
        return train(cfg, run_dir, task=task)


if __name__ == "__main__":
    import json
    import logging

    logging.basicConfig(level=logging.INFO)
    result = run(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
    print(json.dumps(result))
