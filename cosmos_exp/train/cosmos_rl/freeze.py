"""train.freeze in cosmos-rl's parameter names.

Our patterns are fnmatch patterns over the names our loop's model has (transformers' module names, e.g.
`model.visual.blocks.0.attn.qkv.weight`). cosmos-rl `re.search`es its freeze_pattern against its own model's
names and lets a pattern that matches nothing pass silently (policy/model/base.py, apply_freeze_pattern), and
its names differ by family:

- Qwen2.5-VL runs as cosmos-rl's own model (policy/model/qwen2_5_vl): `visual.*` for the vision tower, and
  `model.embed_tokens`, `model.layers.N.*`, `model.norm`, `model.lm_head` for the language model.
- Qwen3-VL runs as the transformers model itself (policy/model/hf_models: HFModel.named_parameters is the
  wrapped model's), so its names are ours.

Each pattern is rewritten by the family's prefixes and then checked on the checkpoint's own parameter names
(read from its safetensors headers, no torch): it must freeze exactly the parameters it freezes on our loop.
A pattern that matches nothing, or whose meaning the rewrite cannot keep, stops the run naming it.
"""

import fnmatch
import json
import re
import struct
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from cosmos_exp.config import ConfigError

# (our prefix, cosmos-rl's) per family, longest first; a family absent here keeps our names.
PREFIXES: Dict[str, Tuple[Tuple[str, str], ...]] = {
    "qwen2_5_vl": (("model.language_model.", "model."), ("model.visual.", "visual."), ("lm_head.", "model.lm_head.")),
    "qwen3_vl": (),
}
# Qwen2.5-VL checkpoints keep the original key layout (visual.*, model.layers.*); transformers names the
# modules model.visual.* and model.language_model.*.
_CHECKPOINT_TO_OURS = {"qwen2_5_vl": (("visual.", "model.visual."), ("model.", "model.language_model."))}


def checkpoint_keys(model_dir: Path) -> List[str]:
    """The parameter names stored in a Hugging Face checkpoint (its index, else its safetensors headers)."""
    model_dir = Path(model_dir)
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        return sorted(json.loads(index.read_text())["weight_map"])
    keys: List[str] = []
    for shard in sorted(model_dir.glob("*.safetensors")):
        with open(shard, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            keys += [k for k in json.loads(f.read(size)) if k != "__metadata__"]
    return sorted(keys)


def our_names(family: str, keys: Sequence[str]) -> List[str]:
    """Checkpoint keys as our loop's model names them."""
    out = []
    for key in keys:
        if not key.startswith(("model.visual.", "model.language_model.", "lm_head.")):
            for old, new in _CHECKPOINT_TO_OURS.get(family, ()):
                if key.startswith(old):
                    key = new + key[len(old):]
                    break
        out.append(key)
    return out


def cosmos_rl_name(family: str, name: str) -> str:
    """One of our parameter names as cosmos-rl's model of that family names it."""
    for ours, theirs in PREFIXES[family]:
        if name.startswith(ours):
            return theirs + name[len(ours):]
    return name


def _rewrite(family: str, pattern: str) -> str:
    for ours, theirs in PREFIXES[family]:
        if pattern.startswith(ours):
            return theirs + pattern[len(ours):]
    return pattern


def translate(family: str, patterns: Sequence[str], names: Sequence[str]) -> List[str]:
    """cosmos-rl freeze_pattern regexes for our fnmatch `patterns`, checked on our parameter `names`: each one
    freezes in cosmos-rl exactly what it freezes on our loop. ConfigError naming train.freeze otherwise."""
    if family not in PREFIXES:
        raise ConfigError("train.freeze", f"freeze patterns are not translated to cosmos-rl's parameter names for "
                          f"model family {family}", "use backend=deepspeed, or train.freeze=[]")
    theirs = [cosmos_rl_name(family, n) for n in names]
    out, frozen = [], set()
    for pattern in patterns:
        hits = fnmatch.filter(names, pattern)
        if not hits:
            raise ConfigError("train.freeze", f"pattern {pattern!r} matches no parameter of the model (names "
                              f"look like: {', '.join(names[:3])}, ...)", "fix the pattern (fnmatch, whole name)")
        regex = "^" + fnmatch.translate(_rewrite(family, pattern))
        wanted = {cosmos_rl_name(family, n) for n in hits}
        got = {n for n in theirs if re.search(regex, n)}
        if got != wanted:
            missed, extra = sorted(wanted - got), sorted(got - wanted)
            why = f"it would miss {missed[0]}" if missed else f"it would also freeze {extra[0]}"
            raise ConfigError("train.freeze", f"pattern {pattern!r} cannot be said in cosmos-rl's parameter names "
                              f"for {family} ({why})",
                              "start it with one of " + ", ".join(o for o, _ in PREFIXES[family]) + " or split it")
        out.append(regex)
        frozen |= wanted
    if len(frozen) == len(set(theirs)):
        raise ConfigError("train.freeze", "the patterns freeze every parameter; nothing would train")
    return out


def freeze_patterns(family: str, patterns: Sequence[str], model_dir: Path) -> List[str]:
    """translate() against the checkpoint in `model_dir`."""
    keys = checkpoint_keys(model_dir)
    if not keys:
        raise ConfigError("model.path", f"no safetensors weights in {model_dir} to check train.freeze against",
                          "point model.path at a Hugging Face checkpoint directory")
    return translate(family, patterns, our_names(family, keys))
