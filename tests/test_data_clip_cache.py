"""The preprocessed-clip cache on real clips and a real tiny processor: exact reads, misses on every change, racing
and killed writers, the size bound; and the PyAV reader's partial decode against a full sequential one."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from cosmos_exp.config.data import VisionConfig
from cosmos_exp.config.model import TinyModelConfig
from cosmos_exp.data import clip_cache as cc
from cosmos_exp.data.clip_cache import Clip, ClipCache
from cosmos_exp.data.content_hash import ContentHashes
from cosmos_exp.data.processor import Processor
from cosmos_exp.data.video import open_video
from tests._data_fixtures import make_synthetic

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache_data")
    make_synthetic(root, num_train=2, num_eval=0)
    return sorted((root / "train" / "videos").iterdir())


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from cosmos_exp.models.tiny import build_tiny_model

    return build_tiny_model("qwen3_vl", tmp_path_factory.mktemp("m") / "m", TinyModelConfig())


def _processor(model_dir, cache=None):
    p = Processor.from_pretrained(model_dir)
    p.clip_cache = cache
    return p


def _entries(root: Path):
    return sorted(p.name for p in (root / "entries").rglob("*") if p.is_file())


def test_cached_read_equals_fresh_preprocessing_bit_for_bit(model_dir, clips, tmp_path):
    vision = VisionConfig(nframes=8)
    fresh = _processor(model_dir).encode_video(str(clips[0]), vision)
    cached_proc = _processor(model_dir, ClipCache(tmp_path, 10**9))
    first = cached_proc.encode_video(str(clips[0]), vision)
    made = []
    cached_proc.make_clip = lambda *a: made.append(a)  # a hit must not decode
    second = cached_proc.encode_video(str(clips[0]), vision)
    assert made == [] and cached_proc.clip_cache.hits == 1 and cached_proc.clip_cache.misses == 1
    for out in (first, second):
        assert torch.equal(out["pixel_values_videos"], fresh["pixel_values_videos"])
        assert torch.equal(out["video_grid_thw"], fresh["video_grid_thw"])
        assert (out["indices"], out["video_fps"], out["num_frames"]) == (
            fresh["indices"], fresh["video_fps"], fresh["num_frames"])
    assert len(_entries(tmp_path)) == 1


def test_any_change_of_setting_content_or_version_misses(model_dir, clips, tmp_path, monkeypatch):
    cache = ClipCache(tmp_path, 10**9)
    spec = _processor(model_dir).spec
    base = VisionConfig(nframes=8)
    key = cache.key_of(clips[0], base, spec)
    changed = [dataclasses.replace(base, nframes=4), dataclasses.replace(base, nframes=None, fps=2.0),
               dataclasses.replace(base, backend="pyav"), dataclasses.replace(base, min_pixels=1000),
               dataclasses.replace(base, max_pixels=20000), dataclasses.replace(base, total_pixels=50000),
               dataclasses.replace(base, min_frames=2), dataclasses.replace(base, max_frames=64)]
    keys = {cache.key_of(clips[0], v, spec) for v in changed}
    assert key not in keys and len(keys) == len(changed)
    assert cache.key_of(clips[0], base, dataclasses.replace(spec, family="qwen2_5_vl")) != key
    assert cache.key_of(clips[1], base, spec) != key
    monkeypatch.setattr(cc, "PREPROCESS_VERSION", cc.PREPROCESS_VERSION + 1)
    assert cache.key_of(clips[0], base, spec) != key
    monkeypatch.undo()
    # new bytes at the same path: the recorded hash is not reused, and the old entry is never read
    proc = _processor(model_dir, cache)
    proc.encode_video(str(clips[0]), base)
    copy = tmp_path / "clip.mp4"
    copy.write_bytes(clips[0].read_bytes())
    proc.encode_video(str(copy), base)
    assert (cache.hits, cache.misses) == (1, 1)  # same content elsewhere: the same entry
    copy.write_bytes(clips[1].read_bytes())
    out = proc.encode_video(str(copy), base)
    assert cache.misses == 2
    assert torch.equal(out["pixel_values_videos"], _processor(model_dir).encode_video(str(clips[1]), base)["pixel_values_videos"])


def test_content_hash_is_read_once_while_path_size_and_time_hold(clips, tmp_path, monkeypatch):
    calls = []
    real = sys.modules["cosmos_exp.data.content_hash"]._hash_content
    monkeypatch.setattr("cosmos_exp.data.content_hash._hash_content", lambda p: calls.append(p) or real(p))
    clip = tmp_path / "c.mp4"
    clip.write_bytes(clips[0].read_bytes())
    first = ContentHashes(tmp_path / "idx").of(clip)
    assert ContentHashes(tmp_path / "idx").of(clip) == first and len(calls) == 1  # another process's index record
    st = clip.stat()
    os.utime(clip, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert ContentHashes(tmp_path / "idx").of(clip) == first and len(calls) == 2


_WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from cosmos_exp.data import clip_cache as cc
    root, start, mode = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    frames = np.arange(4 * 64 * 96 * 3, dtype=np.uint8).reshape(4, 64, 96, 3)
    clip = cc.Clip(frames, [0, 3, 6, 9], 8.0, 16)
    if mode == "kill":  # die halfway through the entry's bytes
        import os, signal
        real = cc._write_entry
        def half(f, c):
            f.write(cc.MAGIC + b"x" * 1000)
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        cc._write_entry = half
    while time.time() < start:
        time.sleep(0.001)
    cc.ClipCache(root, 10**9).put("ab" + "0" * 62, clip)
""")


