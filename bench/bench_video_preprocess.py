"""Decode + preprocess throughput against raw decord decoding of the same frames, in one run.

    python bench/bench_video_preprocess.py [--seconds 4] [--reps 5]

Writes a 640x360 30 fps H.264 clip, samples 16 frames (the Reason 2 setting: nframes=16,
min_pixels=3136, max_pixels=360000), and times, per backend, open + decode + resize + normalise +
patchify (our Processor.encode_video path) against decord's open + get_batch of the same indices.
Prints frames/s and the ratio (goal: >= 0.8 of raw decord) and appends a line to bench/RESULTS.md.
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()

    import decord
    import torch

    from cosmos_exp.config.data import VisionConfig
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
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
