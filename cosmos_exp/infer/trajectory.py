"""Trajectory predictions of one checkpoint over a driving split (stage=evaluate with a trajectory task).

Per clip, two sources, each rolled out to waypoints from the clip's v0 (cosmos_exp/trajectory/action_space.py):
  expert   K samples of the flow-matching action expert (task.trajectory.metrics.k, flow_matching.euler_steps);
  tokens   the backbone's greedy decode of its discrete future tokens (stage 1's output), one trajectory.
Both are written with the clip's truth to predictions/<rig>/<scene>.json (rundir.prediction_path), atomically.

Each scene's expert noise comes from a generator seeded by (seed, scene id) alone: a sample depends neither on
the batch it was drawn in nor on the rig, so a resumed run draws what an uninterrupted one drew, and the rigs of a
scene start from the same noise (their difference is the cameras', not the noise's). A clip whose prediction
file exists is not predicted again (resumable) unless `force`.
"""

import hashlib
import logging
from pathlib import Path
from typing import Any, Dict, List, Sequence

from cosmos_exp import rundir
from cosmos_exp.config import Config
from cosmos_exp.repro.atomic import write_json_atomic

log = logging.getLogger("cosmos_exp.infer.trajectory")
SOURCES = ("expert", "tokens")


def scene_seed(seed: int, scene_id: str) -> int:
    """A stable seed of (seed, scene id): Python's hash() changes between processes."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{scene_id}".encode()).digest()[:8], "little") >> 1


def scene_noise(seed: int, scene_id: str, k: int, n_steps: int) -> Any:
    """The expert's starting noise of one scene: (K, T, 2)."""
    import torch

    return torch.randn((k, n_steps, 2), generator=torch.Generator().manual_seed(scene_seed(seed, scene_id)))


def predict_clips(model: Any, processor: Any, clips: Sequence[Any], run_dir: Path, k: int, steps: int, seed: int,
                  batch_size: int, force: bool = False) -> Dict[str, int]:
    """Predict every clip without a prediction file (all with `force`), batch_size clips per forward pass."""
    import torch

    from cosmos_exp.data.driving_clip import clip_features, clip_truth
    from cosmos_exp.data.trajectory_sample import collate_trajectory
    from cosmos_exp.trajectory.future_tokens import actions_from_future_ids, future_token_offset

    acfg = model.action_cfg
    offset = future_token_offset(processor.tokenizer, acfg)
    todo = [c for c in clips if force or not rundir.prediction_path(run_dir, c.rig, c.scene_id).is_file()]
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        features = [clip_features(processor, c, model.prompt_cfg, acfg) for c in chunk]
        batch = collate_trajectory(processor, features)  # right-padded: the expert's prefix, as in training
        noise = torch.stack([scene_noise(seed, c.scene_id, k, acfg.n_steps) for c in chunk])
        expert = model.sample(batch, k=k, steps=steps, noise=noise)
        left = dict(processor.collate(features, padding_side="left"), camera_index=batch["camera_index"])
        ids = model.decode_future_tokens(left, offset, processor.pad_id)
        token_actions = actions_from_future_ids(ids.cpu(), acfg, offset)[:, None]  # (B, 1, T, 2)
        token_xy = model.rollout(token_actions, batch["v0"])
        for j, clip in enumerate(chunk):
            truth = clip_truth(clip)
            record = {"scene_id": clip.scene_id, "rig": clip.rig, "k": k, "euler_steps": steps, "seed": seed,
                      "v0": float(batch["v0"][j]),
                      "truth": {key: (v.tolist() if hasattr(v, "tolist") else v) for key, v in truth.items()},
                      "expert": {"xy": expert.xy[j].cpu().tolist(), "actions": expert.actions[j].cpu().tolist()},
                      "tokens": {"xy": token_xy[j].cpu().tolist(), "actions": token_actions[j].tolist(),
                                 "token_ids": ids[j].cpu().tolist()}}
            write_json_atomic(rundir.prediction_path(run_dir, clip.rig, clip.scene_id), record)
        log.info("trajectory predictions: %d/%d clips", min(start + batch_size, len(todo)), len(todo))
    return {"clips": len(clips), "predicted": len(todo), "reused": len(clips) - len(todo)}


def read_predictions(run_dir: Path, clips: Sequence[Any]) -> List[Dict[str, Any]]:
    """The prediction records of `clips`, in their order."""
    return [rundir.read_json(rundir.prediction_path(run_dir, c.rig, c.scene_id)) for c in clips]


def run_predictions(cfg: Config, run_dir: Path, split: str) -> Dict[str, Any]:
    """Load the trajectory checkpoint at model.path, read the split's clips (dataset.rigs) and predict them;
    returns the counts, the data report and the prediction records."""
    import torch

    from cosmos_exp.data.driving_datasets import driving_clips
    from cosmos_exp.data.processor import Processor
    from cosmos_exp.models.trajectory_checkpoint import load_trajectory_checkpoint

    tr = cfg.task.trajectory
    clips, report = driving_clips(cfg.dataset, split, tr.action_space)
    if cfg.generation.max_items:
        clips = _first_per_rig(clips, cfg.generation.max_items)
    if not clips:
        raise ValueError(f"dataset {cfg.dataset.name!r} split {split!r} has no driving clip to evaluate")
    device = cfg.generation.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_trajectory_checkpoint(cfg.model.path, dtype=cfg.model.dtype, device=device)
    model.eval()
    processor = Processor.from_pretrained(cfg.model.path, model_max_length=cfg.model.model_max_length)
    counts = predict_clips(model, processor, clips, Path(run_dir), int(tr.metrics.k),
                           int(tr.flow_matching.euler_steps), int(cfg.seed), int(cfg.generation.batch_size),
                           force=bool(cfg.generation.force))
    return {**counts, "report": report, "records": read_predictions(Path(run_dir), clips)}


def _first_per_rig(clips: Sequence[Any], n: int) -> List[Any]:
    """The first n clips of each rig: a cap keeps the rigs' scenes paired (they come rig after rig)."""
    kept: Dict[str, int] = {}
    out = []
    for clip in clips:
        if kept.get(clip.rig, 0) < n:
            kept[clip.rig] = kept.get(clip.rig, 0) + 1
            out.append(clip)
    return out
