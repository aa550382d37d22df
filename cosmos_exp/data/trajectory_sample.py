"""One trajectory sample as the backbone and the action expert take it.

The backbone's prefix, in Qwen's chat format (the official template's image expansion):

    <|im_start|>system\\n{system}<|im_end|>\\n<|im_start|>user\\n
    [{camera} frame {j}: ]<|vision_start|><|image_pad|> x n<|vision_end|>   one per image, camera-major
    <|traj_history_start|>{48 history tokens}<|traj_history_end|>{user prompt}<|im_end|>\\n
    <|im_start|>assistant\\n<|traj_future_start|>

Images come camera-major in the configured fixed camera order, each camera's frames oldest first; the
bracketed camera-name text is there only when `camera_names_in_prompt` is set. The expert's action tokens follow
the last token. Besides the backbone's tensors a sample carries `camera_index` (each image's index in the fixed
camera order, for the optional camera-id embedding), `v0` (the speed at t0 from the history) and, when the
future is given, `actions` (the fitted ground-truth actions, normalised).
"""

from typing import Dict, List, Mapping

import numpy as np

from cosmos_exp.config.trajectory import ActionSpaceConfig, TrajectoryPromptConfig
from cosmos_exp.data.processor import IMAGE_TYPE_ID, Processor
from cosmos_exp.trajectory.action_space import estimate_v0, fit_actions, normalise
from cosmos_exp.trajectory.history_tokens import history_levels, history_token_offset
from cosmos_exp.trajectory.token_names import FUTURE_START, HISTORY_END, HISTORY_START


def ordered_cameras(available: List[str], cfg: TrajectoryPromptConfig) -> List[str]:
    """The configured cameras in the fixed camera order; a one-line error names what is missing or unknown."""
    unknown = [c for c in cfg.cameras if c not in cfg.camera_order]
    if unknown:
        raise ValueError(f"trajectory prompt: cameras {unknown} are not in camera_order {cfg.camera_order}")
    missing = [c for c in cfg.cameras if c not in available]
    if missing:
        raise ValueError(f"trajectory sample: no images for cameras {missing} (has {sorted(available)})")
    return sorted(cfg.cameras, key=cfg.camera_order.index)


def encode_trajectory_sample(processor: Processor, images: Mapping[str, np.ndarray], history,
                             cfg: TrajectoryPromptConfig, action_cfg: ActionSpaceConfig,
                             future_xy=None) -> Dict[str, object]:
    """Tensors of one sample. `images`: camera name -> uint8 frames [F, H, W, 3], oldest first; `history`: the
    ego history (H, 2) or (H, 3), oldest first, the last point at t0 in the t0 frame; `future_xy` (T, 2)."""
    import torch

    cameras = ordered_cameras(list(images), cfg)
    frames: List[np.ndarray] = []
    for cam in cameras:
        f = np.asarray(images[cam])
        if f.ndim != 4 or f.shape[0] != cfg.frames_per_camera:
            raise ValueError(f"trajectory sample: camera {cam} has frames of shape {tuple(f.shape)}, expected "
                             f"[{cfg.frames_per_camera}, H, W, 3] (frames_per_camera)")
        frames.extend(f)
    vision = processor.encode_images(frames, cfg.image_min_pixels, cfg.image_max_pixels)

    history = torch.as_tensor(history, dtype=torch.float64)
    if history.ndim != 2 or history.shape[0] != action_cfg.history_steps:
        raise ValueError(f"trajectory sample: ego history has shape {tuple(history.shape)}, expected "
                         f"[{action_cfg.history_steps}, 2 or 3] (history_steps)")
    tok = processor.tokenizer
    special = dict(zip((HISTORY_START, HISTORY_END, FUTURE_START),
                       tok.convert_tokens_to_ids([HISTORY_START, HISTORY_END, FUTURE_START])))
    history_ids = (history_levels(history, cfg) + history_token_offset(tok, cfg)).tolist()

    ids = processor.text_ids(f"<|im_start|>system\n{cfg.system_prompt}<|im_end|>\n<|im_start|>user\n")
    grids = vision["image_grid_thw"].tolist()
    for i, grid in enumerate(grids):
        cam, frame = cameras[i // cfg.frames_per_camera], i % cfg.frames_per_camera
        if cfg.camera_names_in_prompt:
            ids += processor.text_ids(f"{cam} frame {frame}: ")
        ids += processor.image_token_ids(grid)
    ids += [special[HISTORY_START]] + history_ids + [special[HISTORY_END]]
    ids += processor.text_ids(f"{cfg.user_prompt}<|im_end|>\n<|im_start|>assistant\n") + [special[FUTURE_START]]
    if len(ids) > processor.model_max_length:
        n_img = sum(1 for i in ids if i == processor.image_pad_id)
        raise ValueError(f"trajectory sample: prompt needs {len(ids)} tokens ({n_img} image tokens from "
                         f"{len(grids)} images), over model_max_length={processor.model_max_length}; use fewer "
                         "pixels (image_max_pixels), cameras or frames")

    input_ids = torch.tensor(ids, dtype=torch.long)
    mm = torch.zeros_like(input_ids)
    mm[input_ids == processor.image_pad_id] = IMAGE_TYPE_ID
    xy = history[:, :2]
    v0 = estimate_v0(xy, action_cfg.dt, action_cfg.v0_window)
    out: Dict[str, object] = {
        "input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "mm_token_type_ids": mm,
        **vision,
        "camera_index": torch.tensor([cfg.camera_order.index(c) for c in cameras
                                      for _ in range(cfg.frames_per_camera)], dtype=torch.long),
        "v0": v0.to(torch.float32),
    }
    if future_xy is not None:
        future = torch.as_tensor(future_xy, dtype=torch.float64)
        if tuple(future.shape) != (action_cfg.n_steps, 2):
            raise ValueError(f"trajectory sample: future has shape {tuple(future.shape)}, expected "
                             f"[{action_cfg.n_steps}, 2] (n_steps)")
        out["actions"] = normalise(fit_actions(future, v0, action_cfg), action_cfg).to(torch.float32)
    return out


def collate_trajectory(processor: Processor, features: List[Dict[str, object]]) -> Dict[str, object]:
    """Right-padded text tensors and concatenated images (the processor's collate), plus the stacked v0 and
    actions and the concatenated camera indices."""
    import torch

    batch = processor.collate(features)
    batch["camera_index"] = torch.cat([f["camera_index"] for f in features])
    batch["v0"] = torch.stack([f["v0"] for f in features])
    if all("actions" in f for f in features):
        batch["actions"] = torch.stack([f["actions"] for f in features])
    return batch
