"""Settings of the trajectory path: the action space, flow matching, the action expert, what the backbone is
shown, and the trajectory metrics.

Plain dataclasses read by cosmos_exp/trajectory, cosmos_exp/models (action expert, trajectory model),
cosmos_exp/data/trajectory_sample.py and cosmos_exp/evaluate/trajectory.py. Values marked (†) are from the
released Alpamayo-R1 config.json (/work/shared/reference/alpamayo.md); the upstream code's own defaults differ,
which is why they are settings and not constants. "upstream code" means the NVlabs alpamayo repository.
"""

from dataclasses import dataclass, field
from typing import List, Optional

from omegaconf import MISSING


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
class ExpertConfig:
    """The action expert: a copy of the backbone's text transformer (layer count, heads, KV heads, head_dim,
    rope, norm eps from the backbone's text config) at its own width, plus the action in/out projections."""

    # Width of the expert's residual stream and MLP (†: 2048 / 8256 in the released config); None = the
    # backbone's own. The KV layout is the backbone's whatever the width, so its cache is attended directly.
    hidden_size: Optional[int] = 2048
    intermediate_size: Optional[int] = 8256
    # Fourier features per input channel (acceleration, curvature, flow time t): sin and cos at half as many
    # frequencies, log-spaced from 1 to fourier_max_freq (upstream action_in_proj.py: 20 features, 1..100).
    fourier_features: int = 20
    fourier_max_freq: float = 100.0
    # The input MLP: Linear -> SiLU, then (RMSNorm -> Linear -> SiLU) x (in_proj_layers - 1), then RMSNorm ->
    # Linear to the expert width, then LayerNorm (upstream PerWaypointActionInProjV2 code defaults: 4, width 1024).
    in_proj_layers: int = 4
    in_proj_hidden: int = 1024


@dataclass
class TrajectoryPromptConfig:
    """What the backbone sees: camera images, the tokenised ego history and the prompt text."""

    # Cameras used, and the fixed order images are sorted by (camera-major, then frames oldest first): the
    # upstream loader's default four cameras and its camera index (load_physical_aiavdataset.py).
    cameras: List[str] = field(default_factory=lambda: [
        "camera_cross_left_120fov", "camera_front_wide_120fov", "camera_cross_right_120fov",
        "camera_front_tele_30fov"])
    camera_order: List[str] = field(default_factory=lambda: [
        "camera_cross_left_120fov", "camera_front_wide_120fov", "camera_cross_right_120fov",
        "camera_rear_left_70fov", "camera_rear_tele_30fov", "camera_rear_right_70fov", "camera_front_tele_30fov"])
    # Frames per camera, t0 - 0.3 s ... t0 at 10 Hz (upstream loader default).
    frames_per_camera: int = 4
    # Per-image pixel bounds of the resize (upstream helper.py MIN_PIXELS / MAX_PIXELS).
    image_min_pixels: int = 163840
    image_max_pixels: int = 196608
    # Camera identity comes from the order alone by default (AR1). These two knobs add it explicitly, and are
    # exactly what a camera-rig change perturbs: a learned per-camera embedding added to that camera's image
    # tokens (ours; zero-initialised, part of the backbone side, so it trains in stage 1, not stage 2), and the
    # camera name and frame number as text before each image (Alpamayo 1.5 does this; the wording is ours).
    camera_id_embedding: bool = False
    camera_names_in_prompt: bool = False
    # Ego history tokens: each of the ActionSpaceConfig.history_steps (16 at 10 Hz) points becomes an (x, y, z)
    # delta from the previous one (the first from the origin), each quantised to one of history_bins uniform
    # levels over [min, max] per axis: 16 x 3 = 48 tokens (upstream DeltaTrajectoryTokenizer: 1000 bins,
    # x/y within +-4 m, z within +-10 m).
    history_bins: int = 1000
    history_xyz_min: List[float] = field(default_factory=lambda: [-4.0, -4.0, -10.0])
    history_xyz_max: List[float] = field(default_factory=lambda: [4.0, 4.0, 10.0])
    # Prompt text (upstream helper.py's system prompt; the user text without its chain-of-thought request,
    # since the public recipe trains no reasoning). The assistant turn opens with the future-start token.
    system_prompt: str = "You are a driving assistant that generates safe and accurate actions."
    user_prompt: str = "output the future trajectory."


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


