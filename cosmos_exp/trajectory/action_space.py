"""The unicycle (acceleration, curvature) action space of Alpamayo-R1, batched in torch.

Frame: the ego pose at t0, x forward, y left, yaw counter-clockwise (right-handed), so a left turn has a
positive final yaw. Waypoints are the T future positions at dt, 2 dt, ... T dt; the start (0, 0, yaw 0) is
implied. Actions are physical (m/s^2, 1/m) unless a function says normalised.

Integration (as the reference): v_{i+1} = v_i + a_i dt; yaw_{i+1} = yaw_i + k_i (v_i dt + a_i dt^2 / 2), i.e.
curvature times the distance covered at constant acceleration, so yaw = k * s exactly for constant k;
positions by the trapezoid rule on v (cos yaw, sin yaw). Speed is not clamped at zero.

Ground-truth actions (fit_actions) come from waypoints by three linear Tikhonov-regularised least squares, each
with a penalty on the squared second difference of its unknowns and a small ridge:
  1. headings: from the chord directions, since the trapezoid step i moves along (yaw_{i-1} + yaw_i) / 2 when
     the speed barely changes over a step, so chord_i = (yaw_{i-1} + yaw_i) / 2 is linear in the headings
     (or straight from given yaws);
  2. accelerations: with the headings fixed the trapezoid step is linear in the speeds and the speeds are
     linear in the accelerations (v = v0 + dt cumsum a), so the waypoint residual is linear in a;
  3. curvatures: yaw_{i+1} - yaw_i = k_i s_i with s_i = v_i dt + a_i dt^2 / 2 from step 2, linear in k.
Steps 1-2 run twice: the second pass weighs a step's two headings by the speeds the first pass found, since
v_{i-1} u_{i-1} + v_i u_i points at the speed-weighted mean heading to first order. What remains of the
linearisation is third order in the heading change per step: sub-millimetre over 6.4 s at driving speeds, so
the fit's error is the regularisation's (the defaults' trade-off is in config/trajectory.py). Chords say
nothing about driving backwards: pass the yaws for a reversing trajectory.
"""

import functools
import math
from typing import NamedTuple, Optional, Union

import torch

from cosmos_exp.config.trajectory import ActionSpaceConfig

STRAIGHT, LEFT, RIGHT = "straight", "left", "right"
MANOEUVRES = (STRAIGHT, LEFT, RIGHT)


class Rollout(NamedTuple):
    xy: torch.Tensor  # (..., T, 2)
    yaw: torch.Tensor  # (..., T)
    speed: torch.Tensor  # (..., T), the speed at each waypoint


def integrate(actions: torch.Tensor, v0: Union[torch.Tensor, float], dt: float) -> Rollout:
    """Roll physical actions (..., T, 2) = (acceleration, curvature) out from speed v0 (... or scalar)."""
    accel, kappa = actions[..., 0], actions[..., 1]
    v0 = torch.as_tensor(v0, dtype=actions.dtype, device=actions.device).expand(accel.shape[:-1])
    speed = torch.cat([v0[..., None], v0[..., None] + torch.cumsum(accel * dt, dim=-1)], dim=-1)
    dyaw = kappa * (speed[..., :-1] * dt + accel * (dt * dt / 2))
    yaw = torch.cat([torch.zeros_like(v0)[..., None], torch.cumsum(dyaw, dim=-1)], dim=-1)
    vx, vy = speed * torch.cos(yaw), speed * torch.sin(yaw)
    x = torch.cumsum((vx[..., :-1] + vx[..., 1:]) * (dt / 2), dim=-1)
    y = torch.cumsum((vy[..., :-1] + vy[..., 1:]) * (dt / 2), dim=-1)
    return Rollout(torch.stack([x, y], dim=-1), yaw[..., 1:], speed[..., 1:])


def estimate_v0(history_xy: torch.Tensor, dt: float, window: int = 5) -> torch.Tensor:
    """Speed at t0 from the ego history (..., H, 2), oldest first, the last point at t0.

    The derivative at t0 of a least-squares quadratic through the last `window` points (a line for 2), taken
    along x: the t0 heading in the t0 frame, so the speed is negative when reversing. Exact for constant
    acceleration; window 3 is the second-order backward difference.
    """
    h = history_xy.shape[-2]
    if window < 2 or h < 2:
        raise ValueError(f"estimate_v0: need a window and a history of at least 2 points (window {window}, history {h})")
    window = min(window, h)
    weights = torch.tensor(_v0_weights(window, float(dt)), dtype=torch.float64, device=history_xy.device)
    x = history_xy[..., -window:, 0].to(torch.float64)
    return (x * weights).sum(-1).to(history_xy.dtype)


