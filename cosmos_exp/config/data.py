"""Schema of the `dataset` group: where the videos and labels are and how clips become tensors."""

from dataclasses import dataclass, field
from typing import List, Optional

from omegaconf import MISSING

from cosmos_exp.config.trajectory import DrivingSyntheticConfig, PhysicalAIAVConfig


@dataclass
class VisionConfig:
    """Frame sampling and resizing, shared by training, inference and the cosmos-rl entry."""

    backend: str = "decord"  # decord | pyav
    # Exactly one of nframes / fps (the Qwen-VL rule; cosmos-rl rejects both).
    nframes: Optional[int] = 16
    fps: Optional[float] = None
    min_frames: int = 4
    max_frames: int = 768
    min_pixels: int = 3136  # per frame, Reason 2 recipe
    max_pixels: int = 360000  # per frame, Reason 2 recipe
    total_pixels: Optional[int] = None  # over all frames; None = no cap


@dataclass
class ClipCacheConfig:
    """The preprocessed-clip cache (data/clip_cache.py): each clip's sampled, resized uint8 frames, reused by later
    epochs, runs and stages (sft on backend=deepspeed, caption, evaluate) instead of decoding again."""

    enabled: bool = True
    dir: str = "${paths.cache_dir}/clips"
    # Bound on the entries' total size; over it, the least recently read entries go first (down to 90%).
    # 16 frames at the recipe's 448x736 are ~16 MB a clip.
    max_gb: float = 100.0
    # stage=prepare: decode every clip of both splits into the cache ahead of training (resumable: cached clips
    # are skipped), with fill_workers processes (None: every core this job has), and measure the cost per clip
    # that stage=sft's plan reports.
    fill: bool = False
    fill_workers: Optional[int] = None


@dataclass
class SyntheticConfig:
    """Size of the generated driving dataset (stage=prepare dataset=synthetic_av)."""

    num_train: int = 24
    num_eval: int = 8
    seconds: float = 2.0
    fps: int = 8
    width: int = 160
    height: int = 96
    seed: int = 0
    # Order of the options of each multiple-choice question: fixed (the same for every question of a kind) or
    # shuffled (data/synthetic.py).
    mcq_option_order: str = "fixed"


@dataclass
class BlendComponent:
    """One source of a blend, read with its own label schema (data/datasets.py)."""

    name: str = MISSING
    root: str = MISSING
    weight: float = MISSING
    # caption (the cookbook layout) | mcq | lingoqa | qa (free-form answers, with "reasoning" for a reasoning
    # source): the files under <root>/<split>/ and what the answer is.
    kind: str = "caption"
    # Prompt files by name (cosmos_exp/data/prompts/); None: the dataset's system prompt, and the user prompt of
    # the kind (a caption source: dataset.user_prompt; mcq, lingoqa, qa: the prompt of that name).
    system_prompt: Optional[str] = None
    user_prompt: Optional[str] = None
    # caption only: the label keys its answer holds, in order (None: the 15 cookbook keys; a source with its own
    # keys names its own user_prompt), and how it is written (None: dataset.target_format).
    caption_keys: Optional[List[str]] = None
    target_format: Optional[str] = None


@dataclass
class DatasetConfig:
    name: str = MISSING
    # caption: cookbook layout (videos/ + metas/); mcq: multiple-choice VQA; lingoqa: free-form QA with reference
    # answers; qa: free-form answers, or reasoning + answer; blend: a weighted mix of sources of those kinds;
    # driving: trajectory clips in the clip-files layout (<split>/<rig>/<scene>/, data/driving_clip_files.py);
    # physical_ai_av: NVIDIA's PhysicalAI-AV in its own layout (data/physical_ai_av.py).
    kind: str = "caption"
    root: str = MISSING
    train_split: str = "train"
    eval_split: str = "eval"
    video_dir: str = "videos"
    meta_dir: str = "metas"
    camera_suffix: str = ".camera_front_wide_120fov"
    video_ext: str = ".mp4"
    label_suffix: str = ".label.json"
    # Prompt files under cosmos_exp/data/prompts/, chosen by name.
    system_prompt: str = "system_driving"
    user_prompt: str = "caption_15key"
    # How a caption answer is written (data/labels.py): json (ours: indented, non-ASCII kept) or fenced_json
    # (the Reason 1 cookbook's: a ```json block, indent 2, non-ASCII escaped).
    target_format: str = "json"
    # Fail on the first bad item instead of skipping and reporting it.
    strict: bool = False
    max_items: Optional[int] = None
    vision: VisionConfig = field(default_factory=VisionConfig)
    synthetic: Optional[SyntheticConfig] = None
    blend: List[BlendComponent] = field(default_factory=list)
    # blend only: seed of the weighted draws, and draws per epoch (None = all items of all components).
    blend_seed: int = 0
    blend_length: Optional[int] = None
    # blend only: what one optimizer step's samples come from. mixed: any sources (the draws shuffled);
    # per_source: one source per step (the training split laid out in blocks of train.global_batch_size, blocks in
    # a seeded order, read in that order on both backends). Both losses weigh every answer token the same, so in
    # a mixed step a one-letter answer counts ~1/300 of a caption's: per_source lets short answers be learned.
    blend_batches: str = "mixed"
    # driving: the rigs of each split to read (the <split>/<rig>/ folders; every one when empty).
    rigs: List[str] = field(default_factory=list)
    # driving: the synthetic rig scenes stage=prepare writes at root (None: the clips are already there).
    driving_synthetic: Optional[DrivingSyntheticConfig] = None
    # physical_ai_av: the reader's settings (its root is dataset.root).
    physical_ai_av: Optional[PhysicalAIAVConfig] = None
    # lingoqa: the official evaluation parquet (question_id, segment_id, question, answer rows); stage=prepare
    # converts it into <root>/<eval_split>/lingoqa.jsonl, references grouped per question (data/lingoqa.py).
    lingoqa_parquet: Optional[str] = None
    # lingoqa: where the segments' JPEG frame folders are, <root>/<lingoqa_frames_dir>/<segment_id>/.
    lingoqa_frames_dir: str = "images/val"
    # Open every video while building the dataset (catches corrupt and too-short clips before training).
    probe_videos: bool = True
    num_workers: int = 2
