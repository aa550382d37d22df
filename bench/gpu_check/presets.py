"""The two sizes the GPU check runs at: `real` on one H100/H200, `smoke` on a CPU (CI), the same code path."""

from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple


def reason2_2b() -> Any:
    from cosmos_exp.models.shapes import reason2_2b_config

    return reason2_2b_config()


def tiny_qwen3_vl() -> Any:
    from cosmos_exp.config.model import TinyModelConfig
    from cosmos_exp.models.tiny import SPECIAL_TOKENS, tiny_config

    # build_shaped_model gives it the tokenizer's special-token ids (its first ids, in this order)
    return tiny_config("qwen3_vl", TinyModelConfig(), {t: i for i, t in enumerate(SPECIAL_TOKENS)}, 512)


@dataclass(frozen=True)
class Preset:
    name: str
    model_config: Callable[[], Any]  # the architecture; random weights, tiny tokenizer
    weights_dtype: str  # how the random model is stored (training loads it in float32, as for real weights)
    # Caption clips (dataset=synthetic_av, drawn at a camera's resolution) and how a sample sees them.
    clips: int
    clip_seconds: float
    clip_fps: int
    clip_width: int
    clip_height: int
    nframes: int
    max_pixels: int  # per frame
    model_max_length: int
    # SFT: our loop at each ZeRO stage, then the Hugging Face Trainer; steps after the warm-up are timed.
    micro_batch: int
    warmup_steps: int
    timed_steps: int
    num_workers: int
    zero_stages: Tuple[int, ...]
    # Captioning: batched against batch 1 on the same clips (cycled to `caption_videos` items).
    caption_videos: int
    caption_batch: int
    max_new_tokens: int
    # Trajectory stage 2 on the synthetic driving scenes (4 cameras), the expert at (hidden, intermediate,
    # in_proj_hidden, in_proj_layers).
    scenes: int
    scene_width: int
    scene_height: int
    frames_per_camera: int
    image_min_pixels: int
    image_max_pixels: int
    expert: Tuple[int, int, int, int]
    trajectory_micro_batch: int
    trajectory_warmup_steps: int
    trajectory_timed_steps: int
    # The chip's peak where flops.PEAK_BF16_TFLOPS does not know it (smoke: a nominal 1 TFLOP/s, so the MFU
    # arithmetic runs; the figure means nothing on a CPU).
    nominal_peak_tflops: Optional[float]
    child_timeout_s: int  # one training run, the Trainer or the captioning

    @property
    def sft_steps(self) -> int:
        return self.warmup_steps + self.timed_steps

    def vision_overrides(self) -> List[str]:
        """dataset.vision as config overrides (frames and per-frame pixel budget of the recipe)."""
        return [f"dataset.vision.nframes={self.nframes}", "dataset.vision.fps=null", "dataset.vision.min_frames=2",
                f"dataset.vision.max_pixels={self.max_pixels}"]

    def vision(self) -> Any:
        from cosmos_exp.config.data import VisionConfig

        return VisionConfig(nframes=self.nframes, fps=None, min_frames=2, max_pixels=self.max_pixels)


# 16 frames of 1280x720 at the Reason 2 recipe's 360,000 pixels a frame: 8 temporal patches of 28 x 50 patches =
# 2,800 vision tokens; with the caption prompt and target (tiny tokenizer) a sample is 4,000-4,100 tokens, so
# the length guard sits at 4,608 instead of the recipe's 4,096. Micro-batch 4 is the recipe's per-GPU batch.
REAL = Preset(
    name="real", model_config=reason2_2b, weights_dtype="bfloat16",
    clips=8, clip_seconds=2.0, clip_fps=8, clip_width=1280, clip_height=720, nframes=16, max_pixels=360000,
    model_max_length=4608,
    micro_batch=4, warmup_steps=3, timed_steps=10, num_workers=4, zero_stages=(2, 0),
    caption_videos=16, caption_batch=8, max_new_tokens=64,
    # The reference prompt (4 cameras x 4 frames at 163,840-196,608 pixels: 576 x 320, 180 tokens an image) and
    # expert. The scenes are drawn at 128 x 72 (drawing 16:9 at full size takes minutes of CPU); the processor
    # scales them up to the prompt's pixel bounds, so the tokens are the reference's.
    scenes=8, scene_width=128, scene_height=72, frames_per_camera=4, image_min_pixels=163840,
    image_max_pixels=196608, expert=(2048, 8256, 1024, 4), trajectory_micro_batch=4, trajectory_warmup_steps=2,
    trajectory_timed_steps=8,
    nominal_peak_tflops=None, child_timeout_s=240,  # each is about a minute: a hung one must not eat the lease
)

SMOKE = Preset(
    name="smoke", model_config=tiny_qwen3_vl, weights_dtype="float32",
    clips=4, clip_seconds=1.0, clip_fps=8, clip_width=160, clip_height=96, nframes=4, max_pixels=16384,
    model_max_length=4096,
    micro_batch=2, warmup_steps=1, timed_steps=2, num_workers=1, zero_stages=(2,),  # ZeRO-0: the same path
    caption_videos=4, caption_batch=2, max_new_tokens=4,
    scenes=3, scene_width=64, scene_height=64, frames_per_camera=2, image_min_pixels=1024, image_max_pixels=4096,
    expert=(32, 64, 32, 2), trajectory_micro_batch=2, trajectory_warmup_steps=1, trajectory_timed_steps=2,
    nominal_peak_tflops=1.0, child_timeout_s=300,
)