# -- driving-scene data: the synthetic multi-rig generator and the PhysicalAI-AV reader --------------------------

@dataclass
class CameraMountConfig:
    """One camera of a rig: where it sits on the car, where it looks, and its lens.

    Ego frame (cosmos_exp/trajectory/action_space.py): x forward from the rear axle, y left, z up. The lens is an
    equidistant (f-theta) fisheye like the PhysicalAI-AV cameras': pixel radius = f * angle from the axis, with
    f set so that the image width spans fov_deg."""

    # The camera id images are filed under (a name in TrajectoryPromptConfig.camera_order): the model orders a
    # sample's images by this name alone, so filing a camera under another name is a camera-order change.
    name: str = MISSING
    yaw_deg: float = 0.0  # mounting yaw, + = turned to the left of straight ahead
    pitch_deg: float = 0.0  # + = tilted down
    fov_deg: float = 120.0  # horizontal field of view
    x_m: float = 2.0  # mounting position
    y_m: float = 0.0
    height_m: float = 1.5


@dataclass
class RigConfig:
    name: str = MISSING
    cameras: List[CameraMountConfig] = MISSING


def _rig_a() -> RigConfig:
    # Three forward-facing cameras named like PhysicalAI-AV's, the cross ones looking 60 degrees out. Mounted
    # far higher than a car's (3.5 m, 20 degrees down: a low drone's view) so the road's course ahead spreads
    # over many rows of a 64-pixel picture instead of a few rows at the horizon.
    return RigConfig("rig_a", [
        CameraMountConfig("camera_cross_left_120fov", yaw_deg=60.0, pitch_deg=20.0, y_m=0.8, height_m=3.5),
        CameraMountConfig("camera_front_wide_120fov", pitch_deg=20.0, height_m=3.5),
        CameraMountConfig("camera_cross_right_120fov", yaw_deg=-60.0, pitch_deg=20.0, y_m=-0.8, height_m=3.5),
    ])


def _rig_b() -> RigConfig:
    # The full shift (alpha = 1) to a new platform: cameras mounted higher, further back and tilted further
    # down, a wider front lens, cross cameras turned further out with narrower lenses. Same names and order.
    return RigConfig("rig_b", [
        CameraMountConfig("camera_cross_left_120fov", yaw_deg=80.0, pitch_deg=24.0, fov_deg=100.0, x_m=1.2,
                          y_m=0.9, height_m=4.5),
        CameraMountConfig("camera_front_wide_120fov", pitch_deg=28.0, fov_deg=160.0, x_m=1.2, height_m=4.5),
        CameraMountConfig("camera_cross_right_120fov", yaw_deg=-80.0, pitch_deg=24.0, fov_deg=100.0, x_m=1.2,
                          y_m=-0.9, height_m=4.5),
    ])