@functools.lru_cache(maxsize=16)
def _v0_weights(window: int, dt: float) -> tuple:
    """The least-squares row giving the linear coefficient (d/dt at tau = 0) of the fit over `window` points
    (computed once per window and dt: a pseudo-inverse costs more than the rest of a sample's encoding)."""
    tau = torch.arange(-(window - 1), 1, dtype=torch.float64) * dt
    degree = 2 if window >= 3 else 1
    vander = torch.stack([tau ** p for p in range(degree + 1)], dim=-1)
    return tuple(torch.linalg.pinv(vander)[1].tolist())


def unwrap(angles: torch.Tensor) -> torch.Tensor:
    """Unwrap a heading sequence (..., T) that starts after heading 0, so turns beyond 180 degrees keep counting."""
    steps = torch.diff(angles, dim=-1, prepend=torch.zeros_like(angles[..., :1]))
    return torch.cumsum(torch.remainder(steps + math.pi, 2 * math.pi) - math.pi, dim=-1)


def chord_headings(xy: torch.Tensor, min_step: float = 0.02):
    """Direction of each step (..., T) from the previous waypoint (the origin first), unwrapped, and a mask of
    the steps long enough to have one; a shorter step (a stopped car) repeats the last direction (0 at first)."""
    steps = torch.diff(xy, dim=-2, prepend=torch.zeros_like(xy[..., :1, :]))
    valid = steps.norm(dim=-1) >= min_step
    angle = torch.atan2(steps[..., 1], steps[..., 0])
    idx = torch.arange(angle.shape[-1], device=xy.device).expand_as(angle)
    last = torch.cummax(torch.where(valid, idx, torch.full_like(idx, -1)), dim=-1).values
    filled = torch.where(last >= 0, torch.gather(angle, -1, last.clamp(min=0)), torch.zeros_like(angle))
    return unwrap(filled), valid


def final_yaw(xy: torch.Tensor, yaw: Optional[torch.Tensor] = None, min_step: float = 0.02) -> torch.Tensor:
    """Heading change at the last waypoint (...,): the given yaws unwrapped, else the direction of the last step
    that moved (half a step behind the true final heading)."""
    if yaw is not None:
        return unwrap(yaw)[..., -1]
    return chord_headings(xy, min_step)[0][..., -1]


def manoeuvre_of(final_yaw_rad: float, threshold_deg: float = 15.0) -> str:
    """straight under the threshold, else left for a positive (counter-clockwise) final yaw, right for negative."""
    deg = math.degrees(float(final_yaw_rad))
    if abs(deg) < threshold_deg:
        return STRAIGHT
    return LEFT if deg > 0 else RIGHT


