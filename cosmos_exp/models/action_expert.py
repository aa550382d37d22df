"""The action expert: a narrower copy of the backbone's text transformer that denoises actions while attending,
layer by layer, to the backbone's KV cache (Alpamayo-R1's design; /work/shared/reference/alpamayo.md).

Built from the backbone's Qwen3-VL text config with only the residual width and MLP width changed (and no token
embeddings), so it has the backbone's layer count, attention heads, KV heads, head_dim, rope (interleaved mrope
sections) and norm eps. Because heads, KV heads and head_dim are the backbone's, layer i's cached keys and
values (after the backbone's k_norm and rope) are attended as they are, with no projection: upstream builds the
expert the same way (a transformers text model from a copy of the text config, its own hidden/intermediate
size) and feeds it the backbone's cache.

Per layer, the action tokens' queries attend to [backbone keys of layer i ; their own keys]: every real prefix
token (padding masked) and every action token, in both directions (no causal mask among actions). Their rope
positions continue the backbone's: action token j sits at the prefix's next position + j in all three mrope
sections (a text continuation, as Qwen3-VL places text after vision). The backbone never sees the action
tokens: its cache is read, not extended.

Input: per waypoint, Fourier features of (acceleration, curvature) and of the flow time t -> an MLP (SiLU,
RMSNorm) -> LayerNorm; output: Linear(hidden -> 2) on the final-normed hidden states.
"""

import copy
import math
from dataclasses import dataclass
from typing import Any, List

import torch
import torch.nn.functional as F
from torch import nn

from cosmos_exp.config.trajectory import ExpertConfig


@dataclass
class Prefix:
    """The backbone's KV cache over a batch of prefixes, and where the expert's tokens go after it."""

    keys: List[torch.Tensor]  # per layer (B, kv_heads, P, head_dim), after the backbone's k_norm and rope
    values: List[torch.Tensor]
    mask: torch.Tensor  # (B, P) bool, True on real tokens (right padding is False)
    next_position: torch.Tensor  # (B,) rope position of the first action token: prefix maximum + 1

    def detach(self) -> "Prefix":
        return Prefix([k.detach() for k in self.keys], [v.detach() for v in self.values], self.mask,
                      self.next_position)

    def repeat(self, k: int) -> "Prefix":
        """Each prefix k times in a row (condition-major, the flow sampler's layout)."""
        rep = lambda x: x.repeat_interleave(k, dim=0)  # noqa: E731
        return Prefix([rep(x) for x in self.keys], [rep(x) for x in self.values], rep(self.mask),
                      rep(self.next_position))


