"""Decode + preprocess throughput against raw decord decoding of the same frames, in one run; and at the
recipe's real resolution, the first pass today's way against the new way, and the clip cache against both.

    python bench/bench_video_preprocess.py [--seconds 4] [--reps 5] [--real-reps 3] [--skip-small]

Part 1 writes a 640x360 30 fps H.264 clip, samples 16 frames (the Reason 2 setting: nframes=16,
min_pixels=3136, max_pixels=360000), and times, per backend, open + decode + resize + normalise +
patchify (our Processor.encode_video path) against decord's open + get_batch of the same indices.
Prints frames/s and the ratio (goal: >= 0.8 of raw decord).

Part 2 writes a driving-like clip once into a temp dir (1936x1220, 30 fps, a keyframe every 30 frames, 10 s, H.264
with B-frames, PyAV) and measures CPU seconds per clip (process time, so clips/s per core whatever else runs) for
the same 16 frames through decode + resize + patchify + normalise: today's way (decord's get_batch; PyAV decoding
every frame up to the last wanted one) against the new way (PyAV decoding only the pictures the wanted frames need),
checks the new way's tensors equal today's bit for bit, and a clip-cache read (entry + patchify + normalise)
against the new way's fresh pass (goals: >= 1.5x, >= 20x). Each part appends a line to bench/RESULTS.md.
"""

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from timing import record_result  # noqa: E402  (bench/ is the script's own folder)



def _clip(path: Path, seconds: float) -> None:
    from cosmos_exp.data.synthetic import Scene, render_frames, write_mp4

    frames = render_frames(Scene("rain", "dusk", "left", "braking", True, "green"), int(seconds * 30), 640, 360, 0)
    write_mp4(path, frames, 30)


def _median_time(fn, reps: int) -> float:
    fn()  # warm-up (imports, caches)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


REAL_W, REAL_H, REAL_FPS, REAL_SECONDS, REAL_GOP = 1936, 1220, 30, 10, 30


