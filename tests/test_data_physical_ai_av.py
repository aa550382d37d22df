"""The PhysicalAI-AV reader on a small fake built here in the dataset's Hugging Face layout: features.csv,
clip_index.parquet, per-chunk camera and egomotion zips (and the same zips unpacked). Items are read one by one
and compared with what was written: the known trajectory to the millimetre, the frames by index and pixels."""

import csv
import io
import json
import math
import shutil
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cosmos_exp.config.errors import DataError
from cosmos_exp.config.trajectory import ActionSpaceConfig, PhysicalAIAVConfig
from cosmos_exp.data.physical_ai_av import PhysicalAIAVReader, quat_to_matrix, read_physical_ai_av, slerp
from cosmos_exp.data.synthetic import write_mp4

CAMERAS = ["camera_cross_left_120fov", "camera_front_wide_120fov"]
ACTION = ActionSpaceConfig()
T0 = 2_000_000  # us: 1.5 s of history fits, the video needs only 2.1 s
FPS = 30
FRAME_START = 12_345  # us: the first frame's timestamp (not on the 0.1 s grid, so "the last frame at or before")
FRAME_STEP = 33_333
N_FRAMES = 90
EGO_START, EGO_STEP = 7_000, 20_000  # 50 Hz egomotion, off the 0.1 s grid: interpolation is exercised


def _parquet_bytes(columns: dict) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf)
    return buf.getvalue()


def pose(t_s, clip):
    """The known world pose of a fake clip at times t_s: an arc at constant speed and yaw rate from a start pose,
    climbing slowly. Returns xyz (N, 3) and heading (N,)."""
    x0, y0, z0, psi0 = clip["start"]
    v, omega = clip["speed"], clip["yaw_rate"]
    psi = psi0 + omega * t_s
    if abs(omega) < 1e-9:
        x, y = x0 + v * t_s * math.cos(psi0), y0 + v * t_s * math.sin(psi0)
    else:
        x = x0 + v / omega * (np.sin(psi) - math.sin(psi0))
        y = y0 - v / omega * (np.cos(psi) - math.cos(psi0))
    return np.stack([x, y, z0 + 0.1 * t_s], -1), psi


def expected_local(clip, t0_s, offsets_s):
    """The known trajectory at t0 + offsets in the t0 frame, computed directly from the arc."""
    xyz, psi = pose(t0_s + offsets_s, clip)
    xyz0, psi0 = pose(np.array([t0_s]), clip)
    d = xyz - xyz0
    c, s = math.cos(psi0[0]), math.sin(psi0[0])
    local = np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1], d[:, 2]], -1)
    return local, psi - psi0[0]


def frame_colour(cam_i: int, k: int):
    return (int(k * 3) % 256, 40 + 70 * cam_i, 200 - 3 * (k % 40))


