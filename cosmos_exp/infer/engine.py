"""What every generation engine shares, and the one place that picks an engine by name (generation.engine)."""

import zlib
from dataclasses import dataclass
from typing import Any, Optional, Sequence


@dataclass
class Generated:
    text: str
    num_tokens: int


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def batch_seed(seed: int, item_ids: Sequence[str]) -> int:
    """Sampling seed of one batch: fixed by the run's seed and which items the batch holds."""
    return (seed * 1_000_003 + zlib.crc32(",".join(item_ids).encode("utf-8"))) % (2**31 - 1)


def make_engine(name: str, model_dir: str, generation: Any, vision: Any, dtype: str = "auto",
                attn_implementation: str = "sdpa", model_max_length: Optional[int] = None) -> Any:
    """The engine for generation.engine=`name`; each is imported only when chosen (vllm needs CUDA)."""
    if name == "vllm":
        from cosmos_exp.infer.engine_vllm import VLLMEngine

        return VLLMEngine(model_dir, generation, vision, dtype=dtype, model_max_length=model_max_length)
    from cosmos_exp.infer.engine_hf import HFEngine

    return HFEngine(model_dir, generation, vision, dtype=dtype, attn_implementation=attn_implementation,
                    model_max_length=model_max_length)
