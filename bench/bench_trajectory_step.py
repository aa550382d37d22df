"""Step time of trajectory training against caption SFT, on the same tiny backbone, in the same process.

    python bench/bench_trajectory_step.py [--steps 16] [--repeats 2] [--hidden 64] [--image-pixels 272384]

CPU: builds a tiny Qwen3-VL, prepares it with the trajectory tokens (cosmos_exp/models/trajectory_tokens.py) and
generates the synthetic caption clips in a temp dir, then alternates our loop (cosmos_exp/train/deepspeed_loop.py,
ZeRO-0, 1 process, micro 2 x accum 2, fp32) over
  - caption:  task=caption on the synthetic clips (the SFT step of bench_train_step.py);
  - stage 1:  task=trajectory_stage1, the backbone's cross-entropy on the 128 discrete future tokens;
  - stage 2:  task=trajectory_stage2, the backbone frozen under no_grad, the action expert trained;
comparing median per-step wall times (from consecutive `elapsed_s`, warm-up steps dropped). The expert is half
the backbone's width with a 4x MLP, the released expert's proportions (2048 / 8256 beside an 8B backbone's 4096).
The trajectory scenes are the tests' in-memory ones (tests/_trajectory_train.py: 2 cameras x 2 frames) until the
driving-data reader lands, resized to --image-pixels each so that a stage-1 sample has about as many tokens as a
caption sample (printed): the step times compare at about equal sequence length, but not equal content (a demo
caption sample is ~240 video patches and ~1,000 answer tokens, a trajectory sample ~1,100 image tokens from ~4,500
patches, so the vision tower weighs more in the trajectory step). stage 2 / stage 1, on the same samples, is the
expert's cost against training the backbone.
"""

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from timing import record_result  # noqa: E402  (bench/ is the script's own folder)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("WANDB_MODE", "offline")
SECTION = "trajectory train step (bench/bench_trajectory_step.py)"


def compose(root: Path, overrides, check: bool = True):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from cosmos_exp.config import register_configs
    from cosmos_exp.config.validate import typed, validate
    from cosmos_exp.run import CONF_DIR

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = typed(hydra_compose("config", overrides=["stage=sft", "experiment=demo", "model=tiny_qwen3_vl",
                                                       f"paths.root={root}", *overrides]))
    if check:
        validate(cfg)
    return cfg


def step_times(cfg, run_dir: Path, task=None):
    """Per-step wall times of one run of our loop, and the run's tokens per sample."""
    from cosmos_exp.train.deepspeed_loop import train
    from cosmos_exp.train.metrics import read_metrics

    train(cfg, run_dir, task=task)
    metrics = read_metrics(run_dir)
    elapsed = [m["elapsed_s"] for m in metrics]
    tokens = statistics.median(m["tokens_per_s"] / m["samples_per_s"] for m in metrics)
    return [b - a for a, b in zip(elapsed, elapsed[1:])], tokens


def cpu_bench(args) -> str:
    import deepspeed

    from cosmos_exp.config.model import TinyModelConfig
    from cosmos_exp.config.trajectory import TrajectoryPromptConfig
    from cosmos_exp.data.synthetic import generate_synthetic_av
    from cosmos_exp.models.tiny import build_tiny_model
    from cosmos_exp.models.trajectory_tokens import prepare_backbone
    from cosmos_exp.train.trajectory_task import TrajectoryTask
    from tests._trajectory_train import SMALL_TASK, scene_source

    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
    os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT="29691")
    root = Path(tempfile.mkdtemp(prefix="bench_traj_"))
    steps, hidden = args.steps, args.hidden
    base = build_tiny_model("qwen3_vl", root / "base", TinyModelConfig(hidden_size=hidden, intermediate_size=2 * hidden))
    backbone = prepare_backbone(base, root / "backbone", TrajectoryPromptConfig())
    common = [f"model.path={backbone}", f"train.max_steps={steps}", f"train.save_every={steps}", "train.eval_every=null",
              "train.micro_batch_size=2", "train.global_batch_size=4", "train.loggers=[console]",
              "dataset.num_workers=1", "dataset.synthetic.num_train=16", "dataset.synthetic.num_eval=2"]
    generate_synthetic_av(compose(root, common, check=False).dataset)
    caption_cfg = compose(root, common)
    expert = [f"task.trajectory.expert.hidden_size={hidden // 2}",
              f"task.trajectory.expert.intermediate_size={2 * hidden}",
              f"task.trajectory.expert.in_proj_hidden={hidden // 2}", "task.trajectory.expert.in_proj_layers=4"]
    prompt = [o for o in SMALL_TASK if o.startswith(("task.trajectory.prompt.cameras", "task.trajectory.prompt.frames"))]
    prompt += [f"task.trajectory.prompt.image_min_pixels={args.image_pixels}",
               f"task.trajectory.prompt.image_max_pixels={args.image_pixels}"]
    traj_cfgs = {stage: compose(root, [*common, f"task=trajectory_{stage}", *prompt, *expert])
                 for stage in ("stage1", "stage2")}

    times = {"caption": [], "stage1": [], "stage2": []}
    tokens = {}
    for r in range(args.repeats):  # alternate, so drifts in machine load hit all three alike
        t, tokens["caption"] = step_times(caption_cfg, root / f"caption_{r}")
        times["caption"] += t[2:]
        for stage, cfg in traj_cfgs.items():
            task = TrajectoryTask(cfg, scene_source(cfg, n_train=16, n_eval=2))
            t, tokens[stage] = step_times(cfg, root / f"{stage}_{r}", task=task)
            times[stage] += t[2:]
    ms = {k: statistics.median(v) * 1000 for k, v in times.items()}
    return (f"- {datetime.date.today()} qwen3_vl hidden {hidden}, expert {hidden // 2}/{2 * hidden} (fp32), trajectory "
            f"images {args.image_pixels} px on cpu "
            f"({platform.node() or 'host'}, {os.cpu_count()} cpus, 1 thread), ZeRO-0, 1 process, micro 2 x accum 2, "
            f"{steps} steps x {args.repeats}: caption {ms['caption']:.1f} ms/step ({tokens['caption']:.0f} tokens/sample), "
            f"stage 1 {ms['stage1']:.1f} ms/step ({tokens['stage1']:.0f} tokens/sample) = "
            f"{ms['stage1'] / ms['caption']:.2f}x caption, stage 2 {ms['stage2']:.1f} ms/step "
            f"({tokens['stage2']:.0f} tokens/sample) = {ms['stage2'] / ms['caption']:.2f}x caption, "
            f"stage 2 / stage 1 {ms['stage2'] / ms['stage1']:.2f}x (load average {os.getloadavg()[0]:.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=64)
    # 4 images x ~266 tokens + the prompt and 128 future tokens ~ the demo's 1,289-token caption samples
    parser.add_argument("--image-pixels", type=int, default=448 * 608)
    args = parser.parse_args()
    line = cpu_bench(args)
    print(line)
    record_result(SECTION, line)


if __name__ == "__main__":
    main()