@dataclass
class DrivingSyntheticConfig:
    """The synthetic driving scenes of the rig-change experiment (cosmos_exp/data/driving_synthetic.py).

    A scene is a road and the ego's trajectory on it: a straight history at constant speed, so the cameras are
    the only cue to what comes next, and a future from the unicycle model that follows the road (straight or a
    left/right turn). Every scene is rendered by both rigs (paired scenes: same id, same road, same future)."""

    seed: int = 0
    train_split: str = "train"
    eval_split: str = "eval"
    num_train: int = 600  # scenes per split (each rendered by both rigs)
    num_eval: int = 200
    # Manoeuvre shares straight / left / right; counts per split are exact (largest remainder), order shuffled.
    manoeuvre_shares: List[float] = field(default_factory=lambda: [0.6, 0.2, 0.2])
    # Speed at t0 (m/s), uniform per scene; the history holds it (16 steps at 10 Hz, straight along x).
    speed_range: List[float] = field(default_factory=lambda: [5.0, 15.0])
    # Constant future acceleration (m/s^2), uniform per scene.
    accel_range: List[float] = field(default_factory=lambda: [-0.4, 0.4])
    # |final yaw| (degrees) at the end of the 6.4 s future: turns in this range, straights within +-straight_max.
    turn_yaw_deg: List[float] = field(default_factory=lambda: [30.0, 90.0])
    straight_max_yaw_deg: float = 3.0
    # Curvature profile: zero until turn_start_s, a smooth rise over ramp_s, held for hold_s, a smooth fall over
    # ramp_s (each uniform per scene); its height is solved for the final yaw, within max_curvature (1/m).
    turn_start_s: List[float] = field(default_factory=lambda: [0.0, 1.5])
    ramp_s: List[float] = field(default_factory=lambda: [0.8, 2.0])
    hold_s: List[float] = field(default_factory=lambda: [0.0, 2.0])
    max_curvature: float = 0.3
    # Pictures: frames per camera at frame_dt, the last at t0 (the prompt config's frames_per_camera takes the
    # newest ones); pixels; supersampling per axis against aliasing; sensor noise (std of 0-255 levels).
    frames: int = 4
    frame_dt: float = 0.1
    width: int = 64
    height: int = 64
    supersample: int = 1
    noise_std: float = 2.0
    # The world: road width (m, uniform per scene), how far the road is drawn (m), per-scene colour jitter.
    road_width_m: List[float] = field(default_factory=lambda: [7.0, 9.0])
    view_range_m: float = 80.0
    colour_jitter: float = 0.08
    # Rig A, the full rig B, and how far the rendered rig B is from A: its numeric mounting and lens values are
    # (1 - alpha) A + alpha B, camera by camera (names and their order are rig B's at any alpha > 0).
    rig_a: RigConfig = field(default_factory=_rig_a)
    rig_b: RigConfig = field(default_factory=_rig_b)
    alpha: float = 0.5
    # A one-sentence reasoning text per clip (what the road does, so what the ego does).
    reasoning: bool = True


@dataclass
class PhysicalAIAVConfig:
    """A local copy of (part of) NVIDIA's PhysicalAI-Autonomous-Vehicles in its Hugging Face layout
    (cosmos_exp/data/physical_ai_av.py): features.csv, clip_index.parquet, camera/<camera>/<camera>.chunk_NNNN.zip,
    labels/egomotion/egomotion.chunk_NNNN.zip (or those zips unpacked in place)."""

    root: str = MISSING
    # Only clips of this split (clip_index.parquet's `split` column); None: all.
    split: Optional[str] = None
    # Cameras read per clip (their frames end at t0, frame_dt apart); a clip missing one is skipped.
    cameras: List[str] = field(default_factory=lambda: [
        "camera_cross_left_120fov", "camera_front_wide_120fov", "camera_cross_right_120fov",
        "camera_front_tele_30fov"])
    frames: int = 4
    frame_dt: float = 0.1
    # t0 in microseconds from the clip start (upstream default 5.1 s); with use_event_t0s, one item per entry of
    # clip_index.parquet's `event_t0s` instead (entries whose history or future the egomotion does not cover are
    # skipped and reported like bad clips).
    t0_us: int = 5_100_000
    use_event_t0s: bool = False
    # Frame decoder (cosmos_exp/data/video.py).
    video_backend: str = "decord"
    max_clips: Optional[int] = None
    # Stop at the first bad clip (DataError) instead of skipping it and reporting it.
    strict: bool = False
