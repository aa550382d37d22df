"""Synthetic driving scenes seen by two camera rigs: the data of the rig-change (straight-bias) experiment.

`generate_driving_synthetic(cfg, root)` writes, for the train and eval splits and for rig A and rig B
(cosmos_exp/data/driving_clip_files.py's layout):

    <root>/<split>/rig_a/<scene id>/label.json + <camera>_<k>.png
    <root>/<split>/rig_b/<scene id>/...           the same scenes (ids, roads, futures): paired across rigs
    <root>/rigs.json                              the two rigs as rendered (rig B at cfg.alpha)
    <root>/driving_synthetic.json                 the stamp: settings + counts, written last

A scene (draw_scene): a manoeuvre from an exact per-split 60/20/20 straight/left/right schedule; a straight
history at constant speed (the speed varies per scene), so the history says nothing about what comes; a
future rolled out by the unicycle model (cosmos_exp/trajectory/action_space.integrate) from a constant
acceleration and a smooth curvature bump whose height is solved for a final yaw drawn per manoeuvre; and a
road that follows that future. The cameras see the road bend (cosmos_exp/data/driving_render.py): that is the
only cue. Rig B is rig A moved towards a new platform's mounting and lenses by alpha (blend_rig).

Deterministic: a seed gives byte-identical files (scene i of a split depends on the seed, the split, i and the
split's size only). The dataset directory is built beside the root and renamed into place, so it is complete
or absent; an up-to-date stamp skips the work, and a root that holds something else is never overwritten.
"""

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from cosmos_exp.config.trajectory import ActionSpaceConfig, CameraMountConfig, DrivingSyntheticConfig, RigConfig
from cosmos_exp.data.driving_clip import DrivingClip
from cosmos_exp.data.driving_render import SceneLook, render_camera
from cosmos_exp.trajectory.action_space import LEFT, MANOEUVRES, STRAIGHT, manoeuvre_of

STAMP = "driving_synthetic.json"
RIGS_FILE = "rigs.json"
FORMAT = 1  # bump when the same settings would give different files
ROAD_STEP_M = 1.5  # spacing of the road polyline along the future (m): a 3 m radius bends by < 10 cm per step
_NUMERIC = ("yaw_deg", "pitch_deg", "fov_deg", "x_m", "y_m", "height_m")


@dataclasses.dataclass
class DrivingScene:
    scene_id: str
    manoeuvre: str
    speed: float
    accel: float
    curvature: np.ndarray  # (T,) per future step
    history_xyz: np.ndarray  # (H, 3)
    future_xy: np.ndarray  # (T, 2)
    future_yaw: np.ndarray  # (T,)
    road: np.ndarray  # (N, 2) the road's centre polyline
    look: SceneLook
    meta: Dict[str, Any]


def check_config(cfg: DrivingSyntheticConfig, action_cfg: ActionSpaceConfig) -> None:
    """One-line errors naming the setting, before any work."""
    def need(ok: bool, key: str, what: str) -> None:
        if not ok:
            raise ValueError(f"driving synthetic: {key} {what}")

    shares = list(cfg.manoeuvre_shares)
    need(len(shares) == 3 and min(shares) >= 0 and sum(shares) > 0, "manoeuvre_shares",
         f"must be three non-negative shares (straight, left, right), got {shares}")
    for key in ("speed_range", "accel_range", "turn_yaw_deg", "turn_start_s", "ramp_s", "hold_s", "road_width_m"):
        lo_hi = list(getattr(cfg, key))
        need(len(lo_hi) == 2 and lo_hi[0] <= lo_hi[1], key, f"must be [low, high] with low <= high, got {lo_hi}")
    horizon = action_cfg.n_steps * action_cfg.dt
    need(cfg.speed_range[0] > 0 and cfg.speed_range[0] + min(0.0, cfg.accel_range[0]) * horizon > 0.5,
         "speed_range/accel_range", f"must keep the car moving over the {horizon:g} s future")
    need(cfg.ramp_s[0] > 0, "ramp_s", "must be positive")
    need(cfg.turn_yaw_deg[0] >= 15.0 > cfg.straight_max_yaw_deg >= 0, "turn_yaw_deg/straight_max_yaw_deg",
         "must keep turns at or above and straights below the 15 degree turn threshold")
    need(0.0 <= cfg.alpha <= 1.0, "alpha", f"must be in [0, 1], got {cfg.alpha}")
    need(len(cfg.rig_a.cameras) == len(cfg.rig_b.cameras) > 0, "rig_a/rig_b",
         "must have the same number of cameras (rig B's camera i is rig A's camera i moved)")
    for rig in (cfg.rig_a, cfg.rig_b):
        names = [c.name for c in rig.cameras]
        need(len(set(names)) == len(names), f"{rig.name}.cameras", f"names must be distinct, got {names}")
        need(all(0 < c.fov_deg < 360 and c.height_m > 0 for c in rig.cameras), f"{rig.name}.cameras",
             "need 0 < fov_deg < 360 and height_m > 0")
    need(cfg.frames >= 1 and cfg.width >= 8 and cfg.height >= 8 and cfg.supersample >= 1, "frames/width/height",
         "need at least one frame of at least 8 x 8 pixels")
    need((cfg.frames - 1) * cfg.frame_dt <= (action_cfg.history_steps - 1) * action_cfg.dt + 1e-9, "frames",
         "must not reach back beyond the history")


