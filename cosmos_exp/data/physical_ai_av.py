"""Driving clips from a local copy of NVIDIA's PhysicalAI-Autonomous-Vehicles, in its Hugging Face layout.

The layout (what the dataset's own developer kit, NVlabs physical_ai_av `dataset.py`, reads):

    features.csv            one row per feature: `feature` (camera_front_wide_120fov, egomotion, ...),
                            `directory` (camera, labels, calibration, lidar, radar), `chunk_path` (a template
                            with {chunk_id}, e.g. labels/egomotion/egomotion.chunk_{chunk_id:04d}.zip,
                            camera/<camera>/<camera>.chunk_{chunk_id:04d}.zip) and `clip_files_in_zip` (JSON:
                            member name templates with {clip_id}: a camera has "video" (<clip>.<camera>.mp4) and
                            "frame_timestamps" (<clip>.<camera>.timestamps.parquet, column `timestamp`, us);
                            egomotion has "egomotion" (<clip>.egomotion.parquet))
    clip_index.parquet      one row per clip: `clip_id`, `chunk`, and where present `split`, `clip_is_valid`,
                            `event_t0s` (key-frame times, us)
    metadata/data_collection.parquet   optional: `platform_class` per clip (hyperion_8, hyperion_8.1): the rig
    camera/..., labels/...  the chunk zips; a zip may also be unpacked in place (its members beside where the
                            zip would be), which is read the same way

Egomotion rows: `timestamp` (us from the clip start), position x, y, z and orientation quaternion qx, qy, qz, qw
of the ego (rear axle) in the clip's world frame, plus velocity, acceleration and curvature. One item per clip
at t0 (default 5.1 s, upstream's), or one per usable `event_t0s` entry:

- history: 16 poses at t0 - 1.5 s ... t0 and future: 64 at t0 + 0.1 ... 6.4 s (the action space's steps),
  interpolated (position linearly, orientation by slerp; upstream fits a cubic spline to the position) and
  moved into the t0 frame: R_t0^T (p - p_t0), yaw from R_t0^T R;
- v0: the horizontal speed of the interpolated velocity at t0 (a frame-free norm), negative when the history
  moved backwards; the history's estimate where the velocity columns are absent;
- frames: per camera the last frame at or before t0 - (F-1) frame_dt ... t0 (upstream's rule), decoded with
  cosmos_exp/data/video.py.

A clip that cannot be used (marked invalid, a missing camera or egomotion, egomotion or video that does not
cover the times, a video that does not decode) is skipped and reported by file and reason (DataReport);
with `strict` the first one raises DataError.
"""

import csv
import json
import math
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

from cosmos_exp.config.errors import DataError
from cosmos_exp.config.trajectory import ActionSpaceConfig, PhysicalAIAVConfig
from cosmos_exp.data.report import DataReport
from cosmos_exp.data.driving_clip import DrivingClip
from cosmos_exp.trajectory.action_space import manoeuvre_of

FEATURES = "features.csv"
CLIP_INDEX = "clip_index.parquet"
DATA_COLLECTION = "metadata/data_collection.parquet"
EGOMOTION = "egomotion"
US = 1_000_000


