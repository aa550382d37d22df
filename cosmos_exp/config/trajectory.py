"""Settings of the trajectory path: the action space, flow matching and the trajectory metrics.

Plain dataclasses read by cosmos_exp/trajectory and cosmos_exp/evaluate/trajectory.py. Values marked (†) are
from the released Alpamayo-R1 config.json (/work/shared/reference/alpamayo.md); the upstream code's own
defaults differ, which is why they are settings and not constants.
"""

from dataclasses import dataclass, field
from typing import List, Optional


@dataclass
class ActionSpaceConfig:
    # 64 (acceleration, curvature) pairs at 10 Hz = 6.4 s (alpamayo action_space/unicycle_accel_curvature.py).
    n_steps: int = 64
    dt: float = 0.1
    # Ego history: 16 steps at 10 Hz in the t0 frame (the reference's 48 history tokens = 16 x xyz).
    history_steps: int = 16
    # Initial speed: derivative at t0 of a quadratic fitted to the last v0_window history points (ours; 3 is
    # the exact second-order backward difference, more points average out position noise).
    v0_window: int = 5
    # Normalisation statistics (†): actions are (value - mean) / std before the flow model sees them.
    accel_mean: float = 0.0290  # m/s^2
    accel_std: float = 0.6810
    curvature_mean: float = 0.000269  # 1/m
    curvature_std: float = 0.02615
    # Physical clip bounds (†): 1 g either way; curvature 0.33 /m is a ~3 m turning radius.
    accel_min: float = -9.8
    accel_max: float = 9.8
    curvature_min: float = -0.33
    curvature_max: float = 0.33
    # Ground-truth action fit (ours, the reference's form): three Tikhonov-regularised least squares, each
    # penalising the squared second difference of its unknowns (a smoothness prior) plus a small ridge.
    # Units: heading in rad vs rad^2 of residual; acceleration in (m/s^2) vs m^2 of position residual;
    # curvature in (1/m) vs rad^2 of heading residual. Chosen on smooth random manoeuvres (3-15 m/s): exact
    # waypoints come back within ~2 cm (accel rms error 0.01 m/s^2, curvature 0.0004 /m), and 1 cm of position
    # noise gives curvature errors of ~0.005 /m instead of ~0.25 /m without it (tests/test_trajectory_action_space.py).
    fit_heading_smooth: float = 1.0
    fit_accel_smooth: float = 1e-2
    fit_curvature_smooth: float = 1.0
    fit_ridge: float = 1e-6
    # Steps shorter than this (m) carry no heading information (a stopped car): the smoothness prior fills in.
    min_step_m: float = 0.02
    # Stage-1 discrete trajectory tokens (†): 3,000 uniform bins over the normalised range [-10, 10].
    token_bins: int = 3000
    token_min: float = -10.0
    token_max: float = 10.0


@dataclass
class FlowMatchingConfig:
    # t = t_max - t_max * Beta(alpha, beta): Beta(1.5, 1) leans towards 1, so t leans towards the noisy end
    # (alpamayo diffusion/flow_matching.py).
    beta_alpha: float = 1.5
    beta_beta: float = 1.0
    t_max: float = 0.999
    # Euler steps from t = 0 (noise) to t = 1 (data): 10 in the reference.
    euler_steps: int = 10
    # Samples per scene at evaluation (the reference's minADE6).
    n_samples: int = 6


@dataclass
class TrajectoryMetricsConfig:
    # Straight / left / right from the final heading change: |yaw| under this is straight (alpamayo.md, ±15°).
    turn_threshold_deg: float = 15.0
    # ade_first_{t}s (mean over the waypoints up to t) and displacement_at_{t}s (the waypoint at t), in s;
    # the reference reports min_ade/by_t at 0.5/1/3/5.
    horizons_s: List[float] = field(default_factory=lambda: [0.5, 1.0, 3.0, 5.0])
    # minADE over the first k samples of a scene (fewer when a source has fewer, e.g. one token decode).
    k: int = 6
    # Waypoint spacing of the trajectories scored (the action space's dt).
    dt: float = 0.1
    # Rig differences are other rig minus this one; None: the first rig in sorted order.
    baseline_rig: Optional[str] = None
    # The source whose minADE is the headline ("expert" = flow-matching head, "tokens" = discrete decode).
    headline_source: str = "expert"