def blend_rig(a: RigConfig, b: RigConfig, alpha: float) -> RigConfig:
    """Rig B at `alpha`: every numeric mounting and lens value (1 - alpha) A + alpha B, camera by camera; the
    camera names (and so the order the model sees them in) are B's for any alpha > 0, A's at 0."""
    cams = []
    for ca, cb in zip(a.cameras, b.cameras):
        values = {k: (1.0 - alpha) * getattr(ca, k) + alpha * getattr(cb, k) for k in _NUMERIC}
        cams.append(CameraMountConfig(name=cb.name if alpha > 0 else ca.name, **values))
    return RigConfig(name=b.name, cameras=cams)


def manoeuvre_schedule(n: int, shares: List[float], rng: np.random.Generator) -> List[str]:
    """n manoeuvres with counts in exact proportion to the shares (largest remainder), in shuffled order."""
    shares = np.asarray(shares, dtype=np.float64) / float(sum(shares))
    raw = shares * n
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    out = [m for m, c in zip(MANOEUVRES, counts) for _ in range(c)]
    return [out[i] for i in rng.permutation(n)]


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _future(speed: float, accel: float, curvature: np.ndarray, dt: float):
    import torch

    from cosmos_exp.trajectory.action_space import integrate

    actions = torch.stack([torch.full((len(curvature),), accel, dtype=torch.float64),
                           torch.as_tensor(curvature, dtype=torch.float64)], dim=-1)
    out = integrate(actions, speed, dt)
    return out.xy.numpy(), out.yaw.numpy()


def _road(history_xyz: np.ndarray, future_xy: np.ndarray, future_yaw: np.ndarray, extend_m: float) -> np.ndarray:
    """Centre polyline: straight behind t0 (beyond the history), the future resampled every ROAD_STEP_M, then
    straight on along the final heading for extend_m."""
    path = np.concatenate([[[0.0, 0.0]], future_xy])
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=-1))])
    s = np.append(np.arange(0.0, arc[-1], ROAD_STEP_M), arc[-1])
    resampled = np.stack([np.interp(s, arc, path[:, 0]), np.interp(s, arc, path[:, 1])], axis=-1)
    heading = future_yaw[-1]
    ahead = future_xy[-1] + extend_m * np.array([math.cos(heading), math.sin(heading)])
    behind = min(-60.0, history_xyz[0, 0] - 20.0)
    return np.concatenate([[[behind, 0.0]], resampled, [ahead]])


