"""Part trajectory: a stage-2 step (the backbone frozen under no_grad, the action expert trained with flow matching)
on the random model of the Cosmos-Reason2-2B shape with the trajectory tokens, the expert at the released width
(2048 / 8256), the reference prompt (4 cameras x 4 frames at 163,840-196,608 pixels) on the synthetic driving
scenes: step time, samples/s, peak memory and data wait, through `cosmos-exp stage=sft task=trajectory_stage2`
with the reference's plain data parallel (ZeRO-0) on one process.
"""

import statistics
from typing import Any, Dict, List

from gpu_check import assets
from gpu_check.context import Context
from gpu_check.procs import run_sft_stage


def overrides(ctx: Context, backbone, scenes) -> List[str]:
    p = ctx.preset
    hidden, intermediate, in_hidden, in_layers = p.expert
    prompt, expert = "task.trajectory.prompt", "task.trajectory.expert"
    return ["task=trajectory_stage2", "model=cosmos_reason2_2b", f"model.path={backbone}",
            f"model.model_max_length={p.model_max_length}", "dataset=driving_synthetic",
            "dataset.driving_synthetic=null", f"dataset.root={scenes}", "dataset.rigs=[rig_a]",
            f"dataset.num_workers={p.num_workers}", "parallelism=single",
            f"{prompt}.frames_per_camera={p.frames_per_camera}", f"{prompt}.image_min_pixels={p.image_min_pixels}",
            f"{prompt}.image_max_pixels={p.image_max_pixels}", f"{expert}.hidden_size={hidden}",
            f"{expert}.intermediate_size={intermediate}", f"{expert}.in_proj_hidden={in_hidden}",
            f"{expert}.in_proj_layers={in_layers}",
            f"train.micro_batch_size={p.trajectory_micro_batch}", f"train.global_batch_size={p.trajectory_micro_batch}",
            f"train.max_steps={p.trajectory_warmup_steps + p.trajectory_timed_steps + 1000}",
            "train.save_every=1000000", "train.eval_every=null", "train.warmup_ratio=null", "train.warmup_steps=1",
            "train.lr=1e-4", "train.loggers=[console]", f"paths.root={ctx.work / 'outputs'}",
            "name=gpu_check_trajectory"]


def run(ctx: Context) -> Dict[str, Any]:
    p = ctx.preset
    backbone = assets.trajectory_backbone(ctx.work, ctx.model())
    scenes = assets.driving_scenes(ctx.work / "scenes", p)
    warm, timed = p.trajectory_warmup_steps, p.trajectory_timed_steps
    records = run_sft_stage(ctx.work / "trajectory_stage2", overrides(ctx, backbone, scenes), warm + timed,
                            p.child_timeout_s)
    steps = records[warm:]
    seconds = records[-1]["elapsed_s"] - records[warm - 1]["elapsed_s"]
    hidden, intermediate, _, _ = p.expert
    return {
        "expert": {"hidden_size": hidden, "intermediate_size": intermediate},
        "prompt": {"cameras": 4, "frames_per_camera": p.frames_per_camera,
                   "image_pixels": [p.image_min_pixels, p.image_max_pixels]},
        "micro_batch": p.trajectory_micro_batch, "steps_timed": len(steps), "seconds": seconds,
        "step_time_s": statistics.median(r["step_time_s"] for r in steps),
        "samples_per_s": len(steps) * p.trajectory_micro_batch / seconds,
        "tokens_per_sample": statistics.median(r["tokens_per_s"] / r["samples_per_s"] for r in steps),
        "data_wait_share": sum(r["data_wait_s"] for r in steps) / sum(r["step_time_s"] for r in steps),
        "peak_memory_gb": max(r["memory_gb"] for r in records),
    }


def line(result: Dict[str, Any]) -> str:
    e = result["expert"]
    return (f"trajectory stage 2: expert {e['hidden_size']}/{e['intermediate_size']}, micro-batch "
            f"{result['micro_batch']} x {result['tokens_per_sample']:.0f} prefix tokens: {result['step_time_s'] * 1000:.0f} "
            f"ms/step, {result['samples_per_s']:.2f} samples/s, peak {result['peak_memory_gb']:.1f} GB, data wait "
            f"{100 * result['data_wait_share']:.1f}%")
