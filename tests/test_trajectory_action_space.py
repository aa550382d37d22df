"""The unicycle action space: closed-form arcs, the initial-speed estimate, the least-squares fit round trip,
normalisation and the stage-1 bins."""

import dataclasses
import math

import pytest
import torch

from cosmos_exp.config.trajectory import ActionSpaceConfig
from cosmos_exp.trajectory.action_space import (LEFT, RIGHT, STRAIGHT, chord_headings, clip_actions, denormalise,
                                                estimate_v0, final_yaw, fit_actions, from_bins, integrate,
                                                manoeuvre_of, normalise, to_bins)

CFG = ActionSpaceConfig()
DT, T = CFG.dt, CFG.n_steps
F64 = torch.float64


def _actions(accel, kappa, n=T):
    return torch.stack([torch.full((n,), float(accel), dtype=F64), torch.full((n,), float(kappa), dtype=F64)], -1)


def _times(n=T):
    return torch.arange(1, n + 1, dtype=F64) * DT


def test_constant_speed_and_curvature_runs_on_a_circle_of_radius_one_over_k():
    v, k = 10.0, 0.05
    roll = integrate(_actions(0.0, k), v, DT)
    # yaw is curvature times distance, exactly.
    assert torch.allclose(roll.yaw, k * v * _times(), atol=1e-12)
    assert torch.allclose(roll.speed, torch.full((T,), v, dtype=F64))
    # The trapezoid rule makes the waypoints the vertices of a regular polygon inscribed in a circle through the
    # origin, tangent to x there: chord dt v cos(dθ/2) per turn dθ = k v dt, radius chord / (2 sin(dθ/2)).
    dtheta = k * v * DT
    radius = DT * v * math.cos(dtheta / 2) / (2 * math.sin(dtheta / 2))
    centre = torch.tensor([0.0, radius], dtype=F64)
    assert torch.allclose((roll.xy - centre).norm(dim=-1), torch.full((T,), radius, dtype=F64), atol=1e-9)
    # ... whose radius is 1/k up to the rule's O(dθ²/12) shrink: 4 mm on 20 m here.
    assert radius == pytest.approx(1 / k, rel=dtheta ** 2 / 12 * 1.01)
    assert radius != pytest.approx(1 / k, rel=1e-6)
    # Left (positive curvature) turns to positive y and yaw; negative curvature mirrors it.
    assert roll.xy[-1, 1] > 0 and roll.yaw[-1] > 0
    mirrored = integrate(_actions(0.0, -k), v, DT)
    assert torch.allclose(mirrored.xy[:, 1], -roll.xy[:, 1]) and torch.allclose(mirrored.xy[:, 0], roll.xy[:, 0])


def test_constant_acceleration_on_a_straight_line_is_v0_t_plus_half_a_t_squared():
    v0, a = 4.0, 1.5
    roll = integrate(_actions(a, 0.0), v0, DT)
    t = _times()
    assert torch.allclose(roll.xy[:, 0], v0 * t + a * t ** 2 / 2, atol=1e-10)
    assert torch.all(roll.xy[:, 1] == 0) and torch.all(roll.yaw == 0)
    assert torch.allclose(roll.speed, v0 + a * t)


def test_yaw_is_curvature_times_distance_under_acceleration_and_batches_broadcast():
    v0 = torch.tensor([2.0, 8.0], dtype=F64)
    acts = torch.stack([_actions(1.0, 0.02), _actions(-0.5, -0.01)])
    roll = integrate(acts, v0, DT)
    t = _times()
    for i, (a, k) in enumerate([(1.0, 0.02), (-0.5, -0.01)]):
        assert torch.allclose(roll.yaw[i], k * (v0[i] * t + a * t ** 2 / 2), atol=1e-12)
    assert roll.xy.shape == (2, T, 2) and roll.speed.shape == (2, T)


