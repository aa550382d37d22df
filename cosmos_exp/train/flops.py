"""Model FLOPs of a Qwen3-VL (Cosmos-Reason2) sample, and model FLOPs utilisation (MFU).

What is counted is every matrix product, at 2 FLOPs per multiply-add; norms, activations, rope, softmax,
embedding look-ups, bias adds and the loss are elementwise and left out (well under 1% of a real-size model).
Training is 3 x the forward pass: each forward product has two in the backward pass, the gradient with
respect to its input and to its weight (the same convention as 6 x parameters x tokens). These are *model*
FLOPs: the forward pass that gradient checkpointing recomputes is not counted, so MFU does not change with
that setting (the hardware does 4/3 of this work with it on).

Language model, per sample of T tokens (L layers of width d; H query heads and K key/value heads of size e;
MLP width I; vocabulary V):
    projections   2 T (d He + 2 d Ke + He d + 3 d I) per layer, plus 2 T d V for the logits (every position)
    attention     QK^T and AV: 2 x 2 He FLOPs per (query, key) pair per layer. Causal attention has
                  T (T + 1) / 2 pairs (each token sees itself and the tokens before it): half of the T^2
                  that non-causal counts (PaLM's 12 L He T per token, once tripled for training) take, and
                  what a causal flash kernel computes.
Vision tower, per image or video of t x h x w patches (P = t h w) with width D, MLP width Iv, patch p,
temporal patch tp, C channels, merge m (m^2 patches -> one language token of width D'):
    patch embedding   2 P (C tp p^2) D
    each block        2 P (3 D^2 + D^2 + 2 D Iv), and attention 4 D (h w)^2 t: full (non-causal), within each
                      temporal slice of h x w patches (transformers' cu_seqlens for Qwen3-VL)
    merger, and each deepstack merger   2 (P / m^2) ((m^2 D)^2 + m^2 D D')
Only Qwen3-VL's layout is written here (the GPU check's Cosmos-Reason2 shape); Qwen2.5-VL's windowed vision
attention is not.
"""

from dataclasses import dataclass, fields
from typing import Any, Optional, Sequence, Tuple

# Dense bf16 peak of the tensor cores in TFLOP/s (vendor datasheets), by a substring of
# torch.cuda.get_device_name(); the first match wins, so the PCIe parts come before their SXM names.
PEAK_BF16_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),  # SXM
    ("H200", 989.0),
    ("A100", 312.0),
)


@dataclass(frozen=True)
class TextShape:
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int


@dataclass(frozen=True)
class VisionShape:
    depth: int
    hidden: int
    intermediate: int
    in_channels: int
    patch: int
    temporal_patch: int
    merge: int
    out_hidden: int
    deepstack: int  # how many deepstack mergers (each a merger's size)


@dataclass(frozen=True)
class Flops:
    """FLOPs split by where they are spent (integers: exact counts)."""

    text_matmul: int = 0
    text_attention: int = 0
    vision_matmul: int = 0
    vision_attention: int = 0

    @property
    def total(self) -> int:
        return self.text_matmul + self.text_attention + self.vision_matmul + self.vision_attention

    def __add__(self, other: "Flops") -> "Flops":
        return Flops(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def __mul__(self, k: int) -> "Flops":
        return Flops(*(getattr(self, f.name) * k for f in fields(self)))

    def as_dict(self) -> dict:
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "total": self.total}


def attention_pairs(length: int, causal: bool) -> int:
    """(query, key) pairs one head scores over a sequence of `length`."""
    return length * (length + 1) // 2 if causal else length * length


def text_forward(shape: TextShape, tokens: int, causal: bool = True) -> Flops:
    """The language model's forward pass over one sample of `tokens` (padding excluded)."""
    d, q, kv = shape.hidden, shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    per_token_layer = d * q + 2 * d * kv + q * d + 3 * d * shape.intermediate
    matmul = 2 * tokens * (shape.layers * per_token_layer + d * shape.vocab)
    attention = shape.layers * 4 * q * attention_pairs(tokens, causal)
    return Flops(text_matmul=matmul, text_attention=attention)


def vision_forward(shape: VisionShape, grids: Sequence[Tuple[int, int, int]]) -> Flops:
    """The vision tower's forward pass over a sample's images / videos, each (t, h, w) in patches."""
    D, unit = shape.hidden, shape.merge * shape.merge
    patch_in = shape.in_channels * shape.temporal_patch * shape.patch * shape.patch
    per_patch = patch_in * D + shape.depth * (4 * D * D + 2 * D * shape.intermediate)
    per_merged = (1 + shape.deepstack) * ((unit * D) ** 2 + unit * D * shape.out_hidden)
    matmul = attention = 0
    for t, h, w in grids:
        patches = t * h * w
        if patches % unit:
            raise ValueError(f"vision grid {(t, h, w)}: h x w must be a multiple of merge^2 = {unit}")
        matmul += 2 * patches * per_patch + 2 * (patches // unit) * per_merged
        attention += shape.depth * 4 * D * attention_pairs(h * w, causal=False) * t
    return Flops(vision_matmul=matmul, vision_attention=attention)


def qwen3_vl_shapes(config: Any) -> Tuple[TextShape, VisionShape]:
    """The shapes of a transformers Qwen3VLConfig (or anything with its text_config / vision_config fields)."""
    model_type = getattr(config, "model_type", None)
    if model_type != "qwen3_vl":
        raise ValueError(f"FLOPs are written for Qwen3-VL (Cosmos-Reason2); got model_type {model_type!r}")
    t, v = config.text_config, config.vision_config
    head_dim = getattr(t, "head_dim", None) or t.hidden_size // t.num_attention_heads
    text = TextShape(t.num_hidden_layers, t.hidden_size, t.num_attention_heads, t.num_key_value_heads, head_dim,
                     t.intermediate_size, t.vocab_size)
    vision = VisionShape(v.depth, v.hidden_size, v.intermediate_size, getattr(v, "in_channels", 3), v.patch_size,
                         v.temporal_patch_size, v.spatial_merge_size, v.out_hidden_size,
                         len(getattr(v, "deepstack_visual_indexes", None) or []))
    return text, vision


def sample_forward(config: Any, tokens: int, grids: Sequence[Tuple[int, int, int]], causal: bool = True) -> Flops:
    """Forward FLOPs of one sample: `tokens` language tokens (vision tokens included) and its vision grids."""
    text, vision = qwen3_vl_shapes(config)
    return text_forward(text, tokens, causal) + vision_forward(vision, grids)


def training(forward: Flops) -> Flops:
    """Model FLOPs of a training step over what `forward` counts: forward + backward = 3 x forward."""
    return forward * 3


def peak_bf16_tflops(device_name: str) -> Optional[float]:
    """The chip's dense bf16 peak (TFLOP/s) from its name, or None for a chip not in the table."""
    for key, tflops in PEAK_BF16_TFLOPS:
        if key.lower() in device_name.lower():
            return tflops
    return None


def mfu(flops_per_second: float, peak_tflops: float) -> float:
    """Model FLOPs utilisation: achieved model FLOP/s over the chip's peak."""
    return flops_per_second / (peak_tflops * 1e12)
