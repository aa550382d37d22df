"""Conditional flow matching as Alpamayo-R1's action expert trains and samples it.

Path: x_t = t x + (1 - t) eps, from noise eps at t = 0 to data x at t = 1; the velocity along it is x - eps,
which a model v(x_t, t, *cond) learns by plain MSE. Training times t = t_max - t_max Beta(alpha, beta) (more
weight near the noisy end for Beta(1.5, 1)). Sampling: Euler steps from t = 0 to 1.

A velocity model is any callable (x_t, t, *cond) -> velocity shaped like x_t, t of shape (batch,). The sampler
draws K samples per condition laid out condition-major (c0 s0, c0 s1, ..., c1 s0, ...) and repeats every cond
tensor to match; a model whose condition is not a tensor (a KV cache) can close over it and pass no cond.
"""

from typing import Callable, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from cosmos_exp.config.trajectory import FlowMatchingConfig

Velocity = Callable[..., torch.Tensor]


def sample_t(n: int, cfg: FlowMatchingConfig, generator: Optional[torch.Generator] = None,
             device: Optional[torch.device] = None) -> torch.Tensor:
    """n training times. torch's Beta takes no generator, so it runs on a CPU RNG seeded from `generator`
    (reproducible, and the caller's global RNG is left untouched)."""
    seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator, device=_gen_device(generator)).item())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        b = torch.distributions.Beta(float(cfg.beta_alpha), float(cfg.beta_beta)).sample((n,))
    return (cfg.t_max - cfg.t_max * b).to(device)


def interpolate(x: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    t = t.reshape(-1, *([1] * (x.dim() - 1))).to(x.dtype)
    return t * x + (1 - t) * eps


def loss(velocity: Velocity, x: torch.Tensor, cfg: FlowMatchingConfig, cond: Sequence[torch.Tensor] = (),
         generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """MSE between the model's velocity at a random point of the path and x - eps, for a batch x (B, ...)."""
    eps = _randn(x.shape, generator, x)
    t = sample_t(x.shape[0], cfg, generator, x.device)
    return F.mse_loss(velocity(interpolate(x, eps, t), t, *cond), x - eps)


@torch.no_grad()
def sample(velocity: Velocity, batch: int, event_shape: Tuple[int, ...], cfg: FlowMatchingConfig,
           cond: Sequence[torch.Tensor] = (), generator: Optional[torch.Generator] = None,
           steps: Optional[int] = None, n_samples: Optional[int] = None, device: Optional[torch.device] = None,
           dtype: torch.dtype = torch.float32, noise: Optional[torch.Tensor] = None) -> torch.Tensor:
    """(batch, K, *event_shape) samples: cfg.euler_steps Euler steps from noise (overridable), K = cfg.n_samples.
    `noise` (batch, K, *event_shape) is the starting point instead of a draw from `generator` (an evaluation
    seeds each scene's noise on its own, so a sample does not depend on the batch it was drawn in)."""
    steps = int(cfg.euler_steps if steps is None else steps)
    k = int(cfg.n_samples if n_samples is None else n_samples)
    if steps < 1 or k < 1:
        raise ValueError(f"flow matching sample: steps and n_samples must be >= 1 (got {steps}, {k})")
    like = torch.empty(0, dtype=dtype, device=device)
    if noise is None:
        x = _randn((batch * k, *event_shape), generator, like)
    elif tuple(noise.shape) != (batch, k, *event_shape):
        raise ValueError(f"flow matching sample: noise of shape {tuple(noise.shape)}, expected {(batch, k, *event_shape)}")
    else:
        x = noise.to(like).reshape(batch * k, *event_shape)
    cond = [c.repeat_interleave(k, dim=0) for c in cond]
    for i in range(steps):
        t = torch.full((batch * k,), i / steps, dtype=dtype, device=x.device)
        x = x + velocity(x, t, *cond) / steps
    return x.reshape(batch, k, *event_shape)


def _gen_device(generator: Optional[torch.Generator]):
    return generator.device if generator is not None else None


def _randn(shape, generator: Optional[torch.Generator], like: torch.Tensor) -> torch.Tensor:
    """Normal noise drawn on the generator's device (a CPU generator can drive a GPU run), moved to `like`'s."""
    device = _gen_device(generator) or like.device
    return torch.randn(shape, generator=generator, device=device, dtype=like.dtype).to(like.device)
