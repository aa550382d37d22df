"""Which frames of a clip the model sees: the Qwen-VL rules (as in qwen-vl-utils / cosmos-rl).

- `nframes`: rounded to a multiple of the temporal patch size.
- `fps`: duration * fps, clamped to [min_frames, max_frames] and to the clip, floored to a multiple
  of the temporal patch size.
Indices are spread evenly over the whole clip (first and last frame included) and rounded.
"""

import math
from typing import TYPE_CHECKING, List, Tuple

import numpy as np

if TYPE_CHECKING:  # only a type: the cosmos-rl entry imports this module without Hydra
    from cosmos_exp.config.data import VisionConfig


class FrameSamplingError(ValueError):
    """The clip cannot give the requested frames (too short, or a bad setting)."""


def num_frames_to_sample(num_frames: int, video_fps: float, vision: "VisionConfig", temporal_patch_size: int) -> int:
    tps = temporal_patch_size
    if (vision.nframes is None) == (vision.fps is None):
        raise FrameSamplingError("set exactly one of vision.nframes and vision.fps")
    if vision.nframes is not None:
        n = max(tps, int(round(vision.nframes / tps)) * tps)
    else:
        if video_fps <= 0:
            raise FrameSamplingError(f"the video reports fps={video_fps}; sample with vision.nframes instead")
        min_frames = math.ceil(vision.min_frames / tps) * tps
        max_frames = math.floor(min(vision.max_frames, num_frames) / tps) * tps
        n = num_frames / video_fps * vision.fps
        n = min(max(n, min_frames), max_frames, num_frames)
        n = math.floor(n / tps) * tps
    if not tps <= n <= num_frames:
        raise FrameSamplingError(
            f"the video has {num_frames} frames, fewer than the {max(n, tps)} requested "
            "(lower vision.nframes / vision.fps or drop this clip)"
        )
    return n


def sample_frames(
    num_frames: int, video_fps: float, vision: "VisionConfig", temporal_patch_size: int
) -> Tuple[List[int], List[float]]:
    """Frame indices to decode and their timestamps in seconds."""
    n = num_frames_to_sample(num_frames, video_fps, vision, temporal_patch_size)
    indices = np.linspace(0, num_frames - 1, n).round().astype(int).tolist()
    fps = video_fps if video_fps > 0 else 24.0  # the Qwen3-VL processor's fallback
    return indices, [i / fps for i in indices]


def temporal_patch_timestamps(indices: List[int], video_fps: float, temporal_patch_size: int) -> List[float]:
    """One timestamp per temporal patch: the mean of its first and last frame (Qwen3-VL prompt text).

    The index list is padded with its last entry to a multiple of the patch size, as the frames are.
    """
    idx = list(indices)
    if len(idx) % temporal_patch_size:
        idx += [idx[-1]] * (temporal_patch_size - len(idx) % temporal_patch_size)
    fps = video_fps if video_fps > 0 else 24.0
    ts = [i / fps for i in idx]
    return [(ts[i] + ts[i + temporal_patch_size - 1]) / 2 for i in range(0, len(ts), temporal_patch_size)]


def sampled_fps(num_sampled: int, num_frames: int, video_fps: float) -> float:
    """Frames per second of the sampled clip (Qwen2.5-VL's second_per_grid_ts uses it)."""
    fps = video_fps if video_fps > 0 else 24.0
    return num_sampled / num_frames * fps
