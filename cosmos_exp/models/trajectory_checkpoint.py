"""Trajectory checkpoints, and the check that a backbone is the one a config names.

Layout of a checkpoint directory:

    <dir>/                     the backbone as a normal HF checkpoint (weights, config, tokenizer, processor
                               files): caption tools and `load_model` read it as any other
    <dir>/action_expert/model.safetensors   the expert's weights (and the camera-id embedding, when on)
    <dir>/action_expert/config.json         format, the expert / prompt / action-space (normalisation) /
                                            flow-matching settings, and the backbone's identity

The backbone's identity is a sha256 over its saved tensors (names, dtypes, shapes, bytes, in name order), so it
does not depend on how the weights are split into files. Loading recomputes it from the files and checks the
loaded weights against them: an expert is never silently paired with a backbone it was not trained against.

`check_backbone` guards against upstream's stage-1 bug: the stage-2 model was built with the stage-1 weights,
then `from_pretrained` overwrote them with the base checkpoint's, and stage 2 trained against the base VLM
with nothing to tell. It compares the weights in memory, tensor by tensor, with the checkpoint the config
names; any difference is an error naming both directories.
"""

import hashlib
import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple, Union

from cosmos_exp.config.trajectory import ActionSpaceConfig, ExpertConfig, FlowMatchingConfig, TrajectoryPromptConfig
from cosmos_exp.models.loading import write_hf_files
from cosmos_exp.repro.atomic import atomic_directory, write_json_atomic

EXPERT_DIR = "action_expert"
FORMAT = 1
# section of action_expert/config.json -> (TrajectoryModel attribute, settings class)
_SECTIONS = {"expert": ("expert_cfg", ExpertConfig), "prompt": ("prompt_cfg", TrajectoryPromptConfig),
             "action_space": ("action_cfg", ActionSpaceConfig), "flow_matching": ("flow_cfg", FlowMatchingConfig)}


class BackboneMismatchError(ValueError):
    pass


def _safetensors_files(model_dir: Union[str, Path]) -> list:
    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{model_dir}: no *.safetensors weights; is it a Hugging Face checkpoint directory?")
    return files


def _saved_tensors(model_dir: Union[str, Path]) -> Iterator[Tuple[str, Any]]:
    """(name, tensor) of every saved tensor of a checkpoint, in name order, one at a time."""
    from safetensors import safe_open

    where = {}
    for path in _safetensors_files(model_dir):
        with safe_open(str(path), "pt") as f:
            where.update({name: path for name in f.keys()})
    for name in sorted(where):
        with safe_open(str(where[name]), "pt") as f:
            yield name, f.get_tensor(name)


def weights_digest(model_dir: Union[str, Path]) -> str:
    """sha256 over a checkpoint's saved tensors (name, dtype, shape, bytes, in name order)."""
    import torch

    h = hashlib.sha256()
    for name, t in _saved_tensors(model_dir):
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def check_backbone(model: Any, expected_dir: Union[str, Path]) -> None:
    """Raise BackboneMismatchError unless every tensor saved in `expected_dir` equals the loaded backbone's
    (compared in the loaded precision, so a bf16 load of an fp32 checkpoint passes)."""
    import torch

    loaded = model.backbone.state_dict()
    source = model.backbone_source or "an unrecorded directory"
    differ, missing, total = [], [], 0
    for name, saved in _saved_tensors(expected_dir):
        total += 1
        mine = loaded.get(name)
        if mine is None:
            missing.append(name)
        elif mine.shape != saved.shape or not torch.equal(mine.detach().cpu(), saved.to(mine.dtype)):
            differ.append(name)
    if differ or missing:
        what = f"{len(differ)} of {total} tensors differ (first: {(differ or missing)[0]})"
        if missing:
            what += f", {len(missing)} are not in the loaded model"
        raise BackboneMismatchError(
            f"the backbone in memory (loaded from {source}) is not the checkpoint the config names "
            f"({Path(expected_dir).resolve()}): {what}; load the backbone from the named checkpoint")