def draw_scene(cfg: DrivingSyntheticConfig, action_cfg: ActionSpaceConfig, split: str, index: int,
               manoeuvre: str) -> DrivingScene:
    """Scene `index` of a split: its own RNG stream from (seed, split, index)."""
    rng = np.random.default_rng([cfg.seed, _split_key(split), index])
    u = lambda lo_hi: float(rng.uniform(lo_hi[0], lo_hi[1]))  # noqa: E731
    speed, accel = u(cfg.speed_range), u(cfg.accel_range)
    if manoeuvre == STRAIGHT:
        target = math.radians(float(rng.uniform(-cfg.straight_max_yaw_deg, cfg.straight_max_yaw_deg)))
    else:
        target = math.radians(u(cfg.turn_yaw_deg)) * (1.0 if manoeuvre == LEFT else -1.0)
    start, ramp, hold = u(cfg.turn_start_s), u(cfg.ramp_s), u(cfg.hold_s)
    dt, n = action_cfg.dt, action_cfg.n_steps
    t = np.arange(n) * dt + dt / 2  # middle of each step
    shape = _smoothstep((t - start) / ramp) - _smoothstep((t - start - ramp - hold) / ramp)
    v = speed + accel * np.arange(n) * dt
    arc = v * dt + accel * dt * dt / 2  # distance covered in each step
    gain = float((shape * arc).sum())
    height = target / gain if gain > 1e-6 else 0.0
    height = float(np.clip(height, -cfg.max_curvature, cfg.max_curvature))
    curvature = height * shape
    future_xy, future_yaw = _future(speed, accel, curvature, dt)
    h = action_cfg.history_steps
    history = np.zeros((h, 3))
    history[:, 0] = speed * dt * np.arange(-(h - 1), 1)
    look = SceneLook(
        road_width_m=u(cfg.road_width_m),
        road_rgb=_jitter(rng, (95.0, 95.0, 100.0), cfg.colour_jitter),
        grass_rgb=_jitter(rng, (70.0, 125.0, 60.0), cfg.colour_jitter),
        sky_rgb=_jitter(rng, (110.0, 160.0, 225.0), cfg.colour_jitter),
        texture_phase=tuple(float(x) for x in rng.uniform(0, 2 * math.pi, 4)),
        dash_phase_m=float(rng.uniform(0, 6.0)),
    )
    label = manoeuvre_of(float(future_yaw[-1]))
    if label != manoeuvre:  # a curvature bound that cuts a turn below the threshold: the settings cannot work
        raise ValueError(f"driving synthetic: scene {split}/{index} was drawn as {manoeuvre} but its final yaw is "
                         f"{math.degrees(future_yaw[-1]):.1f} deg; raise max_curvature or lower turn_yaw_deg")
    meta = {"speed": round(speed, 6), "accel": round(accel, 6), "turn_start_s": round(start, 6),
            "ramp_s": round(ramp, 6), "hold_s": round(hold, 6), "peak_curvature": round(height, 6),
            "final_yaw_deg": round(math.degrees(float(future_yaw[-1])), 6), "road_width_m": round(look.road_width_m, 6)}
    return DrivingScene(f"{split}_{index:05d}", manoeuvre, speed, accel, curvature, history, future_xy, future_yaw,
                        _road(history, future_xy, future_yaw, cfg.view_range_m), look, meta)


def _jitter(rng: np.random.Generator, rgb, amount: float):
    return tuple(float(c * (1.0 + amount * rng.uniform(-1.0, 1.0))) for c in rgb)


def _split_key(split: str) -> int:
    """A stable integer per split name for seeding (Python's hash() is salted per process)."""
    return int.from_bytes(split.encode("utf-8")[:16].ljust(16, b"\0"), "little")


def render_scene(scene: DrivingScene, rig: RigConfig, cfg: DrivingSyntheticConfig,
                 noise_key: int) -> Dict[str, List[np.ndarray]]:
    """camera id -> uint8 frames (oldest first, the last at t0) of the scene through the rig."""
    rng = np.random.default_rng([cfg.seed, noise_key])
    out: Dict[str, List[np.ndarray]] = {}
    for cam in rig.cameras:
        frames = []
        for k in range(cfg.frames):
            back = (cfg.frames - 1 - k) * cfg.frame_dt  # seconds before t0; the history is straight along x
            img = render_camera(cam, (-scene.speed * back, 0.0), scene.road, scene.look, cfg.width, cfg.height,
                                cfg.view_range_m, cfg.supersample)
            if cfg.noise_std > 0:
                img = img + rng.normal(0.0, cfg.noise_std, img.shape)
            frames.append(np.clip(np.round(img), 0, 255).astype(np.uint8))
        out[cam.name] = frames
    return out


def _reasoning(scene: DrivingScene) -> str:
    if scene.manoeuvre == STRAIGHT:
        return "The road ahead runs straight, so the ego vehicle keeps its lane and drives straight on."
    side = "left" if scene.manoeuvre == LEFT else "right"
    return f"The road ahead bends to the {side}, so the ego vehicle follows it and turns {side}."


def scene_clip(scene: DrivingScene, rig: RigConfig, cfg: DrivingSyntheticConfig, noise_key: int) -> DrivingClip:
    return DrivingClip(
        scene_id=scene.scene_id, rig=rig.name, images=render_scene(scene, rig, cfg, noise_key),
        camera_order=[c.name for c in rig.cameras], history_xyz=scene.history_xyz, future_xy=scene.future_xy,
        v0=scene.speed, manoeuvre=scene.manoeuvre, history_yaw=np.zeros(len(scene.history_xyz)),
        future_yaw=scene.future_yaw, reasoning=_reasoning(scene) if cfg.reasoning else None, meta=dict(scene.meta))