def fit_actions(future_xy: torch.Tensor, v0: Union[torch.Tensor, float], cfg: ActionSpaceConfig,
                future_yaw: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Physical actions (..., T, 2) whose rollout from v0 best reproduces the waypoints (..., T, 2) (see the
    module docstring). Solved in closed form in float64, returned in the waypoints' dtype."""
    dtype = future_xy.dtype
    xy = future_xy.to(torch.float64)
    t, dt = xy.shape[-2], cfg.dt
    if t < 3:
        raise ValueError(f"fit_actions: need at least 3 waypoints, got {t}")
    v0 = torch.as_tensor(v0, dtype=torch.float64, device=xy.device).expand(xy.shape[:-2])

    # 1-2, twice: the first pass weighs both ends of a step equally, the second by the speeds it found.
    speed = None
    for _ in range(2 if future_yaw is None else 1):
        yaw_full = _fit_headings(xy, cfg, future_yaw, speed)
        accel = _fit_accelerations(xy, v0, yaw_full, cfg)
        speed = torch.cat([v0[..., None], v0[..., None] + dt * torch.cumsum(accel, dim=-1)], dim=-1)

    # 3. Curvatures: dyaw_i = k_i s_i.
    s = speed[..., :-1] * dt + accel * (dt * dt / 2)
    kappa = _tikhonov(torch.diag_embed(s), torch.diff(yaw_full, dim=-1), torch.ones_like(s), _second_difference(t, xy),
                      cfg.fit_curvature_smooth, cfg.fit_ridge)
    return torch.stack([accel, kappa], dim=-1).to(dtype)


def _fit_headings(xy: torch.Tensor, cfg: ActionSpaceConfig, future_yaw: Optional[torch.Tensor],
                  speed: Optional[torch.Tensor]) -> torch.Tensor:
    """[0, yaw_1..yaw_T]: the given yaws, smoothed, or the headings whose speed-weighted mean over each step is
    the step's direction (v_{i-1} u_{i-1} + v_i u_i points at that mean to first order in the heading change)."""
    t = xy.shape[-2]
    eye = torch.eye(t, dtype=torch.float64, device=xy.device)
    if future_yaw is not None:
        a, b = eye.expand(*xy.shape[:-2], t, t), unwrap(future_yaw.to(torch.float64))
        w = torch.ones_like(b)
    else:
        if speed is None:
            share = torch.full(xy.shape[:-1], 0.5, dtype=torch.float64, device=xy.device)
        else:  # share of the step's end; a stop (both ends ~0) keeps 1/2
            total = speed[..., :-1] + speed[..., 1:]
            share = torch.where(total.abs() > 1e-3, speed[..., 1:] / torch.where(total.abs() > 1e-3, total, 1.0), 0.5)
        a = torch.diag_embed(share) + torch.diag_embed((1 - share)[..., 1:], -1)
        b, valid = chord_headings(xy, cfg.min_step_m)
        w = valid.to(torch.float64)
    yaw = _tikhonov(a, b, w, _second_difference(t + 1, xy)[:, 1:], cfg.fit_heading_smooth, cfg.fit_ridge)
    return torch.cat([torch.zeros_like(yaw[..., :1]), yaw], dim=-1)


def _fit_accelerations(xy: torch.Tensor, v0: torch.Tensor, yaw_full: torch.Tensor,
                       cfg: ActionSpaceConfig) -> torch.Tensor:
    """step_i = dt/2 (v_{i-1} u_{i-1} + v_i u_i) with v_{i-1} = v0 + dt S a, v_i = v0 + dt L a (S strictly lower
    triangular ones, L lower): linear in a once the headings u are fixed."""
    t, dt = xy.shape[-2], cfg.dt
    lower = torch.tril(torch.ones(t, t, dtype=torch.float64, device=xy.device))
    strict = lower - torch.eye(t, dtype=torch.float64, device=xy.device)
    steps = torch.diff(xy, dim=-2, prepend=torch.zeros_like(xy[..., :1, :]))
    rows, rhs = [], []
    for trig, comp in ((torch.cos, 0), (torch.sin, 1)):
        u_prev, u_cur = trig(yaw_full[..., :-1]), trig(yaw_full[..., 1:])
        rows.append(dt * dt / 2 * (u_prev[..., None] * strict + u_cur[..., None] * lower))
        rhs.append(steps[..., comp] - dt / 2 * v0[..., None] * (u_prev + u_cur))
    a, b = torch.cat(rows, dim=-2), torch.cat(rhs, dim=-1)
    return _tikhonov(a, b, torch.ones_like(b), _second_difference(t, xy), cfg.fit_accel_smooth, cfg.fit_ridge)


def _second_difference(n: int, like: torch.Tensor) -> torch.Tensor:
    d = torch.zeros(n - 2, n, dtype=torch.float64, device=like.device)
    idx = torch.arange(n - 2, device=like.device)
    d[idx, idx], d[idx, idx + 1], d[idx, idx + 2] = 1.0, -2.0, 1.0
    return d


def _tikhonov(a: torch.Tensor, b: torch.Tensor, w: torch.Tensor, d: torch.Tensor, smooth: float,
              ridge: float) -> torch.Tensor:
    """argmin_x sum w (A x - b)^2 + smooth |D x|^2 + ridge |x|^2, batched over the leading dimensions."""
    at_w = a.transpose(-1, -2) * w[..., None, :]
    n = a.shape[-1]
    h = at_w @ a + smooth * (d.T @ d) + ridge * torch.eye(n, dtype=a.dtype, device=a.device)
    return torch.linalg.solve(h, (at_w @ b[..., None]))[..., 0]


def _stats(cfg: ActionSpaceConfig, like: torch.Tensor):
    mean = torch.tensor([cfg.accel_mean, cfg.curvature_mean], dtype=like.dtype, device=like.device)
    std = torch.tensor([cfg.accel_std, cfg.curvature_std], dtype=like.dtype, device=like.device)
    return mean, std


def clip_actions(actions: torch.Tensor, cfg: ActionSpaceConfig) -> torch.Tensor:
    """Physical actions clamped to the configured bounds, channel by channel."""
    lo = torch.tensor([cfg.accel_min, cfg.curvature_min], dtype=actions.dtype, device=actions.device)
    hi = torch.tensor([cfg.accel_max, cfg.curvature_max], dtype=actions.dtype, device=actions.device)
    return torch.maximum(torch.minimum(actions, hi), lo)


def normalise(actions: torch.Tensor, cfg: ActionSpaceConfig) -> torch.Tensor:
    """Physical actions -> clipped to the bounds -> (value - mean) / std per channel."""
    mean, std = _stats(cfg, actions)
    return (clip_actions(actions, cfg) - mean) / std


def denormalise(normalised: torch.Tensor, cfg: ActionSpaceConfig) -> torch.Tensor:
    mean, std = _stats(cfg, normalised)
    return normalised * std + mean


def to_bins(normalised: torch.Tensor, n_bins: int, lo: float, hi: float) -> torch.Tensor:
    """Index of the uniform bin over [lo, hi] holding each value; values outside go to the edge bins."""
    width = (hi - lo) / n_bins
    return torch.floor((normalised - lo) / width).long().clamp(0, n_bins - 1)


def from_bins(bins: torch.Tensor, n_bins: int, lo: float, hi: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Bin centres: within half a bin width of any in-range value that was binned."""
    width = (hi - lo) / n_bins
    return lo + (bins.to(dtype) + 0.5) * width
