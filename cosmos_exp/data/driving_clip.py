"""The driving-clip data contract: what every trajectory data source yields (the synthetic multi-rig scenes,
PhysicalAI-AV), and how a clip becomes the trajectory model's sample and the metrics' truth.

Frame and units as cosmos_exp/trajectory/action_space.py: the ego pose at t0, x forward, y left, z up, yaw
counter-clockwise; metres, seconds, radians; history and future at the action space's dt (0.1 s).

A clip's images are per camera id (PhysicalAI-AV names such as camera_front_wide_120fov), frames oldest first
with the last at t0, each a uint8 H x W x 3 array or the path of an image file. `camera_order` is the order the
source lists its cameras in (a rig's own order); the model never sees it: the sample sorts images by the fixed
camera order of TrajectoryPromptConfig, so a camera's name is its identity.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np

from cosmos_exp.config.trajectory import ActionSpaceConfig, TrajectoryPromptConfig

Frame = Union[np.ndarray, str, Path]


@dataclass
class DrivingClip:
    scene_id: str  # paired scenes share it across rigs
    rig: str
    images: Dict[str, List[Frame]]  # camera id -> frames, oldest first, the last at t0
    camera_order: List[str]
    history_xyz: np.ndarray  # (H, 3), oldest first, the last point at t0 (the origin)
    future_xy: np.ndarray  # (T, 2) at dt, 2 dt, ..., T dt after t0
    v0: float  # speed at t0 (m/s)
    manoeuvre: str  # straight | left | right, from the future's final yaw
    history_yaw: Optional[np.ndarray] = None  # (H,)
    future_yaw: Optional[np.ndarray] = None  # (T,)
    reasoning: Optional[str] = None
    meta: Dict[str, Any] = field(default_factory=dict)


def load_image(path: Union[str, Path]) -> np.ndarray:
    """uint8 H x W x 3 of an image file (PNG, JPEG: anything PIL opens)."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def clip_frames(clip: DrivingClip, cameras: Optional[List[str]] = None,
                frames: Optional[int] = None) -> Dict[str, np.ndarray]:
    """camera id -> uint8 [F, H, W, 3] (files read), for `cameras` (default: all of the clip's) and the newest
    `frames` of each (default: all); a one-line error names the clip and what is missing."""
    out: Dict[str, np.ndarray] = {}
    for cam in cameras if cameras is not None else clip.camera_order:
        if cam not in clip.images:
            raise ValueError(f"clip {clip.scene_id} ({clip.rig}): no images for camera {cam} "
                             f"(has {sorted(clip.images)})")
        seq = clip.images[cam]
        if frames is not None:
            if len(seq) < frames:
                raise ValueError(f"clip {clip.scene_id} ({clip.rig}): camera {cam} has {len(seq)} frames, "
                                 f"{frames} wanted")
            seq = seq[len(seq) - frames:]
        out[cam] = np.stack([np.asarray(f, dtype=np.uint8) if isinstance(f, np.ndarray) else load_image(f)
                             for f in seq])
    return out


def clip_features(processor, clip: DrivingClip, prompt_cfg: TrajectoryPromptConfig,
                  action_cfg: ActionSpaceConfig) -> Dict[str, object]:
    """The trajectory model's sample of a clip (cosmos_exp/data/trajectory_sample.py): the prompt's cameras in
    its fixed order, the newest frames_per_camera frames of each, the history tokens, v0 from the history and
    the normalised ground-truth actions fitted to the future."""
    from cosmos_exp.data.trajectory_sample import encode_trajectory_sample

    images = clip_frames(clip, list(prompt_cfg.cameras), prompt_cfg.frames_per_camera)
    return encode_trajectory_sample(processor, images, clip.history_xyz, prompt_cfg, action_cfg, clip.future_xy)


def clip_truth(clip: DrivingClip) -> Dict[str, Any]:
    """The truth of one scene as cosmos_exp/evaluate/trajectory.py takes it."""
    truth: Dict[str, Any] = {"xy": np.asarray(clip.future_xy, dtype=float), "manoeuvre": clip.manoeuvre}
    if clip.future_yaw is not None:
        truth["yaw"] = np.asarray(clip.future_yaw, dtype=float)
    return truth