def test_estimate_v0_is_exact_for_constant_acceleration_and_close_on_a_circle():
    h, v_now, a = CFG.history_steps, 7.0, 1.2
    tau = torch.arange(-(h - 1), 1, dtype=F64) * DT  # history times, t0 last
    x = v_now * tau + a * tau ** 2 / 2  # at constant acceleration, position 0 at t0
    hist = torch.stack([x, torch.zeros_like(x)], -1)
    for window in (3, 5, h):
        assert estimate_v0(hist, DT, window).item() == pytest.approx(v_now, abs=1e-9)
    assert estimate_v0(hist, DT, 2).item() == pytest.approx(v_now - a * DT / 2, abs=1e-9)  # a line: the chord's speed
    # Reversing reads as a negative speed along the t0 heading.
    assert estimate_v0(-hist, DT, 5).item() == pytest.approx(-v_now, abs=1e-9)
    # A circle of radius 20 m at 10 m/s driven up to t0 (heading x at t0): x = r sin(v t / r) has a cubic term
    # the quadratic misses, a bias of order (v/r)^2 (window dt)^2 / 6: 0.4% here, shrinking with the window.
    r, v = 20.0, 10.0
    ang = v * tau / r
    circle = torch.stack([r * torch.sin(ang), r * (1 - torch.cos(ang))], -1)
    assert estimate_v0(circle, DT, 5).item() == pytest.approx(v, rel=1e-2)
    assert abs(estimate_v0(circle, DT, 3).item() - v) < abs(estimate_v0(circle, DT, 5).item() - v)
    with pytest.raises(ValueError, match="at least 2"):
        estimate_v0(hist[-1:], DT, 5)


