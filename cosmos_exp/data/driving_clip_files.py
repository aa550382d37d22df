"""Driving clips on disk (the synthetic scenes' layout; any source can be exported to it):

    <root>/<split>/<rig>/<scene id>/label.json
    <root>/<split>/<rig>/<scene id>/<camera id>_<k>.png      k = 0 .. F-1, oldest first, the last at t0

label.json: {"scene_id", "rig", "camera_order": [camera ids], "images": {camera id: [file names]},
"history_xyz": H x 3, "history_yaw": H | null, "future_xy": T x 2, "future_yaw": T | null, "v0": m/s,
"manoeuvre": "straight" | "left" | "right", "reasoning": str | null, "meta": {...}}, numbers rounded to 1e-6
(micrometres, microradians). Scene ids hold no dots or slashes.

Reading skips a bad clip (invalid JSON, missing keys, wrong shapes, missing image files) with a message naming
the file in the DataReport; strict mode raises DataError at the first.
"""

import io
import json
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from cosmos_exp.data.report import DataReport
from cosmos_exp.data.driving_clip import DrivingClip, load_image
from cosmos_exp.trajectory.action_space import MANOEUVRES

LABEL = "label.json"
_KEYS = ("scene_id", "rig", "camera_order", "images", "history_xyz", "future_xy", "v0", "manoeuvre")


def _rounded(a) -> object:
    return None if a is None else np.round(np.asarray(a, dtype=np.float64), 6).tolist()


def png_bytes(image: np.ndarray) -> bytes:
    """PNG of a uint8 H x W x 3 array; the same pixels give the same bytes (no timestamps or text chunks)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def write_clip(clip_dir: Path, clip: DrivingClip) -> None:
    """The clip's images as PNG (arrays, or image files read) and its label, into clip_dir (meant to sit inside a
    directory being built atomically, as the generator's dataset does). Any source's clips can be exported so."""
    if "." in clip.scene_id or "/" in clip.scene_id:
        raise ValueError(f"scene id {clip.scene_id!r}: no dots or slashes allowed")
    clip_dir.mkdir(parents=True, exist_ok=True)
    names: Dict[str, List[str]] = {}
    for cam in clip.camera_order:
        names[cam] = []
        for k, frame in enumerate(clip.images[cam]):
            name = f"{cam}_{k}.png"
            (clip_dir / name).write_bytes(png_bytes(frame if isinstance(frame, np.ndarray) else load_image(frame)))
            names[cam].append(name)
    label = {
        "scene_id": clip.scene_id, "rig": clip.rig, "camera_order": list(clip.camera_order), "images": names,
        "history_xyz": _rounded(clip.history_xyz), "history_yaw": _rounded(clip.history_yaw),
        "future_xy": _rounded(clip.future_xy), "future_yaw": _rounded(clip.future_yaw),
        "v0": round(float(clip.v0), 6), "manoeuvre": clip.manoeuvre, "reasoning": clip.reasoning,
        "meta": clip.meta,
    }
    (clip_dir / LABEL).write_text(json.dumps(label, indent=1) + "\n", encoding="utf-8")


class _BadClip(ValueError):
    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


def _array(label: dict, key: str, shape: Tuple, optional: bool = False):
    value = label.get(key)
    if value is None and optional:
        return None
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise _BadClip("bad_shape", f"{key} is not numeric") from None
    if a.ndim != len(shape) or any(want is not None and got != want for got, want in zip(a.shape, shape)):
        raise _BadClip("bad_shape", f"{key} has shape {list(a.shape)}, expected {[s or 'n' for s in shape]}")
    if not np.isfinite(a).all():
        raise _BadClip("bad_shape", f"{key} holds non-finite values")
    return a


def read_clip(clip_dir: Path) -> DrivingClip:
    """The clip in clip_dir, images as file paths; _BadClip (kind, reason) if it cannot be used."""
    path = clip_dir / LABEL
    try:
        label = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _BadClip("invalid_json", f"cannot read the label ({exc})") from None
    if not isinstance(label, dict):
        raise _BadClip("invalid_json", "the label is not a JSON object")
    missing = [k for k in _KEYS if k not in label]
    if missing:
        raise _BadClip("missing_keys", f"missing keys {missing}")
    if label["manoeuvre"] not in MANOEUVRES:
        raise _BadClip("missing_keys", f"manoeuvre {label['manoeuvre']!r} is not one of {list(MANOEUVRES)}")
    history = _array(label, "history_xyz", (None, 3))
    future = _array(label, "future_xy", (None, 2))
    history_yaw = _array(label, "history_yaw", (history.shape[0],), optional=True)
    future_yaw = _array(label, "future_yaw", (future.shape[0],), optional=True)
    images: Dict[str, List] = {}
    cameras = label["camera_order"]
    if not isinstance(label["images"], dict) or not isinstance(cameras, list):
        raise _BadClip("missing_keys", "images must map camera ids to file lists and camera_order be a list")
    for cam in cameras:
        files = label["images"].get(cam)
        if not files:
            raise _BadClip("missing_image", f"no images for camera {cam}")
        paths = [clip_dir / str(f) for f in files]
        absent = [p.name for p in paths if not p.is_file()]
        if absent:
            raise _BadClip("missing_image", f"image files {absent} not found")
        images[cam] = [str(p) for p in paths]
    return DrivingClip(scene_id=str(label["scene_id"]), rig=str(label["rig"]), images=images,
                       camera_order=list(cameras), history_xyz=history, future_xy=future, v0=float(label["v0"]),
                       manoeuvre=label["manoeuvre"], history_yaw=history_yaw, future_yaw=future_yaw,
                       reasoning=label.get("reasoning"), meta=dict(label.get("meta") or {}))


def read_driving_clips(root, split: str, rig: str, strict: bool = False,
                       dataset: str = "driving") -> Tuple[List[DrivingClip], DataReport]:
    """Every clip of <root>/<split>/<rig>/ in scene-id order, and the report of the ones skipped."""
    from cosmos_exp.config.errors import DataError

    rig_dir = Path(root).expanduser().resolve() / split / rig
    if not rig_dir.is_dir():
        raise DataError(f"{rig_dir}: no such directory (root / split / rig)")
    report = DataReport(dataset=dataset, split=f"{split}/{rig}")
    clips = []
    for clip_dir in sorted(p for p in rig_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        report.found += 1
        try:
            clip = read_clip(clip_dir)
        except _BadClip as exc:
            report.skip(clip_dir / LABEL, str(exc), exc.kind, strict)
            continue
        clips.append(clip)
        report.used += 1
    return clips, report