def build_fake(root, clips, unpack=False):
    """Write the layout; `clips` are dicts with id, chunk, start, speed, yaw_rate, ego_seconds and the faults:
    missing_camera (a camera's member left out), corrupt_video, invalid."""
    root.mkdir(parents=True, exist_ok=True)
    features = [("egomotion", "labels", "labels/egomotion/egomotion.chunk_{chunk_id:04d}.zip",
                 json.dumps({"egomotion": "{clip_id}.egomotion.parquet"}))]
    for cam in CAMERAS:
        features.append((cam, "camera", f"camera/{cam}/{cam}.chunk_{{chunk_id:04d}}.zip",
                         json.dumps({"video": f"{{clip_id}}.{cam}.mp4",
                                     "frame_timestamps": f"{{clip_id}}.{cam}.timestamps.parquet",
                                     "blurred_boxes": f"{{clip_id}}.{cam}.blurred_boxes.parquet"})))
    features.append(("camera_intrinsics", "calibration",
                     "calibration/camera_intrinsics/camera_intrinsics.chunk_{chunk_id:04d}.parquet", ""))
    with (root / "features.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["feature", "directory", "chunk_path", "clip_files_in_zip"])
        w.writerows(features)
    pq.write_table(pa.table({"clip_id": [c["id"] for c in clips], "chunk": [c["chunk"] for c in clips],
                             "split": [c.get("split", "train") for c in clips],
                             "clip_is_valid": [not c.get("invalid", False) for c in clips]}),
                   root / "clip_index.parquet")
    (root / "metadata").mkdir(exist_ok=True)
    pq.write_table(pa.table({"clip_id": [c["id"] for c in clips],
                             "platform_class": ["hyperion_8" if i % 2 else "hyperion_8.1" for i in range(len(clips))]}),
                   root / "metadata" / "data_collection.parquet")
    members = {}  # zip path -> {member: bytes}
    for clip in clips:
        t = (EGO_START + EGO_STEP * np.arange(int(clip["ego_seconds"] * 50))) / 1e6
        xyz, psi = pose(t, clip)
        v = clip["speed"] * np.stack([np.cos(psi), np.sin(psi)], -1)
        ego = {"timestamp": (t * 1e6).round().astype(np.int64), "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2],
               "qx": np.zeros_like(psi), "qy": np.zeros_like(psi), "qz": np.sin(psi / 2), "qw": np.cos(psi / 2),
               "vx": v[:, 0], "vy": v[:, 1], "vz": np.full_like(psi, 0.1), "ax": np.zeros_like(psi),
               "ay": np.zeros_like(psi), "az": np.zeros_like(psi),
               "curvature": np.full_like(psi, clip["yaw_rate"] / clip["speed"])}
        ego_zip = root / f"labels/egomotion/egomotion.chunk_{clip['chunk']:04d}.zip"
        members.setdefault(ego_zip, {})[f"{clip['id']}.egomotion.parquet"] = _parquet_bytes(ego)
        for i, cam in enumerate(CAMERAS):
            cam_zip = root / f"camera/{cam}/{cam}.chunk_{clip['chunk']:04d}.zip"
            entry = members.setdefault(cam_zip, {})
            if clip.get("missing_camera") == cam:
                continue
            frames = np.zeros((N_FRAMES, 32, 48, 3), np.uint8)
            for k in range(N_FRAMES):
                frames[k] = frame_colour(i, k)
            tmp = root / ".tmp.mp4"
            write_mp4(tmp, frames, FPS)
            video = tmp.read_bytes() if not clip.get("corrupt_video") else b"\x00not a video" * 50
            tmp.unlink()
            entry[f"{clip['id']}.{cam}.mp4"] = video
            entry[f"{clip['id']}.{cam}.timestamps.parquet"] = _parquet_bytes(
                {"timestamp": FRAME_START + FRAME_STEP * np.arange(N_FRAMES, dtype=np.int64)})
    for path, files in members.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if unpack:
            for name, data in files.items():
                (path.parent / name).write_bytes(data)
        else:
            with zipfile.ZipFile(path, "w") as zf:
                for name, data in sorted(files.items()):
                    zf.writestr(name, data)
    return root


GOOD = [
    {"id": "0a1b-left", "chunk": 0, "start": (100.0, -50.0, 2.0, math.radians(30)), "speed": 8.0, "yaw_rate": 0.3,
     "ego_seconds": 9.0},
    {"id": "0a1b-straight", "chunk": 0, "start": (-20.0, 5.0, 0.0, math.radians(-100)), "speed": 12.0,
     "yaw_rate": 0.0, "ego_seconds": 9.0},
    {"id": "2c3d-right", "chunk": 1, "start": (0.0, 0.0, 0.0, math.radians(200)), "speed": 6.0, "yaw_rate": -0.25,
     "ego_seconds": 9.0, "split": "eval"},
]
BAD = [
    {"id": "bad-short", "chunk": 1, "start": (0.0, 0.0, 0.0, 0.0), "speed": 5.0, "yaw_rate": 0.0, "ego_seconds": 5.0},
    {"id": "bad-camera", "chunk": 1, "start": (0.0, 0.0, 0.0, 0.0), "speed": 5.0, "yaw_rate": 0.0,
     "ego_seconds": 9.0, "missing_camera": CAMERAS[1]},
    {"id": "bad-video", "chunk": 0, "start": (0.0, 0.0, 0.0, 0.0), "speed": 5.0, "yaw_rate": 0.0,
     "ego_seconds": 9.0, "corrupt_video": True},
    {"id": "bad-invalid", "chunk": 0, "start": (0.0, 0.0, 0.0, 0.0), "speed": 5.0, "yaw_rate": 0.0,
     "ego_seconds": 9.0, "invalid": True},
]


def config(root, **kw):
    kw.setdefault("cameras", list(CAMERAS))
    return PhysicalAIAVConfig(root=str(root), t0_us=T0, video_backend="pyav", **kw)


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return build_fake(tmp_path_factory.mktemp("pai") / "zipped", GOOD)


def check_item(clip, spec, scene_id=None):
    t0 = T0 / 1e6
    hist, hist_yaw = expected_local(spec, t0, np.arange(-15, 1) * 0.1)
    fut, fut_yaw = expected_local(spec, t0, np.arange(1, 65) * 0.1)
    assert clip.scene_id == (scene_id or spec["id"]) and clip.meta["clip_id"] == spec["id"]
    assert np.abs(clip.history_xyz - hist).max() < 1e-3  # millimetres
    assert np.abs(clip.future_xy - fut[:, :2]).max() < 1e-3
    assert np.abs(clip.history_yaw - hist_yaw).max() < 1e-6 and np.abs(clip.future_yaw - fut_yaw).max() < 1e-6
    assert np.abs(clip.history_xyz[-1]).max() < 1e-9  # t0 is the origin
    assert clip.v0 == pytest.approx(spec["speed"], abs=1e-4)  # a linearly interpolated turning vector is a chord
    assert clip.manoeuvre == ("left" if spec["yaw_rate"] > 0 else "right" if spec["yaw_rate"] < 0 else "straight")
    # frames: the last at or before t0 - 0.3, ..., t0 on the written timestamps, decoded
    stamps = FRAME_START + FRAME_STEP * np.arange(N_FRAMES)
    want = [int(np.searchsorted(stamps, T0 - d, side="right") - 1) for d in (300_000, 200_000, 100_000, 0)]
    assert want == [50, 53, 56, 59]
    assert clip.camera_order == CAMERAS
    for i, cam in enumerate(CAMERAS):
        frames = np.stack(clip.images[cam])
        assert frames.shape == (4, 32, 48, 3) and frames.dtype == np.uint8
        written = np.array([frame_colour(i, k) for k in range(N_FRAMES)], np.float64)
        for got, k in zip(frames, want):
            mean = got.reshape(-1, 3).mean(0)
            assert int(np.abs(written - mean).sum(-1).argmin()) == k  # the right frame
            assert np.abs(mean - written[k]).max() < 3.0  # and its pixels, through H.264


def test_reads_the_fake_item_for_item(fake):
    clips, report = read_physical_ai_av(config(fake), ACTION)
    assert [c.scene_id for c in clips] == [g["id"] for g in GOOD]
    assert report.found == report.used == 3 and not report.skipped
    for clip, spec in zip(clips, GOOD):
        check_item(clip, spec)
    assert [c.rig for c in clips] == ["hyperion_8.1", "hyperion_8", "hyperion_8.1"]  # data_collection.parquet


def test_split_filter_and_max_clips(fake):
    clips, _ = read_physical_ai_av(config(fake, split="eval"), ACTION)
    assert [c.scene_id for c in clips] == ["2c3d-right"]
    clips, report = read_physical_ai_av(config(fake, max_clips=2), ACTION)
    assert len(clips) == 2 and report.used == 2


def test_unpacked_zips_read_the_same(tmp_path, fake):
    unpacked = build_fake(tmp_path / "unpacked", GOOD, unpack=True)
    assert not list(unpacked.rglob("*.zip"))
    clips, report = read_physical_ai_av(config(unpacked), ACTION)
    assert len(clips) == 3 and not report.skipped
    zipped, _ = read_physical_ai_av(config(fake), ACTION)
    for a, b in zip(clips, zipped):
        assert np.array_equal(a.future_xy, b.future_xy)
        assert all(np.array_equal(np.stack(a.images[c]), np.stack(b.images[c])) for c in CAMERAS)


def test_bad_clips_are_skipped_and_reported_by_file_and_reason(tmp_path):
    root = build_fake(tmp_path / "mixed", GOOD[:1] + BAD)
    clips, report = read_physical_ai_av(config(root), ACTION)
    assert [c.scene_id for c in clips] == [GOOD[0]["id"]]
    check_item(clips[0], GOOD[0])
    assert report.found == 5 and report.used == 1
    assert report.counts == {"short_egomotion": 1, "missing_camera": 1, "bad_video": 1, "invalid_clip": 1}
    reasons = dict((r.split(":", 1)[0], (f, r)) for f, r in report.skipped)
    short = reasons["short_egomotion"][1]
    assert "bad-short" in short and "egomotion covers 0.01-4.99 s, the item needs 0.50-8.40 s" in short
    assert reasons["missing_camera"][0].endswith(f"{CAMERAS[1]}.chunk_0001.zip")
    assert "bad-camera" in reasons["missing_camera"][1]
    assert "bad-video" in reasons["bad_video"][1] and reasons["bad_video"][0].endswith(".mp4")
    with pytest.raises(DataError, match="bad-short"):
        read_physical_ai_av(config(root, strict=True), ACTION)


def test_layout_errors_name_the_file(tmp_path, fake):
    with pytest.raises(DataError, match="features.csv: not found"):
        PhysicalAIAVReader(config(tmp_path))
    with pytest.raises(DataError, match="no feature 'camera_rear_tele_30fov'"):
        PhysicalAIAVReader(config(fake, cameras=["camera_rear_tele_30fov"]))
    broken = tmp_path / "broken"
    shutil.copytree(fake, broken)
    (broken / "clip_index.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="clip_index.parquet: cannot read parquet"):
        PhysicalAIAVReader(config(broken))
    with pytest.raises(DataError, match="no event_t0s column"):
        PhysicalAIAVReader(config(fake, use_event_t0s=True)).items()


def test_event_t0s_give_one_item_each(tmp_path):
    root = build_fake(tmp_path / "events", GOOD[:1])
    table = pq.read_table(root / "clip_index.parquet").to_pydict()
    table["event_t0s"] = [[T0, T0 + 500_000, 8_500_000]]  # the last one's future runs past the egomotion
    pq.write_table(pa.table(table), root / "clip_index.parquet")
    clips, report = read_physical_ai_av(config(root, use_event_t0s=True), ACTION)
    assert [c.scene_id for c in clips] == [f"{GOOD[0]['id']}@{T0}", f"{GOOD[0]['id']}@{T0 + 500_000}"]
    check_item(clips[0], GOOD[0], scene_id=f"{GOOD[0]['id']}@{T0}")
    later, _ = expected_local(GOOD[0], T0 / 1e6 + 0.5, np.arange(1, 65) * 0.1)
    assert np.abs(clips[1].future_xy - later[:, :2]).max() < 1e-3
    assert report.counts == {"short_egomotion": 1}


def test_slerp_and_quaternions():
    yaw = np.array([0.0, 1.0])
    quats = np.stack([np.zeros(2), np.zeros(2), np.sin(yaw / 2), np.cos(yaw / 2)], -1)
    mid = slerp(np.array([0, 10]), quats, np.array([2.5]))
    m = quat_to_matrix(mid)[0]
    assert math.atan2(m[1, 0], m[0, 0]) == pytest.approx(0.25)
    tilt = quat_to_matrix(np.array([math.sin(0.1), 0.0, 0.0, math.cos(0.1)]))  # 0.2 rad about x
    assert tilt @ np.array([0, 1.0, 0]) == pytest.approx([0, math.cos(0.2), math.sin(0.2)])
