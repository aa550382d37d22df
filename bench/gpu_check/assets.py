"""What the parts share, made once per work directory and kept: the random model, the caption clips, the driving
scenes, the trajectory backbone, and each training clip's geometry (tokens, vision grid) for the FLOPs count.

Every maker skips what is already there (model and backbone directories are written atomically, so present
means complete); clips prepared elsewhere (bench/gpu_check_wheels.sh, for a machine without PyAV) are checked
against the preset by their stamp."""

import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

from gpu_check.presets import Preset

CLIPS_STAMP = "gpu_check_clips.json"


class AssetError(Exception):
    """A prepared input that cannot be used; the message says which and what to do."""


def model_dir(work: Path, preset: Preset) -> Path:
    """The random-initialised model of the preset's shape (drawn on the GPU where there is one)."""
    out = work / "model"
    if not (out / "config.json").is_file():
        import torch

        from cosmos_exp.models.tiny import build_shaped_model

        device = "cuda" if torch.cuda.is_available() else "cpu"
        build_shaped_model(preset.model_config(), out, seed=0, dtype=preset.weights_dtype, device=device)
        if device == "cuda":
            torch.cuda.empty_cache()  # the children measure their own memory; hold none here
    return out


def parameter_count(model: Path) -> int:
    """Parameters of the checkpoint's architecture (tied embeddings once), counted without allocating them."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    with torch.device("meta"):
        shell = AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(model))
    return sum(p.numel() for p in shell.parameters())


def _clip_settings(preset: Preset) -> Dict[str, Any]:
    return {"clips": preset.clips, "seconds": preset.clip_seconds, "fps": preset.clip_fps,
            "width": preset.clip_width, "height": preset.clip_height}


def clip_dataset(root: Path, preset: Preset) -> Any:
    """The caption dataset config of the clips (the synthetic_av layout), with the preset's vision settings."""
    from cosmos_exp.config.data import DatasetConfig

    return DatasetConfig(name="gpu_check_clips", root=str(root), vision=preset.vision())


def caption_clips(root: Path, preset: Preset) -> Path:
    """Synthetic driving clips at the preset's camera resolution under root (generated with PyAV if absent)."""
    want = _clip_settings(preset)
    stamp = root / CLIPS_STAMP
    if stamp.is_file():
        have = json.loads(stamp.read_text(encoding="utf-8"))
        if have != want:
            raise AssetError(f"{root} holds clips made for {have}, the {preset.name} preset needs {want}: prepare "
                             "them again (bench/gpu_check_wheels.sh) or pass another --data")
        return root
    if root.exists() and any(root.iterdir()):
        raise AssetError(f"{root} exists but holds no GPU-check clips ({CLIPS_STAMP} missing): pass an empty or "
                         "new --data directory")
    from cosmos_exp.config.data import DatasetConfig, SyntheticConfig
    from cosmos_exp.data.synthetic import generate_synthetic_av
    from cosmos_exp.repro.atomic import write_json_atomic

    synthetic = SyntheticConfig(num_train=preset.clips, num_eval=1, seconds=preset.clip_seconds, fps=preset.clip_fps,
                                width=preset.clip_width, height=preset.clip_height, seed=0)
    generate_synthetic_av(DatasetConfig(name="gpu_check_clips", root=str(root), synthetic=synthetic))
    write_json_atomic(stamp, want)
    return root


def clip_geometry(model: Path, clips: Path, preset: Preset) -> List[Tuple[int, List[Tuple[int, int, int]]]]:
    """(tokens, video grids) of every training clip, as our processor encodes it for training."""
    from cosmos_exp.data.datasets import build_dataset
    from cosmos_exp.data.processor import Processor

    processor = Processor.from_pretrained(model, model_max_length=preset.model_max_length)
    samples, _ = build_dataset(clip_dataset(clips, preset), "train")
    out = []
    for sample in samples:
        features = processor.encode(sample.conversation, preset.vision())
        grids = [tuple(int(v) for v in g) for g in features["video_grid_thw"].tolist()]
        out.append((int(features["input_ids"].shape[0]), grids))
    return out


def driving_scenes(root: Path, preset: Preset) -> Path:
    """The synthetic driving scenes, with the reference's fourth camera (the 30-degree front tele) added to both
    rigs so a sample holds the reference prompt's 4 cameras. The generator skips scenes already there."""
    from cosmos_exp.config.trajectory import CameraMountConfig, DrivingSyntheticConfig, RigConfig
    from cosmos_exp.data.driving_synthetic import generate_driving_synthetic

    base = DrivingSyntheticConfig()
    tele = CameraMountConfig("camera_front_tele_30fov", pitch_deg=20.0, fov_deg=30.0, height_m=3.5)
    four = [RigConfig(rig.name, [*rig.cameras, tele]) for rig in (base.rig_a, base.rig_b)]
    cfg = DrivingSyntheticConfig(num_train=preset.scenes, num_eval=1, width=preset.scene_width,
                                 height=preset.scene_height, rig_a=four[0], rig_b=four[1])
    generate_driving_synthetic(cfg, root)
    return root


def trajectory_backbone(work: Path, model: Path) -> Path:
    """The model with the trajectory tokens added (what stage=prepare makes for a trajectory run)."""
    out = work / "backbone"
    if not (out / "config.json").is_file():
        from cosmos_exp.config.trajectory import TrajectoryPromptConfig
        from cosmos_exp.models.trajectory_tokens import prepare_backbone

        prepare_backbone(model, out, TrajectoryPromptConfig())
    return out
