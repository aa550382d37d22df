"""Part sft: our SFT loop against the Hugging Face Trainer on the same random model of the Cosmos-Reason2-2B
shape, the same clips and the same batch.

Ours runs as a user runs it (`cosmos-exp stage=sft`, task=caption, one process), once per ZeRO stage of the
preset (2: the recipe's sharding, which on one GPU shards nothing; 0: DeepSpeed's engine without ZeRO, the
nearest our loop comes to plain PyTorch), then the Trainer (gpu_check/hf_trainer.py). Per run: samples/s,
tokens/s, MFU, peak memory, and for ours the share of each step spent waiting for the next batch (the loop's
own data_wait_s / step_time_s). Tokens and FLOPs per sample are the mean over the training clips (the timed
steps see each clip about equally often, and the clips differ by a few per cent in length); FLOPs are cosmos_exp/train/flops.py's model FLOPs (attention included, causal), MFU against the chip's dense
bf16 peak.
"""

import statistics
from typing import Any, Dict, List

from gpu_check.context import Context, goal, throughput
from gpu_check.procs import run_child, run_sft_stage

SPEEDUP_GOAL, MFU_GOAL, DATA_WAIT_GOAL = 1.2, 0.40, 0.05


def overrides(ctx: Context, model, clips, zero_stage: int) -> List[str]:
    p = ctx.preset
    return ["model=cosmos_reason2_2b", f"model.path={model}", f"model.model_max_length={p.model_max_length}",
            "dataset=synthetic_av", f"dataset.root={clips}", "dataset.synthetic=null", *p.vision_overrides(),
            f"dataset.num_workers={p.num_workers}", "parallelism=single", f"parallelism.zero_stage={zero_stage}",
            f"train.micro_batch_size={p.micro_batch}", f"train.global_batch_size={p.micro_batch}",
            f"train.max_steps={p.sft_steps + 1000}", "train.save_every=1000000", "train.eval_every=null",
            "train.gradient_checkpointing=true", "train.warmup_ratio=null", "train.warmup_steps=1", "train.lr=1e-5",
            "train.loggers=[console]", f"paths.root={ctx.work / 'outputs'}", f"name=gpu_check_zero{zero_stage}"]


def loop_summary(records: List[Dict[str, Any]], warmup: int, batch: int, tokens: float, flops: float,
                 peak) -> Dict[str, Any]:
    """Figures of the steps after the warm-up of a run of our loop, from its metrics.jsonl records."""
    timed = records[warmup:]
    seconds = records[-1]["elapsed_s"] - records[warmup - 1]["elapsed_s"]
    out = throughput(len(timed) * batch, seconds, tokens, flops, peak)
    out.update(steps_timed=len(timed), step_time_s=statistics.median(r["step_time_s"] for r in timed),
               data_wait_share=sum(r["data_wait_s"] for r in timed) / sum(r["step_time_s"] for r in timed),
               peak_memory_gb=max(r["memory_gb"] for r in records),
               steps=[{k: r[k] for k in ("step", "step_time_s", "data_wait_s")} for r in records])
    return out


def run(ctx: Context) -> Dict[str, Any]:
    from transformers import AutoConfig

    from cosmos_exp.train.flops import sample_forward, training
    from gpu_check.assets import clip_geometry, parameter_count

    p = ctx.preset
    clips, model = ctx.clips(), ctx.model()  # a bad --data fails before minutes of drawing a model
    config = AutoConfig.from_pretrained(model)
    geometry = clip_geometry(model, clips, p)
    per_clip = [training(sample_forward(config, tokens, grids)) for tokens, grids in geometry]
    tokens = statistics.mean(t for t, _ in geometry)
    flops = statistics.mean(f.total for f in per_clip)

    runs: Dict[str, Any] = {}
    for zero in p.zero_stages:
        records = run_sft_stage(ctx.work / f"sft_zero{zero}", overrides(ctx, model, clips, zero), p.sft_steps,
                                p.child_timeout_s)
        runs[f"ours_zero{zero}"] = loop_summary(records, p.warmup_steps, p.micro_batch, tokens, flops,
                                                ctx.peak_tflops)
    trainer = run_child("hf_trainer", {"preset": p.name, "model": str(model), "clips": str(clips)}, ctx.work,
                        p.child_timeout_s)
    runs["hf_trainer"] = throughput(trainer["samples"], trainer["seconds"], tokens, flops, ctx.peak_tflops)
    runs["hf_trainer"].update(steps_timed=trainer["steps_timed"], data_wait_share=None,
                              step_time_s=trainer["seconds"] / trainer["steps_timed"],
                              peak_memory_gb=trainer["peak_memory_gb"])

    best = max((k for k in runs if k.startswith("ours")), key=lambda k: runs[k]["samples_per_s"])
    speedup = runs[best]["samples_per_s"] / runs["hf_trainer"]["samples_per_s"]
    frames, grid = p.nframes, geometry[0][1][0]
    return {
        "model": {"shape": config.model_type, "parameters": parameter_count(model), "weights": "random, seed 0"},
        "sample": {"clips": len(geometry), "frames": frames, "video_grid_thw": list(grid),
                   "vision_tokens": grid[0] * grid[1] * grid[2] // 4, "tokens_mean": tokens,
                   "tokens_min": min(t for t, _ in geometry), "tokens_max": max(t for t, _ in geometry)},
        "batch": {"micro_batch": p.micro_batch, "grad_accumulation": 1, "gradient_checkpointing": True,
                  "num_workers": p.num_workers, "warmup_steps": p.warmup_steps, "timed_steps": p.timed_steps},
        "flops_per_sample": {k: statistics.mean(f.as_dict()[k] for f in per_clip) for k in per_clip[0].as_dict()},
        "peak_tflops": ctx.peak_tflops, "peak_source": ctx.peak_source,
        "runs": runs, "best_ours": best, "speedup_vs_trainer": speedup,
        "goals": {"speedup_vs_trainer": goal(speedup, SPEEDUP_GOAL), "mfu": goal(runs[best]["mfu"], MFU_GOAL),
                  "data_wait_share": goal(runs[best]["data_wait_share"], DATA_WAIT_GOAL, at_least=False)},
    }


def line(result: Dict[str, Any]) -> str:
    def pct(x):
        return "n/a" if x is None else f"{100 * x:.1f}%"

    runs = result["runs"]
    parts = [f"{name} {r['samples_per_s']:.2f} samples/s {r['tokens_per_s']:.0f} tokens/s MFU {pct(r['mfu'])} "
             f"peak {r['peak_memory_gb']:.1f} GB" + ("" if r["data_wait_share"] is None
                                                     else f" data wait {pct(r['data_wait_share'])}")
             for name, r in runs.items()]
    s = result["sample"]
    return (f"sft: {result['model']['parameters'] / 1e9:.2f} B params, micro-batch {result['batch']['micro_batch']} x "
            f"{s['tokens_mean']:.0f} tokens ({s['frames']} frames, {s['vision_tokens']} vision tokens): "
            + "; ".join(parts) + f"; best ours ({result['best_ours']}) / Trainer = {result['speedup_vs_trainer']:.2f}x "
            f"(goal >= {SPEEDUP_GOAL}x, MFU goal >= {MFU_GOAL:.0%}, data wait < {DATA_WAIT_GOAL:.0%})")
