"""Caption throughput: videos/s batched (left-padded, several videos per generate) vs batch size 1
(the cookbook's way), same random-initialised model, same videos, same run.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_caption.py                      # tiny model, CPU
    python bench/bench_caption.py --preset real --family qwen2_5_vl --videos 64 --batch-size 16   # GPU

The whole per-item path is timed (decode + preprocessing + generate + decode of text); both modes run
once untimed first. Greedy decoding, so both modes produce the same texts (checked) and do the same work
apart from padding. Appends one line to bench/RESULTS.md under its own section.
"""

import argparse
import datetime
import platform
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import List, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from timing import record_result  # noqa: E402  (bench/ is the script's own folder)

SECTION = "caption inference (bench/bench_caption.py)"

# Random-initialised shapes: "tiny" is the CI model; "real" is roughly Qwen2.5-VL-7B / Qwen3-VL-8B.
PRESETS = {
    "tiny": dict(),
    "small": dict(hidden_size=512, num_layers=4, num_heads=8, num_kv_heads=4, intermediate_size=1408,
                  vision_depth=2, vision_hidden_size=256, vision_num_heads=4),
    "real": dict(hidden_size=3584, num_layers=28, num_heads=28, num_kv_heads=4, intermediate_size=18944,
                 vision_depth=32, vision_hidden_size=1280, vision_num_heads=16),
}


def write_video(path: Path, frames: int, width: int, height: int, seed: int) -> None:
    import av

    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        base = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        for i in range(frames):
            frame = np.roll(base, i * 3, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def run_mode(engine, conversations: List[list], ids: List[str], batch_size: int):
    """Seconds for the whole per-item path in batches of `batch_size`, and each item's Generated."""
    outs = []
    start = time.perf_counter()
    for i in range(0, len(conversations), batch_size):
        features = [engine.prepare(c) for c in conversations[i : i + batch_size]]
        outs += engine.generate(features, ids[i : i + batch_size])
    if engine.device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    return time.perf_counter() - start, outs


def agreement(a: list, b: list) -> Tuple[int, int]:
    """How many items two runs gave the same text, and the same token ids."""
    return sum(x.text == y.text for x, y in zip(a, b)), sum(x.token_ids == y.token_ids for x, y in zip(a, b))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--family", default="qwen2_5_vl", choices=["qwen2_5_vl", "qwen3_vl"])
    ap.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    ap.add_argument("--videos", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--nframes", type=int, default=8)
    ap.add_argument("--width", type=int, default=160)
    ap.add_argument("--height", type=int, default=96)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = ap.parse_args()

    from cosmos_exp.config.data import VisionConfig
    from cosmos_exp.config.model import TinyModelConfig
    from cosmos_exp.data.conversation import build_conversation
    from cosmos_exp.infer.engine_hf import HFEngine
    from cosmos_exp.models.tiny import build_tiny_model

    vision = VisionConfig(nframes=args.nframes, min_frames=2, max_pixels=args.width * args.height)
    gen = SimpleNamespace(device=args.device, max_new_tokens=args.max_new_tokens, do_sample=False,
                          temperature=0.0, top_p=1.0, repetition_penalty=1.0, seed=0)
    with tempfile.TemporaryDirectory(prefix="bench_caption_") as tmp:
        tmp = Path(tmp)
        model_dir = build_tiny_model(args.family, tmp / "model", TinyModelConfig(**PRESETS[args.preset]))
        conversations, ids = [], []
        for i in range(args.videos):
            video = tmp / f"clip_{i:03d}.mp4"
            write_video(video, frames=max(16, args.nframes), width=args.width, height=args.height, seed=i)
            # Prompts of different lengths, so left padding is exercised as in a real eval set.
            question = "Describe the driving scene as JSON." + " Mention the lane." * (i % 4)
            conversations.append(build_conversation("You are a careful driving analyst.", question, str(video),
                                                    vision, None))
            ids.append(f"clip_{i:03d}")
        engine = HFEngine(str(model_dir), gen, vision, dtype=args.dtype, model_max_length=32768)
        n_params = sum(p.numel() for p in engine.model.parameters())
        warm = min(len(conversations), args.batch_size)
        run_mode(engine, conversations[:warm], ids[:warm], 1)
        run_mode(engine, conversations[:warm], ids[:warm], args.batch_size)
        t_single, single = run_mode(engine, conversations, ids, 1)
        t_batch, batched = run_mode(engine, conversations, ids, args.batch_size)

    same, same_ids = agreement(single, batched)
    tok_single, tok_batch = sum(o.num_tokens for o in single), sum(o.num_tokens for o in batched)
    v_single, v_batch = args.videos / t_single, args.videos / t_batch
    ratio = v_batch / v_single
    device = engine.device
    if device.startswith("cuda"):
        import torch

        device = torch.cuda.get_device_name(0)
    print(f"model {args.family} preset={args.preset} ({n_params / 1e6:.1f} M params, {engine.dtype}) on {device}")
    print(f"batch size 1      : {v_single:8.3f} videos/s ({tok_single / t_single:8.1f} new tokens/s)")
    print(f"batch size {args.batch_size:<6d} : {v_batch:8.3f} videos/s ({tok_batch / t_batch:8.1f} new tokens/s)")
    print(f"ratio batched / batch-1: {ratio:.2f}x; identical texts {same}/{args.videos}, "
          f"identical token ids {same_ids}/{args.videos}")
    line = (f"- {datetime.date.today()} {args.family} {args.preset} ({n_params / 1e6:.1f} M, {engine.dtype}) "
            f"on {device} ({platform.node()}): {args.videos} videos x {args.nframes} frames "
            f"{args.width}x{args.height}, max_new_tokens={args.max_new_tokens}: batch 1 {v_single:.3f} videos/s, "
            f"batch {args.batch_size} {v_batch:.3f} videos/s, ratio {ratio:.2f}x, identical texts {same}/{args.videos}, "
            f"identical token ids {same_ids}/{args.videos}")
    if not args.no_record:
        record_result(SECTION, line)


if __name__ == "__main__":
    main()
