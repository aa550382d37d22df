"""What every generation engine (engine_hf, engine_vllm) shares; the caption stage picks one by generation.engine."""

import zlib
from dataclasses import dataclass
from typing import Sequence, Tuple


@dataclass
class Generated:
    text: str
    num_tokens: int
    # The generated token ids up to the stop token: what two ways of generating compare (a random-initialised
    # model of a real vocabulary writes ids that its small test tokenizer cannot show as text).
    token_ids: Tuple[int, ...] = ()


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def batch_seed(seed: int, item_ids: Sequence[str]) -> int:
    """Sampling seed of one batch: fixed by the run's seed and which items the batch holds."""
    return (seed * 1_000_003 + zlib.crc32(",".join(item_ids).encode("utf-8"))) % (2**31 - 1)