def expert_text_config(text_config: Any, cfg: ExpertConfig) -> Any:
    """The backbone's text config with the expert's widths (None keeps the backbone's)."""
    config = copy.deepcopy(text_config)
    # Qwen3-VL configs name head_dim; kept explicit so a narrower expert keeps the backbone's
    config.head_dim = getattr(text_config, "head_dim", None) or (
        text_config.hidden_size // text_config.num_attention_heads)
    if cfg.hidden_size is not None:
        config.hidden_size = int(cfg.hidden_size)
    if cfg.intermediate_size is not None:
        config.intermediate_size = int(cfg.intermediate_size)
    config._attn_implementation = "sdpa"
    return config


class FourierFeatures(nn.Module):
    """sqrt(2) (sin, cos)(2 pi f x) at n/2 frequencies log-spaced over [1, max_freq]: n features per scalar."""

    def __init__(self, n: int, max_freq: float) -> None:
        super().__init__()
        if n < 2 or n % 2:
            raise ValueError(f"expert fourier_features must be an even number >= 2, got {n}")
        self.register_buffer("freqs", torch.logspace(0.0, math.log10(max_freq), n // 2), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        arg = x.float()[..., None] * self.freqs * (2 * math.pi)
        return torch.cat([torch.sin(arg), torch.cos(arg)], dim=-1) * math.sqrt(2.0)


class ActionInProjection(nn.Module):
    """(B, T, C) actions and (B,) flow times -> (B, T, out_dim) token embeddings, one token per waypoint."""

    def __init__(self, action_dim: int, out_dim: int, cfg: ExpertConfig) -> None:
        super().__init__()
        if cfg.in_proj_layers < 1:
            raise ValueError(f"expert in_proj_layers must be >= 1, got {cfg.in_proj_layers}")
        self.fourier = FourierFeatures(cfg.fourier_features, cfg.fourier_max_freq)
        width = cfg.in_proj_hidden
        layers: List[nn.Module] = [nn.Linear((action_dim + 1) * cfg.fourier_features, width), nn.SiLU()]
        for _ in range(cfg.in_proj_layers - 1):
            layers += [nn.RMSNorm(width, eps=1e-5), nn.Linear(width, width), nn.SiLU()]
        layers += [nn.RMSNorm(width, eps=1e-5), nn.Linear(width, out_dim)]
        self.mlp = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        feats = self.fourier(x).flatten(-2)  # channel-major: all of channel 0's features, then channel 1's
        t_feats = self.fourier(t)[:, None, :].expand(-1, x.shape[1], -1)
        h = torch.cat([feats, t_feats], dim=-1).to(self.mlp[0].weight.dtype)
        return self.norm(self.mlp(h))


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rope on (B, heads, T, d) with cos/sin (B, T, d) laid out as Qwen3-VL's (halves, not pairs)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos[:, None] + rotated * sin[:, None]


class ActionExpert(nn.Module):
    def __init__(self, backbone_text_config: Any, cfg: ExpertConfig, action_dim: int = 2) -> None:
        super().__init__()
        from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLTextModel

        config = expert_text_config(backbone_text_config, cfg)
        self.config = config
        # transformers' own layers, norm and rotary embedding (and its weight init); only the forward is ours,
        # because the attention reads a foreign cache without extending it and has no causal mask
        self.model = Qwen3VLTextModel(config)
        del self.model.embed_tokens  # actions come in through in_proj
        self.in_proj = ActionInProjection(action_dim, config.hidden_size, cfg)
        self.out_proj = nn.Linear(config.hidden_size, action_dim)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, prefix: Prefix) -> torch.Tensor:
        """Velocity (B, T, action_dim), float32, for noisy actions x_t (B, T, action_dim) at flow times t (B,)."""
        return self.out_proj(self.hidden_states(self.in_proj(x_t, t), prefix)).float()

    def hidden_states(self, h: torch.Tensor, prefix: Prefix) -> torch.Tensor:
        """Final-normed hidden states (B, T, hidden) of input embeddings h (B, T, hidden) after the prefix."""
        b, n, _ = h.shape
        if len(prefix.keys) != len(self.model.layers):
            raise ValueError(f"the prefix has {len(prefix.keys)} layers of KV cache, the expert "
                             f"{len(self.model.layers)}: build the expert from this backbone's text config")
        positions = prefix.next_position[:, None] + torch.arange(n, device=h.device)
        cos, sin = self.model.rotary_emb(h, positions[None].expand(3, -1, -1))
        own = torch.ones(b, n, dtype=torch.bool, device=h.device)
        mask = torch.cat([prefix.mask.to(h.device), own], dim=1)[:, None, None, :]  # (B, 1, 1, P + T)
        for layer, past_k, past_v in zip(self.model.layers, prefix.keys, prefix.values):
            attn = layer.self_attn
            x = layer.input_layernorm(h)
            shape = (b, n, -1, attn.head_dim)
            q = attn.q_norm(attn.q_proj(x).view(shape)).transpose(1, 2)
            k = attn.k_norm(attn.k_proj(x).view(shape)).transpose(1, 2)
            v = attn.v_proj(x).view(shape).transpose(1, 2)
            q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
            k = torch.cat([past_k.to(k.dtype), k], dim=2)
            v = torch.cat([past_v.to(v.dtype), v], dim=2)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=attn.scaling, enable_gqa=True)
            h = h + attn.o_proj(out.transpose(1, 2).reshape(b, n, -1))
            h = h + layer.mlp(layer.post_attention_layernorm(h))
        return self.model.norm(h)