def _real_clip(path: Path) -> None:
    """A textured scene panning under a bright sky, encoded frame by frame (the whole clip would be 2 GB raw)."""
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    tiles = rng.integers(0, 256, (REAL_H // 8 + 2, REAL_W // 8 + 2, 3), dtype=np.uint8)
    texture = np.kron(tiles, np.ones((8, 8, 1), dtype=np.uint8))
    sky = REAL_H * 2 // 5
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=REAL_FPS)
        stream.width, stream.height, stream.pix_fmt = REAL_W, REAL_H, "yuv420p"
        stream.codec_context.options = {"crf": "23", "preset": "veryfast", "g": str(REAL_GOP),
                                        "keyint_min": str(REAL_GOP), "sc_threshold": "0"}
        for t in range(REAL_FPS * REAL_SECONDS):
            frame = texture[(t * 3) % 16:(t * 3) % 16 + REAL_H, (t * 5) % 16:(t * 5) % 16 + REAL_W].copy()
            frame[:sky] = frame[:sky] // 4 + np.array([120, 160, 210], dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _median_cpu(fn, reps: int):
    """Median process time of fn() (all threads), and its last result."""
    out = fn()  # warm-up
    times = []
    for _ in range(reps):
        t = time.process_time()
        out = fn()
        times.append(time.process_time() - t)
    return statistics.median(times), out


def real_resolution(reps: int) -> str:
    import numpy as np
    import torch

    from cosmos_exp.config.data import VisionConfig
    from cosmos_exp.data.clip_cache import ClipCache
    from cosmos_exp.data.preprocess import patchify_normalise, preprocess_frames, resize_clip
    from cosmos_exp.data.processor import make_clip
    from cosmos_exp.data.sampling import sample_frames
    from cosmos_exp.data.video import open_video
    from golden import SPECS

    torch.set_num_threads(1)
    spec = SPECS["qwen3_vl"]
    vision = VisionConfig(backend="pyav", nframes=16, min_pixels=3136, max_pixels=360000)
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "real.mp4"
        t = time.perf_counter()
        _real_clip(clip)
        print(f"wrote {REAL_W}x{REAL_H} {REAL_FPS} fps {REAL_SECONDS} s clip (keyframe every {REAL_GOP}) "
              f"in {time.perf_counter() - t:.0f} s, {clip.stat().st_size / 1e6:.1f} MB")
        with open_video(clip, "pyav") as r:
            indices, _ = sample_frames(r.num_frames, r.fps, vision, spec.temporal_patch_size)

        def decode(backend: str, way: str):
            with open_video(clip, backend) as r:
                return r._decode_sequential(indices) if way == "sequential" else r.get_frames(indices)

        timings, outputs = {}, {}
        for name, backend, way in (("today decord", "decord", "library"), ("today pyav", "pyav", "sequential"),
                                   ("new pyav", "pyav", "needed")):
            timings[name + " decode"], frames = _median_cpu(lambda: decode(backend, way), reps)
            outputs[name] = frames
        frames = outputs["new pyav"]
        assert all(np.array_equal(frames, f) for f in outputs.values()), "decoders disagree"
        timings["resize"], resized = _median_cpu(lambda: resize_clip(frames, spec, vision), reps)
        nchw = torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()
        timings["resize contiguous NCHW"], _ = _median_cpu(lambda: torch.nn.functional.interpolate(
            nchw, size=list(resized.shape[1:3]), mode="bicubic", align_corners=False, antialias=True), reps)
        timings["patchify + normalise"], _ = _median_cpu(lambda: patchify_normalise(resized, spec), reps)
        fresh = preprocess_frames(outputs["today pyav"], spec, vision)
        new = patchify_normalise(make_clip(str(clip), vision, spec).frames, spec)
        assert torch.equal(fresh[0], new[0]) and torch.equal(fresh[1], new[1]), "the new way changed the tensors"
        cache = ClipCache(Path(tmp) / "cache", 10**10)
        key = cache.key_of(clip, vision, spec)
        cache.put(key, make_clip(str(clip), vision, spec))
        timings["cached read + patchify + normalise"], cached = _median_cpu(
            lambda: patchify_normalise(cache.get(key).frames, spec), reps)
        assert torch.equal(cached[0], fresh[0]), "the cached read changed the tensors"
    after = timings["resize"] + timings["patchify + normalise"]
    today = {k: timings[f"today {k} decode"] + after for k in ("decord", "pyav")}
    new_s = timings["new pyav decode"] + after
    cached_s = timings["cached read + patchify + normalise"]
    print("CPU seconds per clip (median of %d):" % reps)
    for k, v in timings.items():
        print(f"  {k:36s} {v:7.3f}")
    print(f"decode+resize+patchify: today decord {1 / today['decord']:.2f}, today pyav {1 / today['pyav']:.2f}, "
          f"new pyav {1 / new_s:.2f} clips/s per core = {today['pyav'] / new_s:.2f}x pyav, "
          f"{today['decord'] / new_s:.2f}x decord (goal >= 1.5x); cached read {1 / cached_s:.1f} clips/s per core "
          f"= {new_s / cached_s:.0f}x the new fresh pass (goal >= 20x); tensors identical")
    return (f"- {datetime.date.today()} {platform.node() or 'host'} ({os.cpu_count()} cpus, load average "
            f"{os.getloadavg()[0]:.1f}), {REAL_W}x{REAL_H} {REAL_FPS} fps {REAL_SECONDS} s H.264 (keyframe every "
            f"{REAL_GOP}, B-frames), 16 frames -> {resized.shape[1]}x{resized.shape[2]}, qwen3_vl, CPU seconds per "
            f"clip, median of {reps}: decode today decord {timings['today decord decode']:.2f} / pyav "
            f"{timings['today pyav decode']:.2f}, new pyav {timings['new pyav decode']:.2f}; resize "
            f"{timings['resize']:.3f} (contiguous NCHW would be {timings['resize contiguous NCHW']:.3f}); patchify + "
            f"normalise {timings['patchify + normalise']:.3f}; decode+resize+patchify today pyav "
            f"{1 / today['pyav']:.2f} / decord {1 / today['decord']:.2f}, new {1 / new_s:.2f} clips/s per core = "
            f"{today['pyav'] / new_s:.2f}x / {today['decord'] / new_s:.2f}x (goal >= 1.5x); cached read "
            f"{cached_s:.3f} s = {1 / cached_s:.0f} clips/s per core, {new_s / cached_s:.0f}x the new fresh pass "
            f"(goal >= 20x); tensors identical to today's")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--real-reps", type=int, default=3)
    ap.add_argument("--skip-small", action="store_true", help="only the real-resolution part")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    if not args.skip_small:
        small(args)
    record_result("video first pass and clip cache at 1936x1220 (bench/bench_video_preprocess.py)",
                  real_resolution(args.real_reps))


def small(args) -> None:

    import decord
    import torch

    from cosmos_exp.config.data import VisionConfig
    from golden import SPECS
    from cosmos_exp.data.preprocess import preprocess_frames
    from cosmos_exp.data.sampling import sample_frames
    from cosmos_exp.data.video import open_video

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "bench.mp4"
        _clip(clip, args.seconds)
        results = []
        for family in ("qwen2_5_vl", "qwen3_vl"):
            spec = SPECS[family]
            for backend in ("decord", "pyav"):
                vision = VisionConfig(backend=backend, nframes=16, min_pixels=3136, max_pixels=360000)
                with open_video(clip) as r:
                    indices, _ = sample_frames(r.num_frames, r.fps, vision, spec.temporal_patch_size)

                def raw():
                    vr = decord.VideoReader(str(clip), ctx=decord.cpu(0), num_threads=1)
                    vr.get_batch(indices).asnumpy()
                    del vr

                def ours():
                    with open_video(clip, backend) as r:
                        frames = r.get_frames(indices)
                    preprocess_frames(frames, spec, vision)

                t_raw = _median_time(raw, args.reps)
                t_ours = _median_time(ours, args.reps)
                n = len(indices)
                fps_raw, fps_ours = n / t_raw, n / t_ours
                ratio = fps_ours / fps_raw
                results.append((family, backend, fps_ours, fps_raw, ratio))
                print(f"{family:10s} {backend:6s}: decode+preprocess {fps_ours:7.1f} frames/s, "
                      f"raw decord {fps_raw:7.1f} frames/s, ratio {ratio:.2f} (goal >= 0.8)")
    line = (f"- {datetime.date.today()} {platform.node() or 'host'} ({os.cpu_count()} cpus, 1 thread), "
            f"640x360 30 fps {args.seconds:g} s clip, 16 frames, max_pixels=360000, median of {args.reps}: "
            + "; ".join(f"{f} {b} {o:.1f} vs raw decord {r:.1f} frames/s = {x:.2f}x" for f, b, o, r, x in results))
    record_result("video decode + preprocess (bench/bench_video_preprocess.py)", line)


if __name__ == "__main__":
    main()
