"""Helpers for the data tests: tiny synthetic datasets, configs and tiny checkpoints."""

import hashlib
import importlib.util
import sys
from pathlib import Path

from omegaconf import OmegaConf

from cosmos_exp.config.data import DatasetConfig, SyntheticConfig, VisionConfig


def dataset_cfg(root, **kw):
    """A structured (typed) DatasetConfig, as Hydra would hand it to the data package."""
    vision = kw.pop("vision", VisionConfig(nframes=8))
    kw.setdefault("name", "synth")
    return OmegaConf.structured(DatasetConfig(root=str(root), vision=vision, **kw))


def make_synthetic(root, num_train=4, num_eval=2, seed=0, seconds=2.0, fps=8, synthetic_overrides=None, **kw):
    from cosmos_exp.data.synthetic import generate_synthetic_av

    cfg = dataset_cfg(root, synthetic=SyntheticConfig(num_train=num_train, num_eval=num_eval, seconds=seconds,
                                                      fps=fps, seed=seed, **(synthetic_overrides or {})), **kw)
    return cfg, generate_synthetic_av(cfg)


def tree_digest(root) -> str:
    """Every file's name and bytes under root: the same seed must give the same files."""
    h = hashlib.sha256()
    for p in sorted(Path(root).rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def load_transformers_module(relpath: str, name: str):
    """Import a transformers source file directly, bypassing the lazy loader's torchvision gate.

    Only for parts that run without torchvision (pure-python size rules, patchify, timestamps).
    """
    import transformers

    path = Path(transformers.__file__).parent / relpath
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def write_qa(root, split, reasoning=True):
    """<root>/<split>/qa.jsonl: one free-form question per clip of a synthetic split, answered from its label
    (with the label's safety analysis as the reasoning when `reasoning`)."""
    import json

    split_dir = Path(root) / split
    lines = []
    for label in sorted((split_dir / "metas").glob("*.label.json")):
        clip = label.name.split(".")[0]
        data = json.loads(label.read_text(encoding="utf-8"))
        row = {"id": f"{clip}_qa", "video": f"videos/{clip}.camera_front_wide_120fov.mp4",
               "question": "How hard is this clip to drive, from 1 to 4?", "answer": str(data["driving_difficulty"])}
        if reasoning:
            row["reasoning"] = data["safety_analysis"]
        lines.append(json.dumps(row))
    (split_dir / "qa.jsonl").write_text("\n".join(lines) + "\n")
    return split_dir / "qa.jsonl"