def _writers(root: Path, n: int, mode: str):
    start = time.time() + 1.5  # every writer imported and waiting, then all write at once
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(root), str(start), mode], env=env)
             for _ in range(n)]
    return [p.wait(timeout=60) for p in procs]


def test_concurrent_writers_leave_one_valid_entry_and_a_killed_one_no_partial_file(tmp_path):
    key = "ab" + "0" * 62
    assert _writers(tmp_path, 4, "put") == [0, 0, 0, 0]
    assert [p.name for p in (tmp_path / "entries").rglob("*")] == ["ab", key + ".clip"]
    clip = ClipCache(tmp_path, 10**9).get(key)
    assert clip is not None and clip.indices == [0, 3, 6, 9]
    assert np.array_equal(clip.frames, np.arange(clip.frames.size, dtype=np.uint8).reshape(4, 64, 96, 3))

    killed = tmp_path / "killed"
    assert _writers(killed, 2, "kill") == [-signal.SIGKILL] * 2
    temps = [p for p in (killed / "entries" / "ab").iterdir()]
    assert len(temps) == 2 and all(p.name.endswith(".tmp") for p in temps)  # only temp files, never the entry
    cache = ClipCache(killed, 10**9)
    assert cache.get(key) is None
    assert cache.sweep()["removed_temps"] == 2
    assert list((killed / "entries" / "ab").iterdir()) == []


def test_size_bound_evicts_least_recently_read_down_to_ninety_percent(tmp_path):
    frames = np.zeros((2, 100, 100, 3), dtype=np.uint8)  # 60 kB an entry
    size = len(cc.MAGIC) + 8 + len(cc.json.dumps({"shape": [2, 100, 100, 3], "indices": [0, 1], "video_fps": 1.0,
                                                   "num_frames": 2}).encode()) + frames.nbytes
    cache = ClipCache(tmp_path, 10 * size)  # room for 10
    keys = [f"{i:02d}" + "0" * 62 for i in range(10)]
    for i, key in enumerate(keys):
        cache.put(key, Clip(frames, [0, 1], 1.0, 2))
        os.utime(cache.path_of(key), (1000 + i, 1000 + i))  # written in this order, oldest first
    assert cache.get(keys[0]) is not None  # read now: the most recent
    assert len(_entries(tmp_path)) == 10  # at the bound, not over it
    cache.put("99" + "0" * 62, Clip(frames, [0, 1], 1.0, 2))  # 11 entries: over; evict down to <= 9
    left = {Path(p).stem for p in _entries(tmp_path)}
    assert len(left) == 9
    assert keys[1] not in left and keys[2] not in left  # the two least recently read
    assert keys[0] in left and "99" + "0" * 62 in left