class ClipError(Exception):
    """A clip that cannot be used: `kind` for the report, the message names the reason; `path` the file."""

    def __init__(self, path, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.path, self.kind = path, kind


def _read_parquet(path: Path) -> Dict[str, list]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several kinds for unreadable files
        raise DataError(f"{path}: cannot read parquet ({exc})") from None
    return table.to_pydict()


def _read_parquet_bytes(data: bytes, where: str) -> Dict[str, list]:
    import io

    import pyarrow.parquet as pq

    try:
        return pq.read_table(io.BytesIO(data)).to_pydict()
    except Exception as exc:
        raise ClipError(where, "bad_parquet", f"cannot read parquet ({exc})") from None


def _clip_ids(table: Dict[str, list], path: Path) -> List[str]:
    """The clip id column: `clip_id`, or the unnamed index pandas writes as __index_level_0__."""
    for name in ("clip_id", "__index_level_0__"):
        if name in table:
            return [str(c) for c in table[name]]
    raise DataError(f"{path}: no clip_id column (has {sorted(table)})")


def read_features(root: Path) -> Dict[str, Tuple[str, Optional[Dict[str, str]]]]:
    """feature -> (chunk path template, member name templates or None for a plain parquet chunk)."""
    path = root / FEATURES
    if not path.is_file():
        raise DataError(f"{path}: not found; is {root} a PhysicalAI-AV copy (features.csv, clip_index.parquet)?")
    out = {}
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    for lineno, row in enumerate(rows, 2):
        missing = [k for k in ("feature", "chunk_path") if not row.get(k)]
        if missing:
            raise DataError(f"{path}:{lineno}: missing {missing}")
        files = row.get("clip_files_in_zip") or ""
        try:
            members = json.loads(files) if files.strip() else None
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{lineno}: clip_files_in_zip is not JSON ({exc})") from None
        out[row["feature"]] = (row["chunk_path"], members)
    return out


# -- poses ---------------------------------------------------------------------------------------

def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of unit quaternions (..., 4) in (x, y, z, w) order."""
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    x, y, z, w = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def slerp(times: np.ndarray, quats: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Quaternions (x, y, z, w) at `at`, spherically interpolated between the samples around each time."""
    i = np.clip(np.searchsorted(times, at, side="right") - 1, 0, len(times) - 2)
    span = (times[i + 1] - times[i]).astype(np.float64)
    u = np.clip((at - times[i]) / np.where(span > 0, span, 1.0), 0.0, 1.0)[:, None]
    a, b = quats[i], quats[i + 1].copy()
    dot = (a * b).sum(-1)
    b[dot < 0] *= -1  # the short way round
    dot = np.abs(dot).clip(max=1.0)[:, None]
    angle = np.arccos(dot)
    small = angle < 1e-6
    sin = np.where(small, 1.0, np.sin(angle))
    wa = np.where(small, 1 - u, np.sin((1 - u) * angle) / sin)
    wb = np.where(small, u, np.sin(u * angle) / sin)
    out = wa * a + wb * b
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def _interp(times: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    return np.stack([np.interp(at, times, values[:, k]) for k in range(values.shape[1])], axis=-1)


def ego_in_t0_frame(ego: Dict[str, list], t0_us: int, action_cfg: ActionSpaceConfig, where: str) -> Dict[str, object]:
    """History and future of the egomotion table in the t0 frame (see the module docstring)."""
    need = ["timestamp", "x", "y", "z", "qx", "qy", "qz", "qw"]
    missing = [k for k in need if k not in ego]
    if missing:
        raise ClipError(where, "bad_egomotion", f"egomotion lacks columns {missing}")
    order = np.argsort(np.asarray(ego["timestamp"], dtype=np.int64), kind="stable")
    ts = np.asarray(ego["timestamp"], dtype=np.int64)[order]
    step = int(round(action_cfg.dt * US))
    hist_t = t0_us + step * np.arange(-(action_cfg.history_steps - 1), 1)
    fut_t = t0_us + step * np.arange(1, action_cfg.n_steps + 1)
    if len(ts) < 2 or hist_t[0] < ts[0] or fut_t[-1] > ts[-1]:
        span = f"{ts[0] / US:.2f}-{ts[-1] / US:.2f} s" if len(ts) else "no rows"
        raise ClipError(where, "short_egomotion", f"egomotion covers {span}, the item needs "
                        f"{hist_t[0] / US:.2f}-{fut_t[-1] / US:.2f} s (t0 {t0_us / US:.2f} s)")
    col = lambda *names: np.stack([np.asarray(ego[n], dtype=np.float64)[order] for n in names], -1)  # noqa: E731
    at = np.concatenate([hist_t, fut_t])
    pos = _interp(ts, col("x", "y", "z"), at)
    rot = quat_to_matrix(slerp(ts, col("qx", "qy", "qz", "qw"), at))
    h = action_cfg.history_steps
    r0, p0 = rot[h - 1], pos[h - 1]
    local = (pos - p0) @ r0  # R0^T (p - p0) for each row
    rel = np.einsum("ji,njk->nik", r0, rot)  # R0^T R
    yaw = np.arctan2(rel[:, 1, 0], rel[:, 0, 0])
    history, future = local[:h], local[h:]
    direction = 1.0 if history[-1, 0] - history[0, 0] >= 0 else -1.0
    if all(k in ego for k in ("vx", "vy")):
        v = _interp(ts, col("vx", "vy"), np.array([t0_us]))[0]
        v0 = direction * float(np.hypot(v[0], v[1]))
    else:
        import torch

        from cosmos_exp.trajectory.action_space import estimate_v0

        v0 = float(estimate_v0(torch.as_tensor(history[:, :2]), action_cfg.dt, action_cfg.v0_window))
    return {"history_xyz": history, "history_yaw": yaw[:h], "future_xy": future[:, :2], "future_yaw": yaw[h:],
            "v0": v0}


# -- the reader ----------------------------------------------------------------------------------

class PhysicalAIAVReader:
    """Items (clip id, t0) of a local PhysicalAI-AV copy and the DrivingClip of each; iterating skips and
    reports bad clips."""

    def __init__(self, cfg: PhysicalAIAVConfig, action_cfg: Optional[ActionSpaceConfig] = None) -> None:
        self.cfg = cfg
        self.action_cfg = action_cfg or ActionSpaceConfig()
        self.root = Path(cfg.root).expanduser().resolve()
        if not self.root.is_dir():
            raise DataError(f"{self.root}: PhysicalAI-AV root not found")
        self.features = read_features(self.root)
        for name in [EGOMOTION] + list(cfg.cameras):
            if name not in self.features:
                raise DataError(f"{self.root / FEATURES}: no feature {name!r} (has {sorted(self.features)})")
        index_path = self.root / CLIP_INDEX
        if not index_path.is_file():
            raise DataError(f"{index_path}: not found")
        table = _read_parquet(index_path)
        if "chunk" not in table:
            raise DataError(f"{index_path}: no chunk column (has {sorted(table)})")
        self.index = table
        self.clip_ids = _clip_ids(table, index_path)
        self.platform: Dict[str, str] = {}
        collection = self.root / DATA_COLLECTION
        if collection.is_file():
            meta = _read_parquet(collection)
            if "platform_class" in meta:
                self.platform = dict(zip(_clip_ids(meta, collection), (str(p) for p in meta["platform_class"])))
        self.report = DataReport(dataset="physical_ai_av", split=cfg.split or "all")

    def items(self) -> List[Tuple[int, str, int]]:
        """(row in clip_index, clip id, t0 in us) of every item, in clip_index order, the split filter applied."""
        out = []
        splits = self.index.get("split")
        events = self.index.get("event_t0s")
        for row, clip_id in enumerate(self.clip_ids):
            if self.cfg.split is not None and splits is not None and splits[row] != self.cfg.split:
                continue
            if self.cfg.use_event_t0s:
                if events is None:
                    raise DataError(f"{self.root / CLIP_INDEX}: no event_t0s column (use_event_t0s is set)")
                out.extend((row, clip_id, int(t)) for t in (events[row] or []))
            else:
                out.append((row, clip_id, int(self.cfg.t0_us)))
        return out

    def __iter__(self) -> Iterator[DrivingClip]:
        used = 0
        for row, clip_id, t0 in self.items():
            if self.cfg.max_clips and used >= self.cfg.max_clips:
                return
            self.report.found += 1
            try:
                clip = self.load(row, clip_id, t0)
            except ClipError as exc:
                self.report.skip(exc.path, f"clip {clip_id} at t0 {t0 / US:.2f} s: {exc}", exc.kind, self.cfg.strict)
                continue
            self.report.used += 1
            used += 1
            yield clip

    # -- one clip ------------------------------------------------------------------------------

    def _member(self, feature: str, chunk: int, clip_id: str, key: str) -> Tuple[bytes, str]:
        """The bytes of one clip file of a feature, from its chunk zip or from the zip unpacked in place."""
        template, members = self.features[feature]
        if not members or key not in members:
            raise ClipError(self.root / FEATURES, "bad_features", f"feature {feature} has no {key!r} member")
        zip_path = self.root / template.format(chunk_id=chunk)
        name = members[key].format(clip_id=clip_id)
        loose = zip_path.parent / name
        kind = "missing_egomotion" if feature == EGOMOTION else "missing_camera"
        if zip_path.is_file():
            try:
                with zipfile.ZipFile(zip_path) as zf:
                    return zf.read(name), f"{zip_path}:{name}"
            except KeyError:
                raise ClipError(zip_path, kind, f"{name} is not in the chunk zip") from None
            except (zipfile.BadZipFile, OSError) as exc:
                raise ClipError(zip_path, kind, f"cannot read the chunk zip ({exc})") from None
        if loose.is_file():
            return loose.read_bytes(), str(loose)
        raise ClipError(zip_path, kind, f"neither the chunk zip nor {loose} exists")

    def _frames(self, camera: str, chunk: int, clip_id: str, t0: int) -> np.ndarray:
        from cosmos_exp.data.video import VideoError, open_video

        stamps_bytes, stamps_where = self._member(camera, chunk, clip_id, "frame_timestamps")
        stamps = _read_parquet_bytes(stamps_bytes, stamps_where)
        if "timestamp" not in stamps:
            raise ClipError(stamps_where, "bad_parquet", f"no timestamp column (has {sorted(stamps)})")
        ts = np.asarray(stamps["timestamp"], dtype=np.int64)
        step = int(round(self.cfg.frame_dt * US))
        want = t0 - step * np.arange(self.cfg.frames - 1, -1, -1)
        if len(ts) == 0 or want[0] < ts[0] or want[-1] > ts[-1]:
            span = f"{ts[0] / US:.2f}-{ts[-1] / US:.2f} s" if len(ts) else "no frames"
            raise ClipError(stamps_where, "short_video", f"{camera} frames cover {span}, the item needs "
                            f"{want[0] / US:.2f}-{want[-1] / US:.2f} s")
        indices = (np.searchsorted(ts, want, side="right") - 1).tolist()
        video, where = self._member(camera, chunk, clip_id, "video")
        with tempfile.TemporaryDirectory(prefix="pai_") as tmp:
            path = Path(tmp) / f"{camera}.mp4"
            path.write_bytes(video)
            try:
                with open_video(path, self.cfg.video_backend) as reader:
                    return reader.get_frames(indices)
            except VideoError as exc:
                raise ClipError(where, "bad_video", str(exc).replace(f"{path}: ", "")) from None

    def load(self, row: int, clip_id: str, t0: int) -> DrivingClip:
        valid = self.index.get("clip_is_valid")
        if valid is not None and valid[row] is False:
            raise ClipError(self.root / CLIP_INDEX, "invalid_clip", "clip_is_valid is false")
        chunk = int(self.index["chunk"][row])
        ego_bytes, ego_where = self._member(EGOMOTION, chunk, clip_id, "egomotion")
        ego = ego_in_t0_frame(_read_parquet_bytes(ego_bytes, ego_where), t0, self.action_cfg, ego_where)
        images = {cam: list(self._frames(cam, chunk, clip_id, t0)) for cam in self.cfg.cameras}
        scene = clip_id if not self.cfg.use_event_t0s else f"{clip_id}@{t0}"
        return DrivingClip(
            scene_id=scene, rig=self.platform.get(clip_id, "physical_ai_av"), images=images,
            camera_order=list(self.cfg.cameras), history_xyz=ego["history_xyz"], future_xy=ego["future_xy"],
            v0=ego["v0"], manoeuvre=manoeuvre_of(float(ego["future_yaw"][-1])), history_yaw=ego["history_yaw"],
            future_yaw=ego["future_yaw"], meta={"clip_id": clip_id, "chunk": chunk, "t0_us": t0,
                                                "final_yaw_deg": math.degrees(float(ego["future_yaw"][-1]))})


def read_physical_ai_av(cfg: PhysicalAIAVConfig, action_cfg: Optional[ActionSpaceConfig] = None,
                        ) -> Tuple[List[DrivingClip], DataReport]:
    """Every usable item and the report of the skipped ones. All frames are decoded into memory (16 full-size
    frames are ~100 MB a clip): for more than a few clips iterate a PhysicalAIAVReader instead."""
    reader = PhysicalAIAVReader(cfg, action_cfg)
    clips = list(reader)
    return clips, reader.report