def save_trajectory_checkpoint(model: Any, out_dir: Union[str, Path], processor: Any = None) -> Path:
    """Write `model` (a TrajectoryModel) to `out_dir` atomically. `processor` (our Processor, a tokenizer, or a
    directory to copy the tokenizer and processor files from) defaults to the backbone's source directory."""
    out = Path(out_dir).resolve()
    with atomic_directory(out) as tmp:
        write_trajectory_files(model, tmp, processor)
    return out


def write_trajectory_files(model: Any, out_dir: Union[str, Path], processor: Any = None) -> None:
    """The checkpoint's files written into `out_dir`, a directory being built (a training run's checkpoint is
    published with its optimizer state as one step directory, cosmos_exp/train/checkpoint.py)."""
    from safetensors.torch import save_file

    processor = processor if processor is not None else model.backbone_source
    if processor is None:
        raise ValueError("save_trajectory_checkpoint: the model has no backbone source directory to copy the "
                         "tokenizer from; pass processor=")
    out = Path(out_dir)
    write_hf_files(model.backbone, processor, out)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items() if not k.startswith("backbone.")}
    (out / EXPERT_DIR).mkdir(exist_ok=True)
    save_file(state, str(out / EXPERT_DIR / "model.safetensors"))
    meta = {section: asdict(getattr(model, attr)) for section, (attr, _) in _SECTIONS.items()}
    backbone = {"sha256": weights_digest(out), "dtype": str(model.backbone.dtype).replace("torch.", ""),
                "trained_from": model.backbone_source}
    write_json_atomic(out / EXPERT_DIR / "config.json", {"format": FORMAT, **meta, "backbone": backbone})


def read_trajectory_meta(ckpt_dir: Union[str, Path]) -> Dict[str, Any]:
    path = Path(ckpt_dir) / EXPERT_DIR / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; {ckpt_dir} is not a trajectory checkpoint "
                                "(save one with save_trajectory_checkpoint)")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: format {meta.get('format')!r}, this code reads format {FORMAT}")
    for section, (_, cls) in _SECTIONS.items():
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(meta.get(section) or {}) - known)
        if section not in meta or unknown:
            raise ValueError(f"{path}: section {section!r} is missing or has unknown keys {unknown}")
    return meta


def load_trajectory_checkpoint(ckpt_dir: Union[str, Path], dtype: str = "auto", device: str = "cpu",
                               expected_backbone: Optional[Union[str, Path]] = None) -> Any:
    """The TrajectoryModel saved in `ckpt_dir`, its backbone checked against the identity recorded with the
    expert (and, when given, against `expected_backbone`, e.g. the checkpoint a config names)."""
    from safetensors.torch import load_file

    from cosmos_exp.models.trajectory_model import TrajectoryModel

    meta = read_trajectory_meta(ckpt_dir)
    cfgs = {section: cls(**meta[section]) for section, (_, cls) in _SECTIONS.items()}
    digest = weights_digest(ckpt_dir)
    if digest != meta["backbone"]["sha256"]:
        raise BackboneMismatchError(
            f"{Path(ckpt_dir).resolve()}: the backbone weights there are not the ones its action expert was saved "
            f"with (sha256 {digest[:12]}... vs recorded {meta['backbone']['sha256'][:12]}...); the directory was "
            "changed after saving")
    model = TrajectoryModel.from_backbone(ckpt_dir, cfgs["expert"], cfgs["prompt"], cfgs["action_space"],
                                          cfgs["flow_matching"], dtype=dtype, device=device)
    state = load_file(str(Path(ckpt_dir) / EXPERT_DIR / "model.safetensors"))
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("backbone.")]
    if missing or result.unexpected_keys:
        raise ValueError(f"{Path(ckpt_dir) / EXPERT_DIR}: expert weights do not fit the configured expert "
                         f"(missing {missing[:3]}, unexpected {result.unexpected_keys[:3]})")
    check_backbone(model, ckpt_dir)
    if expected_backbone is not None:
        check_backbone(model, expected_backbone)
    return model
