"""Cheap checks of a checkpoint directory before anything heavy loads (no torch here).

The model family comes from the checkpoint's own config.json `model_type`, never from its path:
the cookbook routed every checkpoint not named `Qwen/Qwen3...` to the Qwen2.5-VL class.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from cosmos_exp.config import ConfigError

FAMILIES = ("qwen2_5_vl", "qwen3_vl")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")
PROCESSOR_FILES = ("preprocessor_config.json", "video_preprocessor_config.json", "processor_config.json")
WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")


@dataclass(frozen=True)
class CheckpointInfo:
    path: str  # absolute
    model_type: str
    processor_files: List[str]
    tokenizer_files: List[str]
    num_weight_files: int


def inspect_checkpoint(path: Optional[str], key: str = "model.path") -> CheckpointInfo:
    """Validate `path` as a loadable Qwen-VL checkpoint; raise ConfigError naming `key` otherwise."""
    if not path:
        raise ConfigError(key, "no checkpoint given", "pass model.path=<checkpoint or Hugging Face directory>")
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise ConfigError(key, f"checkpoint directory {root} does not exist", "check the path (relative paths "
                          "resolve from the directory cosmos-exp was started in)")
    config_file = root / "config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(key, f"{config_file} is missing", "a Hugging Face checkpoint directory holds config.json")
    except (OSError, ValueError) as exc:
        raise ConfigError(key, f"{config_file} is unreadable: {exc}", "re-save or re-copy the checkpoint")
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type not in FAMILIES:
        raise ConfigError(key, f"{config_file} has model_type {model_type!r}",
                          f"caption inference supports {', '.join(FAMILIES)}")

    tokenizer_files = [n for n in TOKENIZER_FILES if (root / n).is_file()]
    if not tokenizer_files:
        raise ConfigError(key, f"{root} has no tokenizer files (looked for {', '.join(TOKENIZER_FILES)})",
                          "copy the tokenizer files from the base model, or save checkpoints with their processor")
    processor_files = [n for n in PROCESSOR_FILES if (root / n).is_file()]
    if not any(n in processor_files for n in PROCESSOR_FILES[:2]):
        raise ConfigError(key, f"{root} has no processor files (looked for {', '.join(PROCESSOR_FILES[:2])})",
                          "copy preprocessor_config.json / video_preprocessor_config.json from the base model")
    num_weights = sum(len(list(root.glob(p))) for p in WEIGHT_PATTERNS)
    if num_weights == 0:
        raise ConfigError(key, f"{root} has no weight files (*.safetensors or *.bin)", "is the checkpoint complete?")
    return CheckpointInfo(str(root), model_type, processor_files, tokenizer_files, num_weights)
