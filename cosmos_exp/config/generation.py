"""Schema of the `generation` node: how caption / QA answers are generated."""

from dataclasses import dataclass
from typing import Optional


@dataclass
class GenerationConfig:
    engine: str = "transformers"  # transformers | vllm
    batch_size: int = 4
    max_new_tokens: int = 1024
    do_sample: bool = False  # greedy by default: reproducible
    temperature: float = 0.0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int = 0
    # Which split of the dataset to answer.
    split: str = "eval"
    # Regenerate items that already have an output.
    force: bool = False
    max_items: Optional[int] = None
