"""Load and save Hugging Face checkpoints of the Qwen-VL families.

The family is read from the checkpoint's own config.json (`model_type`), never guessed from the
directory name: a Cosmos-Reason2 checkpoint under any name loads as Qwen3-VL.
"""

import json
import shutil
from pathlib import Path
from typing import Any, Dict, Union

from cosmos_exp.repro.atomic import atomic_directory

# model_type in config.json -> (family, transformers class name)
MODEL_CLASSES: Dict[str, str] = {
    "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
    "qwen3_vl": "Qwen3VLForConditionalGeneration",
}

# Files a checkpoint needs besides the weights, copied from the source model directory.
PROCESSOR_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "preprocessor_config.json",
    "video_preprocessor_config.json",
    "processor_config.json",
)


def detect_family(model_dir: Union[str, Path]) -> str:
    """Return "qwen2_5_vl" or "qwen3_vl" from `<model_dir>/config.json`."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no config.json; is {model_dir} a Hugging Face model directory?")
    try:
        model_type = json.loads(path.read_text()).get("model_type")
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    if model_type not in MODEL_CLASSES:
        raise ValueError(
            f"{path}: model_type {model_type!r} is not supported; expected one of {sorted(MODEL_CLASSES)}"
        )
    return model_type


def resolve_dtype(dtype: str, device: str = "cpu"):
    """'auto' is bf16 on CUDA and fp32 on CPU (CPU bf16 is slow and breaks exact resume tests)."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if dtype not in table:
        raise ValueError(f"unknown dtype {dtype!r}; expected auto or one of {sorted(table)}")
    return table[dtype]


def load_model(model_dir: Union[str, Path], dtype: str = "auto", device: str = "cpu",
               attn_implementation: str = "sdpa") -> Any:
    """Load the HF model of `model_dir`, choosing the class by its config.json model_type."""
    import transformers

    family = detect_family(model_dir)
    cls = getattr(transformers, MODEL_CLASSES[family])
    model = cls.from_pretrained(
        str(model_dir), dtype=resolve_dtype(dtype, device), attn_implementation=attn_implementation
    )
    return model.to(device)


def copy_processor_files(src_dir: Union[str, Path], dst_dir: Union[str, Path]) -> None:
    """Copy tokenizer / processor / chat template files that exist in `src_dir`."""
    for name in PROCESSOR_FILES:
        src = Path(src_dir) / name
        if src.is_file():
            shutil.copyfile(src, Path(dst_dir) / name)


def write_hf_files(model: Any, processor: Any, out_dir: Union[str, Path], state_dict: Any = None) -> None:
    """Write weights + config (+ generation config) and the processor files into `out_dir`.

    `processor` is our data Processor (anything with save_pretrained), a tokenizer, or a path of a
    model directory whose processor files are copied. `state_dict` overrides the model's own (for
    ZeRO-3, where the full weights are gathered separately).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, state_dict=state_dict, safe_serialization=True)
    if isinstance(processor, (str, Path)):
        copy_processor_files(processor, out)
    elif processor is not None:
        processor.save_pretrained(out)


def save_checkpoint(model: Any, processor: Any, out_dir: Union[str, Path]) -> Path:
    """Save a loadable HF checkpoint atomically: it is built in a sibling temp dir and renamed."""
    out = Path(out_dir).resolve()
    with atomic_directory(out) as tmp:
        write_hf_files(model, processor, tmp)
    return out
