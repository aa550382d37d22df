"""Flow matching: the time distribution, the path and target conventions, and a small MLP that learns a
conditional 2-D mixture with the loss and the Euler sampler (an untrained one does not)."""

import numpy as np
import pytest
import torch

from cosmos_exp.config.trajectory import FlowMatchingConfig
from cosmos_exp.trajectory import flow_matching as fm

CFG = FlowMatchingConfig()


def test_training_times_follow_t_max_minus_t_max_beta_and_are_reproducible():
    state = torch.get_rng_state()
    t = fm.sample_t(40_000, CFG, torch.Generator().manual_seed(0)).double().numpy()
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is untouched
    assert t.min() >= 0 and t.max() <= CFG.t_max
    # P(t <= s) = P(Beta(1.5, 1) >= 1 - s / t_max) = 1 - (1 - s / t_max) ** 1.5: weight near the noisy end.
    for s in (0.1, 0.3, 0.5, 0.8):
        assert np.mean(t <= s) == pytest.approx(1 - (1 - s / CFG.t_max) ** 1.5, abs=0.01)
    assert torch.equal(fm.sample_t(5, CFG, torch.Generator().manual_seed(4)),
                       fm.sample_t(5, CFG, torch.Generator().manual_seed(4)))


def test_oracle_velocity_has_zero_loss_and_euler_lands_on_the_point():
    """For data that is one point c the exact velocity is (c - x_t) / (1 - t): it scores 0 against the target
    x - eps on the path t x + (1 - t) eps, and Euler from t = 0 reaches c at t = 1 in any number of steps."""
    c = torch.tensor([[1.5, -0.5]])

    def oracle(x_t, t):
        return (c - x_t) / (1 - t[:, None])

    x = c.expand(64, 2)
    assert fm.loss(oracle, x, CFG, generator=torch.Generator().manual_seed(0)).item() < 1e-10
    for steps in (1, 3, 10):
        out = fm.sample(oracle, 1, (2,), CFG, generator=torch.Generator().manual_seed(1), steps=steps, n_samples=4)
        assert out.shape == (1, 4, 2) and torch.allclose(out, c.expand(1, 4, 2), atol=1e-5)
    # A wrong sign or direction of time would not: the plain identity drift leaves the noise where it is.
    out = fm.sample(lambda x_t, t: torch.zeros_like(x_t), 1, (2,), CFG, generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(out, c.expand(1, CFG.n_samples, 2), atol=0.5)


class _MLP(torch.nn.Module):
    def __init__(self, hidden: int = 64):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.SiLU(), torch.nn.Linear(hidden, hidden),
                                       torch.nn.SiLU(), torch.nn.Linear(hidden, 2))

    def forward(self, x_t, t, cond):
        return self.net(torch.cat([x_t, t[:, None], cond[:, None]], -1))


def _toy(n: int, g: torch.Generator):
    """cond 0: two modes at (±2, 0), std 0.3, equal weights; cond 1: one Gaussian at (0, 2), std 0.5."""
    cond = (torch.rand(n, generator=g) < 0.5).float()
    side = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    two = torch.stack([2 * side, torch.zeros(n)], -1) + 0.3 * torch.randn(n, 2, generator=g)
    one = torch.tensor([0.0, 2.0]) + 0.5 * torch.randn(n, 2, generator=g)
    return torch.where(cond[:, None] > 0, one, two), cond


def _check(samples: torch.Tensor) -> dict:
    two, one = samples[0], samples[1]
    near_mode = ((two - torch.tensor([2.0, 0.0])).norm(dim=-1) < 1) | ((two + torch.tensor([2.0, 0.0])).norm(dim=-1) < 1)
    return {"right_share": (two[:, 0] > 0).float().mean().item(), "near_mode": near_mode.float().mean().item(),
            "mean_abs_x": two[:, 0].abs().mean().item(), "one_mean": one.mean(0), "one_cov": torch.cov(one.T)}


def _target_met(s: dict) -> bool:
    return (0.4 < s["right_share"] < 0.6 and s["near_mode"] > 0.9 and abs(s["mean_abs_x"] - 2) < 0.2
            and (s["one_mean"] - torch.tensor([0.0, 2.0])).norm() < 0.2
            and bool(torch.all((torch.diagonal(s["one_cov"]) > 0.12) & (torch.diagonal(s["one_cov"]) < 0.4)))
            and abs(s["one_cov"][0, 1].item()) < 0.08)


def test_loss_and_sampler_learn_a_conditional_two_d_mixture():
    torch.manual_seed(0)
    model = _MLP()
    g = torch.Generator().manual_seed(1)
    cond = torch.tensor([0.0, 1.0])

    def draw(steps=None):
        return fm.sample(model, 2, (2,), CFG, (cond,), torch.Generator().manual_seed(3), steps=steps, n_samples=2000)

    before = _check(draw())
    assert not _target_met(before), before
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(1500):
        x, c = _toy(256, g)
        loss = fm.loss(model, x, CFG, (c,), g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-100:]) < 0.6 * np.mean(losses[:20])
    samples = draw()  # the reference's 10 Euler steps
    assert _target_met(_check(samples)), _check(samples)
    assert _target_met(_check(draw(steps=50)))
    # Seeded: the same generator gives the same samples; K samples per condition differ from each other.
    assert torch.equal(samples, draw())
    assert samples.shape == (2, 2000, 2) and samples[0, 0].ne(samples[0, 1]).any()


def test_sampler_repeats_conditions_condition_major_and_rejects_zero_steps():
    seen = []

    def velocity(x_t, t, cond):
        seen.append(cond.clone())
        return torch.zeros_like(x_t)

    fm.sample(velocity, 3, (2,), CFG, (torch.tensor([10.0, 20.0, 30.0]),), steps=2, n_samples=2)
    assert seen[0].tolist() == [10.0, 10.0, 20.0, 20.0, 30.0, 30.0] and len(seen) == 2
    with pytest.raises(ValueError, match="must be >= 1"):
        fm.sample(velocity, 1, (2,), CFG, steps=0)