def rigs(cfg: DrivingSyntheticConfig) -> List[RigConfig]:
    """Rig A and rig B as rendered (B at cfg.alpha)."""
    return [cfg.rig_a, blend_rig(cfg.rig_a, cfg.rig_b, cfg.alpha)]


def _plain(cfg: Any) -> Dict[str, Any]:
    """The settings as plain JSON types, from the dataclass or from Hydra's typed DictConfig of it."""
    if dataclasses.is_dataclass(cfg):
        return dataclasses.asdict(cfg)
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)


def stamp(cfg: DrivingSyntheticConfig, action_cfg: ActionSpaceConfig) -> Dict[str, Any]:
    return json.loads(json.dumps({
        "kind": "driving_synthetic", "format": FORMAT, "settings": _plain(cfg),
        "action_space": {k: getattr(action_cfg, k) for k in ("n_steps", "dt", "history_steps")}}))


def _up_to_date(root: Path, want: Dict[str, Any]) -> bool:
    try:
        have = json.loads((root / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(have, dict) and {k: have.get(k) for k in want} == want


def is_up_to_date(cfg: DrivingSyntheticConfig, root, action_cfg: ActionSpaceConfig) -> bool:
    """Whether root already holds these scenes (generation would skip them)."""
    return _up_to_date(Path(root).expanduser().resolve(), stamp(cfg, action_cfg))


def _write_scene(job) -> None:
    from cosmos_exp.data.driving_clip_files import write_clip

    cfg, action_cfg, rendered, tmp, split, i, manoeuvre = job
    scene = draw_scene(cfg, action_cfg, split, i, manoeuvre)
    for r, rig in enumerate(rendered):
        clip = scene_clip(scene, rig, cfg, noise_key=(_split_key(split) * 1_000_003 + i) * 2 + r)
        write_clip(tmp / split / rig.name / scene.scene_id, clip)


def generate_driving_synthetic(cfg: DrivingSyntheticConfig, root, action_cfg: Optional[ActionSpaceConfig] = None,
                               workers: int = 1) -> Dict[str, Any]:
    """Write the dataset at root (see the module docstring) with `workers` processes; returns what was done and
    the counts."""
    from cosmos_exp.repro.atomic import atomic_directory

    action_cfg = action_cfg or ActionSpaceConfig()
    check_config(cfg, action_cfg)
    root = Path(root).expanduser().resolve()
    want = stamp(cfg, action_cfg)
    if _up_to_date(root, want):
        return {"root": str(root), "generated": False}
    if root.exists() and (not root.is_dir() or (any(root.iterdir()) and not (root / STAMP).is_file())):
        raise ValueError(f"driving synthetic: {root} exists and was not generated here; refusing to overwrite it "
                         "(choose another root or remove it yourself)")
    start = time.perf_counter()
    rendered = rigs(cfg)
    counts: Dict[str, Dict[str, int]] = {}
    with atomic_directory(root) as tmp:
        jobs = []
        for split, n in ((cfg.train_split, cfg.num_train), (cfg.eval_split, cfg.num_eval)):
            schedule = manoeuvre_schedule(n, cfg.manoeuvre_shares, np.random.default_rng([cfg.seed, _split_key(split)]))
            jobs += [(cfg, action_cfg, rendered, tmp, split, i, m) for i, m in enumerate(schedule)]
            counts[split] = {m: schedule.count(m) for m in MANOEUVRES}
        # Every scene is a pure function of (seed, split, index): worker processes give the same files.
        if workers > 1 and len(jobs) > 1:
            import multiprocessing

            with multiprocessing.get_context("fork").Pool(workers) as pool:
                pool.map(_write_scene, jobs, chunksize=16)
        else:
            for job in jobs:
                _write_scene(job)
        (tmp / RIGS_FILE).write_text(json.dumps([_plain(r) for r in rendered], indent=1) + "\n",
                                     encoding="utf-8")
        (tmp / STAMP).write_text(json.dumps({**want, "counts": counts}, indent=1) + "\n", encoding="utf-8")
    return {"root": str(root), "generated": True, "counts": counts, "rigs": [r.name for r in rendered],
            "seconds": round(time.perf_counter() - start, 3)}
