"""Schema of the `model` group: which checkpoint, which family, how to load it."""

from dataclasses import dataclass
from typing import Optional

from omegaconf import MISSING


@dataclass
class TinyModelConfig:
    """Shape of a random-initialised test model of a real architecture (built by stage=prepare)."""

    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 128
    vision_depth: int = 2
    vision_hidden_size: int = 32
    vision_num_heads: int = 2
    vocab_size: int = 512  # size of the locally trained byte-level BPE, special tokens included
    seed: int = 0


@dataclass
class ModelConfig:
    name: str = MISSING
    # qwen2_5_vl (Cosmos-Reason1) or qwen3_vl (Cosmos-Reason2). At load time the checkpoint's own
    # config.json decides; this declared value is checked against it.
    family: str = MISSING
    # A local Hugging Face directory (or a checkpoints/step_N of one of our runs).
    path: Optional[str] = None
    # The public name of the weights, for the record only: nothing is downloaded at run time.
    hub_id: Optional[str] = None
    # auto: bf16 on GPU, fp32 on CPU.
    dtype: str = "auto"
    attn_implementation: str = "sdpa"
    # Text + vision tokens of one sample; cosmos-rl truncates input_ids here while keeping pixels.
    model_max_length: int = 4096
    # Set for test models that stage=prepare builds at `path` from scratch.
    tiny: Optional[TinyModelConfig] = None