def _smooth_actions(n: int, seed: int):
    """Random smooth manoeuvres (sums of 5-20 s sinusoids) with speeds staying forward."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(T, dtype=F64) * DT

    def smooth(scale):
        out = torch.zeros(n, T, dtype=F64)
        for f in (0.05, 0.1, 0.2):
            amp = scale * torch.randn(n, 1, generator=g, dtype=F64)
            phase = 2 * math.pi * torch.rand(n, 1, generator=g, dtype=F64)
            out += amp * torch.sin(2 * math.pi * f * t + phase)
        return out

    acts = torch.stack([smooth(0.5), smooth(0.03)], -1)
    v0 = 5 + 10 * torch.rand(n, generator=g, dtype=F64)
    keep = integrate(acts, v0, DT).speed.min(-1).values > 1.0
    return acts[keep], v0[keep]


@pytest.mark.parametrize("with_yaw", [False, True])
def test_least_squares_fit_round_trip_recovers_smooth_actions(with_yaw):
    acts, v0 = _smooth_actions(64, seed=0)
    assert len(acts) > 40
    roll = integrate(acts, v0, DT)
    fit = fit_actions(roll.xy, v0, CFG, roll.yaw if with_yaw else None)
    back = integrate(fit, v0, DT)
    err = (back.xy - roll.xy).norm(dim=-1)
    # The regularisation biases the fit towards smoother actions; a few cm over 6.4 s is what it may cost.
    assert err.max() < 0.05 and err.median() < 0.01
    # The targets the model sees are normalised by std 0.68 m/s^2 and 0.026 /m: errors under 5% of a std.
    assert (fit[..., 0] - acts[..., 0]).pow(2).mean().sqrt() < 0.05 * CFG.accel_std
    assert (fit[..., 1] - acts[..., 1]).pow(2).mean().sqrt() < 0.05 * CFG.curvature_std
    # With the regularisation all but switched off the linearised fit is exact: the only approximation left
    # (a step's direction as its speed-weighted mean heading) costs under a millimetre.
    exact = dataclasses.replace(CFG, fit_heading_smooth=1e-6, fit_accel_smooth=1e-8, fit_curvature_smooth=1e-6,
                                fit_ridge=1e-12)
    fit = fit_actions(roll.xy, v0, exact, roll.yaw if with_yaw else None)
    assert (integrate(fit, v0, DT).xy - roll.xy).norm(dim=-1).max() < 1e-3
    assert (fit - acts).abs().max() < 0.02


def test_regularisation_keeps_noisy_waypoints_from_producing_wild_curvature():
    acts, v0 = _smooth_actions(32, seed=1)
    roll = integrate(acts, v0, DT)
    noisy = roll.xy + 0.01 * torch.randn(roll.xy.shape, generator=torch.Generator().manual_seed(2), dtype=F64)
    weak = dataclasses.replace(CFG, fit_heading_smooth=1e-3, fit_accel_smooth=1e-4, fit_curvature_smooth=1e-3)
    rms = {name: (fit_actions(noisy, v0, c)[..., 1] - acts[..., 1]).pow(2).mean().sqrt().item()
           for name, c in (("default", CFG), ("weak", weak))}
    assert rms["default"] < 0.5 * CFG.curvature_std < rms["weak"]


def test_fit_handles_a_stop_and_a_u_turn():
    acts = _actions(0.0, 0.05)
    acts[:40, 0] = -2.0  # 8 m/s to a standstill at step 40, then stopped
    roll = integrate(acts, 8.0, DT)
    fit = fit_actions(roll.xy, 8.0, CFG)
    assert torch.isfinite(fit).all()
    assert (integrate(fit, 8.0, DT).xy - roll.xy).norm(dim=-1).max() < 0.05
    uturn = integrate(_actions(0.0, 0.125), 6.0, DT)  # 4.8 rad: beyond pi, so headings must be unwrapped
    fit = fit_actions(uturn.xy, 6.0, CFG)
    assert (fit - _actions(0.0, 0.125)).abs().max() < 1e-3
    with pytest.raises(ValueError, match="at least 3 waypoints"):
        fit_actions(uturn.xy[:2], 6.0, CFG)


def test_final_yaw_and_manoeuvre_classes():
    left = integrate(_actions(0.0, 0.05), 10.0, DT)  # 3.2 rad
    gentle = integrate(_actions(0.0, 0.003), 10.0, DT)  # 0.19 rad = 11 degrees
    right = integrate(_actions(0.0, -0.01), 10.0, DT)  # -0.64 rad
    assert final_yaw(left.xy, left.yaw).item() == pytest.approx(3.2)
    # From positions alone: the last step's direction, half a step behind.
    assert final_yaw(left.xy).item() == pytest.approx(3.2 - 0.05 * 10 * DT / 2, abs=1e-9)
    assert [manoeuvre_of(final_yaw(r.xy).item()) for r in (left, gentle, right)] == [LEFT, STRAIGHT, RIGHT]
    assert manoeuvre_of(math.radians(10), threshold_deg=5) == LEFT
    # A car that has not moved has heading 0 (its t0 heading), not the direction of numerical noise.
    still = torch.zeros(T, 2, dtype=F64)
    still[:, 1] = 1e-4 * torch.arange(T)
    headings, valid = chord_headings(still, CFG.min_step_m)
    assert not valid.any() and torch.all(headings == 0)


def test_normalisation_round_trip_and_clipping():
    acts, _ = _smooth_actions(8, seed=3)
    assert torch.allclose(denormalise(normalise(acts, CFG), CFG), acts, atol=1e-12)
    mean = torch.tensor([CFG.accel_mean, CFG.curvature_mean], dtype=F64)
    assert torch.allclose(normalise(mean, CFG), torch.zeros(2, dtype=F64), atol=1e-12)
    wild = torch.tensor([[20.0, -1.0], [-20.0, 1.0]], dtype=F64)
    assert torch.equal(clip_actions(wild, CFG), torch.tensor([[9.8, -0.33], [-9.8, 0.33]], dtype=F64))
    assert torch.allclose(denormalise(normalise(wild, CFG), CFG), clip_actions(wild, CFG))


def test_bins_round_trip_within_half_a_bin():
    n, lo, hi = CFG.token_bins, CFG.token_min, CFG.token_max
    x = torch.linspace(lo, hi, 100_001, dtype=F64)
    bins = to_bins(x, n, lo, hi)
    assert bins.min() == 0 and bins.max() == n - 1 and bins.dtype == torch.long
    assert len(torch.unique(bins)) == n
    assert (from_bins(bins, n, lo, hi, F64) - x).abs().max() <= (hi - lo) / n / 2 + 1e-12
    assert to_bins(torch.tensor([-50.0, 50.0]), n, lo, hi).tolist() == [0, n - 1]
