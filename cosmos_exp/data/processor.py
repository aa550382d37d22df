"""Our processor: the checkpoint's tokenizer + Qwen-VL video (and still-image) preprocessing in plain torch.

It reads the checkpoint's own files, never guesses from the path:
- `config.json`: `model_type` (qwen2_5_vl | qwen3_vl) picks the family; `vision_config` gives
  patch_size, spatial_merge_size, temporal_patch_size;
- `video_preprocessor_config.json` (else `preprocessor_config.json`): image_mean, image_std, rescale_factor;
- the tokenizer files.

Prompts are rendered in Qwen's chat format (the format of the official Qwen2.5-VL / Qwen3-VL templates
for a system turn, one user turn with a video, and an optional assistant turn):

    <|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n<|vision_start|>{video}<|vision_end|>{text}<|im_end|>\n
    <|im_start|>assistant\n{target}<|im_end|>\n

where {video} is `<|video_pad|>` x (t*h*w / merge^2) for Qwen2.5-VL, and for Qwen3-VL, per temporal
patch, `<{seconds:.1f} seconds><|vision_start|>` + pads + `<|vision_end|>` (the official expansion).
Only the target and its `<|im_end|>` carry labels.
"""

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple, Union

from cosmos_exp.data.conversation import split_conversation
from cosmos_exp.data.clip_cache import Clip
from cosmos_exp.data.preprocess import (FAMILIES, VisionSpec, num_video_tokens, patchify_normalise, preprocess_images,
                                        resize_clip, target_size)
from cosmos_exp.data.sampling import FrameSamplingError, sample_frames, sampled_fps, temporal_patch_timestamps
from cosmos_exp.data.video import VideoError, open_video
from cosmos_exp.repro.atomic import write_text_atomic

if TYPE_CHECKING:  # only types: the cosmos-rl entry imports this module without Hydra
    from cosmos_exp.config.data import ClipCacheConfig
    from cosmos_exp.config.model import ModelConfig

IGNORE_INDEX = -100
PROCESSOR_FILES = ("preprocessor_config.json", "video_preprocessor_config.json")
# mm_token_type_ids values transformers uses: 0 text, 1 image, 2 video.
VIDEO_TYPE_ID = 2
IMAGE_TYPE_ID = 1


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read JSON ({exc})") from None



def load_vision_spec(model_dir: Union[str, Path]) -> VisionSpec:
    """Family, patch sizes and normalisation of the checkpoint at `model_dir`."""
    d = Path(model_dir)
    cfg_path = d / "config.json"
    if not cfg_path.is_file():
        raise ValueError(f"{cfg_path}: not found; is {d} a Hugging Face checkpoint directory?")
    cfg = _read_json(cfg_path)
    family = cfg.get("model_type")
    if family not in FAMILIES:
        raise ValueError(f"{cfg_path}: model_type {family!r} is not one of {FAMILIES}")
    vcfg = cfg.get("vision_config") or {}
    proc = {}
    for name in reversed(PROCESSOR_FILES):  # the video processor's file wins
        if (d / name).is_file():
            proc = _read_json(d / name)
            break
    default_mean = (0.48145466, 0.4578275, 0.40821073) if family == "qwen2_5_vl" else (0.5, 0.5, 0.5)
    default_std = (0.26862954, 0.26130258, 0.27577711) if family == "qwen2_5_vl" else (0.5, 0.5, 0.5)
    return VisionSpec(
        family=family,
        patch_size=int(vcfg.get("patch_size", proc.get("patch_size", 14 if family == "qwen2_5_vl" else 16))),
        temporal_patch_size=int(vcfg.get("temporal_patch_size", proc.get("temporal_patch_size", 2))),
        merge_size=int(vcfg.get("spatial_merge_size", proc.get("merge_size", 2))),
        image_mean=tuple(float(v) for v in proc.get("image_mean", default_mean)),
        image_std=tuple(float(v) for v in proc.get("image_std", default_std)),
        rescale_factor=float(proc.get("rescale_factor", 1 / 255)),
    )


