"""Schema of the `generation` node: how caption / QA answers are generated."""

from dataclasses import dataclass, field
from typing import Dict, Optional


@dataclass
class GenerationConfig:
    engine: str = "transformers"  # transformers | vllm
    batch_size: int = 4  # videos per generate call, padded left
    max_new_tokens: int = 1024
    do_sample: bool = False  # greedy by default: reproducible
    temperature: float = 0.0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int = 0  # sampling: each batch is seeded from this and its item ids
    # Which split of the dataset to answer; None: the dataset's eval_split.
    split: Optional[str] = None
    # Regenerate items that already have an output.
    force: bool = False
    max_items: Optional[int] = None
    # auto: cuda when available, else cpu.
    device: str = "auto"
    # Write captions/ here instead of into the new run directory: point it at an earlier caption run to
    # resume it, or give every rank of an external launcher (torchrun, SLURM array) the same directory.
    output_dir: Optional[str] = None
    # Also write captions_raw/<id>.txt with the bare model text, the file layout of the cookbook's judge.
    cookbook_raw: bool = True
    # Frame size by model.family, for presets that answer at a family's own size (generation=cookbook sets
    # dataset.vision.max_pixels from it by interpolation).
    max_pixels_by_family: Dict[str, int] = field(default_factory=dict)
    # vLLM engine only.
    vllm_gpu_memory_utilization: float = 0.9
    vllm_max_model_len: Optional[int] = None
