"""Part caption: batched generation against batch 1 (the cookbook's way) on the same random model and clips, with
bench/bench_caption.py's timing (the whole per-item path: decode, preprocessing, generate, text) and our HF
engine (cosmos_exp/infer/engine_hf.py, batches padded left). Greedy decoding, so both must give the same
tokens; the random model writes ids beyond its test tokenizer's, so the token ids are compared as well as the
texts.

    python -m gpu_check.caption <spec.json> <result.json>     (the child this part starts)
"""

import json
import resource
import sys
from pathlib import Path
from typing import Any, Dict

from gpu_check.context import Context, goal
from gpu_check.procs import run_child

BATCHED_GOAL = 3.0


def main(spec_path: str, result_path: str) -> None:
    import torch

    from bench_caption import agreement, run_mode
    from cosmos_exp.config.generation import GenerationConfig
    from cosmos_exp.data.datasets import build_dataset
    from cosmos_exp.infer.engine_hf import HFEngine
    from cosmos_exp.repro.atomic import write_json_atomic
    from gpu_check.assets import clip_dataset
    from gpu_check.presets import REAL, SMOKE

    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    p = {x.name: x for x in (REAL, SMOKE)}[spec["preset"]]
    samples, _ = build_dataset(clip_dataset(Path(spec["clips"]), p), "train")
    items = [samples[i % len(samples)] for i in range(p.caption_videos)]
    conversations, ids = [s.conversation for s in items], [f"{s.id}_{i}" for i, s in enumerate(items)]
    gen = GenerationConfig(max_new_tokens=p.max_new_tokens, do_sample=False, device="auto")
    engine = HFEngine(spec["model"], gen, p.vision(), dtype="auto", model_max_length=p.model_max_length)
    run_mode(engine, conversations[:2], ids[:2], 1)  # warm-up: kernels, allocator, both batch shapes
    run_mode(engine, conversations[:p.caption_batch], ids[:p.caption_batch], p.caption_batch)
    t_single, single = run_mode(engine, conversations, ids, 1)
    t_batch, batched = run_mode(engine, conversations, ids, p.caption_batch)
    same_text, same_ids = agreement(single, batched)
    on_gpu = engine.device.startswith("cuda")
    peak = (torch.cuda.max_memory_allocated() / 2**30 if on_gpu
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    write_json_atomic(Path(result_path), {
        "videos": len(items), "batch_size": p.caption_batch, "max_new_tokens": p.max_new_tokens,
        "dtype": engine.dtype, "seconds_batch1": t_single, "seconds_batched": t_batch,
        "new_tokens_batch1": sum(o.num_tokens for o in single), "new_tokens_batched": sum(o.num_tokens for o in batched),
        "identical_texts": same_text, "identical_token_ids": same_ids, "peak_memory_gb": peak})


def run(ctx: Context) -> Dict[str, Any]:
    p = ctx.preset
    clips = ctx.clips()  # first: a bad --data fails before minutes of drawing a model
    r = run_child("caption", {"preset": p.name, "model": str(ctx.model()), "clips": str(clips)}, ctx.work,
                  p.child_timeout_s)
    v1, vb = r["videos"] / r["seconds_batch1"], r["videos"] / r["seconds_batched"]
    return {**r, "videos_per_s_batch1": v1, "videos_per_s_batched": vb, "ratio": vb / v1,
            "new_tokens_per_s_batch1": r["new_tokens_batch1"] / r["seconds_batch1"],
            "new_tokens_per_s_batched": r["new_tokens_batched"] / r["seconds_batched"],
            "goals": {"batched_over_batch1": goal(vb / v1, BATCHED_GOAL),
                      "identical_token_ids": goal(r["identical_token_ids"], r["videos"])}}


def line(result: Dict[str, Any]) -> str:
    n = result["videos"]
    return (f"caption: {n} videos, max_new_tokens={result['max_new_tokens']} ({result['dtype']}): batch 1 "
            f"{result['videos_per_s_batch1']:.3f} videos/s, batch {result['batch_size']} "
            f"{result['videos_per_s_batched']:.3f} videos/s, ratio {result['ratio']:.2f}x (goal >= {BATCHED_GOAL:g}x), "
            f"identical texts {result['identical_texts']}/{n}, token ids {result['identical_token_ids']}/{n}, "
            f"peak {result['peak_memory_gb']:.1f} GB")


if __name__ == "__main__":
    main(*sys.argv[1:3])