def make_clip(path: str, vision, spec: VisionSpec) -> Clip:
    """Decode the sampled frames of one clip and resize them for `spec` (what the clip cache stores)."""
    with open_video(path, vision.backend) as reader:
        try:
            indices, _ = sample_frames(reader.num_frames, reader.fps, vision, spec.temporal_patch_size)
        except FrameSamplingError as exc:
            raise VideoError(f"{path}: {exc}") from None
        frames = reader.get_frames(indices)
        total, fps = reader.num_frames, reader.fps
    try:
        frames = resize_clip(frames, spec, vision)
    except ValueError as exc:
        raise VideoError(f"{path}: {exc}") from None
    return Clip(frames, indices, fps, total)


class Processor:
    """Tokenizer + video preprocessing for one checkpoint; picklable, so loader workers can use it."""

    def __init__(self, tokenizer, spec: VisionSpec, processor_files: Dict[str, dict], model_max_length: int) -> None:
        self.tokenizer = tokenizer
        self.spec = spec
        self.processor_files = processor_files
        self.model_max_length = int(model_max_length)
        # data/clip_cache.ClipCache, set by the stage from cfg.clip_cache; None: every read decodes
        self.clip_cache = None
        ids = {t: tokenizer.convert_tokens_to_ids(t) for t in
               ("<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|video_pad|>", "<|image_pad|>")}
        unk = tokenizer.unk_token_id
        missing = [t for t, i in ids.items() if i is None or (unk is not None and i == unk)]
        if missing:
            raise ValueError(f"tokenizer lacks Qwen's special tokens {missing}")
        self.im_end_id = ids["<|im_end|>"]
        self.vision_start_id = ids["<|vision_start|>"]
        self.vision_end_id = ids["<|vision_end|>"]
        self.video_pad_id = ids["<|video_pad|>"]
        self.image_pad_id = ids["<|image_pad|>"]
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else tokenizer.convert_tokens_to_ids("<|endoftext|>")

    @property
    def family(self) -> str:
        return self.spec.family

    @classmethod
    def from_pretrained(cls, model_dir: Union[str, Path], model_max_length: Optional[int] = None) -> "Processor":
        from transformers import AutoTokenizer

        d = Path(model_dir)
        spec = load_vision_spec(d)
        tokenizer = AutoTokenizer.from_pretrained(os.fspath(d))
        files = {name: _read_json(d / name) for name in PROCESSOR_FILES if (d / name).is_file()}
        if model_max_length is None:
            model_max_length = tokenizer.model_max_length if tokenizer.model_max_length < 10**7 else 4096
        return cls(tokenizer, spec, files, model_max_length)

    def save_pretrained(self, out_dir: Union[str, Path]) -> None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(os.fspath(out))
        for name, content in self.processor_files.items():
            write_text_atomic(out / name, json.dumps(content, indent=2, sort_keys=True) + "\n")

    # -- video ---------------------------------------------------------------------------------

    def encode_video(self, path: str, vision) -> dict:
        """Decode, sample and preprocess one clip (its resized frames from the clip cache when one is set);
        VideoError names the file on any problem."""
        clip = self.read_clip(path, vision)
        pixels, grid = patchify_normalise(clip.frames, self.spec)
        return {"pixel_values_videos": pixels, "video_grid_thw": grid, "indices": clip.indices,
                "video_fps": clip.video_fps, "num_frames": clip.num_frames}

    def read_clip(self, path: str, vision) -> Clip:
        """The clip's sampled frames at the model's size: from the cache, else decoded and resized (and cached)."""
        if self.clip_cache is None:
            return self.make_clip(path, vision)
        return self.clip_cache.get_or_make(path, vision, self.spec, lambda: self.make_clip(path, vision))

    def make_clip(self, path: str, vision) -> Clip:
        return make_clip(path, vision, self.spec)

    def video_token_ids(self, grid_thw, indices: List[int], video_fps: float) -> List[int]:
        """Token ids that stand for one clip between the template's <|vision_start|> and <|vision_end|>."""
        merge = self.spec.merge_size
        if self.family == "qwen2_5_vl":
            return [self.video_pad_id] * num_video_tokens(grid_thw, merge)
        t, h, w = (int(v) for v in grid_thw)
        per_frame = h * w // (merge * merge)
        stamps = temporal_patch_timestamps(indices, video_fps, self.spec.temporal_patch_size)
        ids: List[int] = []
        for i in range(t):
            ids += self.text_ids(f"<{stamps[i]:.1f} seconds>")
            ids += [self.vision_start_id] + [self.video_pad_id] * per_frame + [self.vision_end_id]
        return ids

    # -- images --------------------------------------------------------------------------------

    def encode_images(self, images, min_pixels: int, max_pixels: int) -> dict:
        """Preprocess still images uint8 [N, H, W, 3] (several cameras and frames of one sample, in prompt order)."""
        pixels, grid = preprocess_images(images, self.spec, min_pixels, max_pixels)
        return {"pixel_values": pixels, "image_grid_thw": grid}

    def image_token_ids(self, grid_thw) -> List[int]:
        """Token ids of one image, pads included: the official templates' expansion for both families."""
        n = num_video_tokens(grid_thw, self.spec.merge_size)
        return [self.vision_start_id] + [self.image_pad_id] * n + [self.vision_end_id]

    # -- text ----------------------------------------------------------------------------------

    def text_ids(self, text: str) -> List[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    @staticmethod
    def prompt_text(conversation: List[dict], add_generation_prompt: bool = True) -> str:
        """The chat text with one unexpanded `<|video_pad|>` (what engines that expand it themselves take)."""
        system, user_text, _, target = split_conversation(conversation)
        text = (f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n"
                f"<|vision_start|><|video_pad|><|vision_end|>{user_text}<|im_end|>\n")
        if add_generation_prompt:
            return text + "<|im_start|>assistant\n"
        if target is not None:
            text += f"<|im_start|>assistant\n{target}<|im_end|>\n"
        return text

    def encode(self, conversation: List[dict], vision, add_generation_prompt: bool = False) -> dict:
        """Tensors for one sample (see the module docstring for the layout)."""
        import torch

        path = split_conversation(conversation)[2]["video"]
        v = self.encode_video(path, vision)
        grid = v["video_grid_thw"][0].tolist()
        prompt, answer, tail = self._turn_ids(conversation, self.video_token_ids(grid, v["indices"], v["video_fps"]),
                                              add_generation_prompt)
        n_vision = prompt.count(self.video_pad_id)
        limit = self.model_max_length
        if len(prompt) > limit:
            t, h, w = grid
            raise ValueError(
                f"sample {path}: prompt needs {len(prompt)} tokens, {n_vision} of them vision tokens "
                f"({len(v['indices'])} frames -> grid {t}x{h}x{w}), over model_max_length={limit}; "
                "use fewer frames (dataset.vision.nframes / fps) or fewer pixels "
                "(dataset.vision.max_pixels / total_pixels)"
            )
        if len(prompt) + len(answer) > limit:
            raise ValueError(
                f"sample {path}: prompt ({len(prompt)} tokens, {n_vision} vision) + answer ({len(answer)} tokens) "
                f"exceed model_max_length={limit}; use fewer frames or fewer pixels, or a shorter target"
            )
        ids = prompt + answer + tail
        ids = ids[:limit]
        input_ids = torch.tensor(ids, dtype=torch.long)
        mm = torch.zeros_like(input_ids)
        mm[input_ids == self.video_pad_id] = VIDEO_TYPE_ID
        mm[input_ids == self.image_pad_id] = IMAGE_TYPE_ID
        out = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "mm_token_type_ids": mm,
            "pixel_values_videos": v["pixel_values_videos"],
            "video_grid_thw": v["video_grid_thw"],
        }
        if not add_generation_prompt:
            labels = torch.full_like(input_ids, IGNORE_INDEX)
            labels[len(prompt): len(prompt) + len(answer)] = torch.tensor(answer[: max(0, limit - len(prompt))])
            out["labels"] = labels
        if self.family == "qwen2_5_vl":
            # seconds per temporal patch, for Qwen2.5-VL's time positions (as its official processor gives)
            fps = sampled_fps(len(v["indices"]), v["num_frames"], v["video_fps"])
            out["second_per_grid_ts"] = torch.tensor([self.spec.temporal_patch_size / fps], dtype=torch.float32)
        return out

    def _turn_ids(self, conversation: List[dict], video_ids: List[int],
                  add_generation_prompt: bool) -> Tuple[List[int], List[int], List[int]]:
        """(prompt, answer with its <|im_end|>, tail) token ids of a conversation whose clip is `video_ids`."""
        system, user_text, _, target = split_conversation(conversation)
        prompt = self.text_ids(f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n<|vision_start|>")
        prompt += video_ids
        prompt += self.text_ids(f"<|vision_end|>{user_text}<|im_end|>\n")
        if add_generation_prompt or target is not None:
            prompt += self.text_ids("<|im_start|>assistant\n")
        answer: List[int] = []
        if target is not None and not add_generation_prompt:
            answer = self.text_ids(target) + [self.im_end_id]
        tail = self.text_ids("\n") if answer else []
        return prompt, answer, tail

    def count_tokens(self, conversation: List[dict], vision) -> Tuple[int, int]:
        """(prompt + answer tokens, vision tokens) of a training conversation as encode() lays it out, the
        clip's size read from its first sampled frame instead of decoding and resizing all of them."""
        path = split_conversation(conversation)[2]["video"]
        with open_video(path, vision.backend) as reader:
            try:
                indices, _ = sample_frames(reader.num_frames, reader.fps, vision, self.spec.temporal_patch_size)
            except FrameSamplingError as exc:
                raise VideoError(f"{path}: {exc}") from None
            height, width = reader.get_frames(indices[:1]).shape[1:3]
            fps = reader.fps
        h, w = target_size(self.spec, len(indices), height, width, vision)
        tps, patch = self.spec.temporal_patch_size, self.spec.patch_size
        grid = (-(-len(indices) // tps), h // patch, w // patch)  # frames padded to whole temporal patches
        prompt, answer, _ = self._turn_ids(conversation, self.video_token_ids(grid, indices, fps), False)
        return len(prompt) + len(answer), prompt.count(self.video_pad_id)

    # -- batching ------------------------------------------------------------------------------

    def collate(self, features: List[dict], padding_side: str = "right") -> dict:
        """Pad the text tensors, concatenate the vision tensors; ready for model(**batch)."""
        import torch

        if not features:
            raise ValueError("collate needs at least one feature")
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        longest = max(int(f["input_ids"].shape[0]) for f in features)
        pad_values = {"input_ids": self.pad_id, "attention_mask": 0, "labels": IGNORE_INDEX, "mm_token_type_ids": 0}
        batch: Dict[str, "torch.Tensor"] = {}
        for key, value in pad_values.items():
            if key not in features[0]:
                continue
            rows = []
            for f in features:
                x = f[key]
                pad = torch.full((longest - x.shape[0],), value, dtype=x.dtype)
                rows.append(torch.cat([x, pad]) if padding_side == "right" else torch.cat([pad, x]))
            batch[key] = torch.stack(rows)
        for key in ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts", "pixel_values", "image_grid_thw"):
            if key in features[0]:
                batch[key] = torch.cat([f[key] for f in features], dim=0)
        return batch


def load_processor(model: "ModelConfig", clip_cache: "ClipCacheConfig") -> Processor:
    """The processor of model.path, reading through the clip cache that clip_cache names (if it is on)."""
    from cosmos_exp.data.clip_cache import from_config

    processor = Processor.from_pretrained(model.path, model_max_length=model.model_max_length)
    processor.clip_cache = from_config(clip_cache)
    return processor