def test_pyav_partial_decode_gives_the_sequential_decode_frames(tmp_path):
    import av

    path = tmp_path / "gops.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", format="mp4") as out:  # keyframe every 8 frames, B-frames: a real GOP structure
        s = out.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.codec_context.options = {"g": "8", "bf": "2", "sc_threshold": "0", "threads": "1"}
        base = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
        for t in range(40):
            for packet in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(base[t % 16:t % 16 + 48, t:t + 64]),
                                                              format="rgb24")):
                out.mux(packet)
        for packet in s.encode():
            out.mux(packet)
    with open_video(path, "pyav") as reader:
        for indices in ([0], [39], [38, 39], [5, 3, 5], [1, 9, 17, 30], list(range(0, 40, 3)), [7, 8, 23, 24]):
            got = reader._decode_needed(indices)
            assert np.array_equal(got, reader._decode_sequential(indices)), indices
            assert np.array_equal(reader.get_frames(indices), got)


def test_prepare_fills_the_cache_resumably_and_the_sft_plan_reports_its_cost(tmp_path):
    from conftest import run_cli

    args = ["stage=prepare", "model=tiny_qwen3_vl", f"paths.root={tmp_path}/outputs", "dataset.synthetic.num_train=4",
            "dataset.synthetic.num_eval=2", "clip_cache.fill=true", "clip_cache.fill_workers=2"]
    first = run_cli(args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "clip cache train: 100%" in first.stderr  # the progress bar
    second = run_cli(args, cwd=tmp_path)  # resumed: every clip is already there
    assert second.returncode == 0, second.stderr[-3000:]
    runs = sorted((tmp_path / "outputs" / "runs").glob("*/*_prepare_*"))
    results = [json.loads((r / "run.json").read_text())["result"]["clip_cache"] for r in runs]
    assert [r["train"]["decoded_now"] for r in results] == [4, 0]
    assert all(r["train"]["cached"] == 4 and r["eval"]["cached"] == 2 for r in results)
    assert results[1]["train"]["fresh_s"] == results[0]["train"]["fresh_s"] > 0  # the first fill's figure kept
    entries = list((tmp_path / "outputs" / "cache" / "clips" / "entries").rglob("*.clip"))
    assert 1 <= len(entries) <= 6
    plan = run_cli(["stage=sft", "model=tiny_qwen3_vl", f"paths.root={tmp_path}/outputs", "dry_run=true",
                    "dataset.synthetic.num_train=4", "dataset.synthetic.num_eval=2"], cwd=tmp_path,
                   env={"SLURM_CPUS_PER_TASK": "3"})
    assert plan.returncode == 0, plan.stderr[-3000:]
    note = next(line for line in plan.stdout.splitlines() if "note: data:" in line)
    assert "per clip read from the filled clip cache (measured by stage=prepare)" in note
    assert "this job has 3 (SLURM_CPUS_PER_TASK x 1 tasks)" in note and "WARNING" not in note
    # other settings: no measurement, so the 1.6 s real-resolution figure is assumed, and 1 core is too few
    off = run_cli(["stage=sft", "model=tiny_qwen3_vl", f"paths.root={tmp_path}/outputs", "dry_run=true",
                   "dataset.synthetic.num_train=4", "dataset.vision.nframes=4", "clip_cache.enabled=false"],
                  cwd=tmp_path, env={"SLURM_CPUS_PER_TASK": "1"})
    note = next(line for line in off.stdout.splitlines() if "note: data:" in line)
    assert "1.6 s of CPU per clip assumed" in note and "~16 cores per node" in note
    assert "WARNING: data will be the bottleneck" in note and "clip_cache.enabled=true" in note
