"""Golden comparison of our preprocessing with the official Hugging Face video processors.

The official Qwen2VLVideoProcessor (used by Qwen2.5-VL) and Qwen3VLVideoProcessor need torchvision,
which CI lacks. Where torchvision exists (the lent GPU machines have it, and so does a side venv with the
registry's torch + torchvision wheels, which run on a CPU-only machine too), run

    python tools/golden.py --out tests/fixtures/golden

to (1) compare ours with the official processors on the cases below (exits 1 on a mismatch) and
(2) write `<family>_<case>.npz` (official pixel_values_videos + video_grid_thw) and `manifest.json`
(transformers / torch / torchvision versions, cases, max differences). tests/test_data_golden.py
compares our output with these files in CI. The official processors run on CPU tensors, the path
whose uint8 bicubic kernel we reproduce.

Inputs are computed from integer formulas (no random generator), so they are identical everywhere.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from cosmos_exp.config.data import VisionConfig
from cosmos_exp.data.preprocess import VisionSpec, preprocess_frames

SPECS = {
    "qwen2_5_vl": VisionSpec("qwen2_5_vl", 14, 2, 2, (0.48145466, 0.4578275, 0.40821073),
                             (0.26862954, 0.26130258, 0.27577711)),
    "qwen3_vl": VisionSpec("qwen3_vl", 16, 2, 2, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}
# name: (frames, height, width, min_pixels, max_pixels) - downscale with antialias, upscale, no-op-ish
CASES: Dict[str, Tuple[int, int, int, int, int]] = {
    "down": (4, 150, 262, 3136, 12000),
    "up": (2, 50, 90, 12544, 360000),
    "odd": (6, 96, 160, 3136, 360000),
}


def case_frames(t: int, h: int, w: int) -> np.ndarray:
    """Deterministic uint8 frames with edges, gradients and texture (integer arithmetic only)."""
    tt, yy, xx, cc = np.meshgrid(np.arange(t), np.arange(h), np.arange(w), np.arange(3), indexing="ij")
    v = (xx * 7 + yy * 13 + tt * 29 + cc * 61) % 256
    v = np.where(((xx // 9 + yy // 7 + tt) % 3) == 0, 255 - v, v)
    v = np.where((xx * xx + yy * 3) % 17 < 3, (v * 5) % 256, v)
    return v.astype(np.uint8)


def case_vision(case: str) -> VisionConfig:
    t, _, _, lo, hi = CASES[case]
    return VisionConfig(nframes=t, min_pixels=lo, max_pixels=hi)


def ours(family: str, case: str):
    t, h, w, _, _ = CASES[case]
    return preprocess_frames(case_frames(t, h, w), SPECS[family], case_vision(case))


def official(family: str, case: str):
    """The official processor's output on CPU (needs torchvision)."""
    import torch
    from transformers import Qwen2VLVideoProcessor, Qwen3VLVideoProcessor

    t, h, w, lo, hi = CASES[case]
    spec = SPECS[family]
    # per-frame bounds for Qwen2-VL; Qwen3-VL bounds the whole clip, so per-frame bounds x frames
    scale = 1 if family == "qwen2_5_vl" else t
    cls = Qwen2VLVideoProcessor if family == "qwen2_5_vl" else Qwen3VLVideoProcessor
    proc = cls(size={"shortest_edge": lo * scale, "longest_edge": hi * scale}, patch_size=spec.patch_size,
               temporal_patch_size=spec.temporal_patch_size, merge_size=spec.merge_size,
               image_mean=list(spec.image_mean), image_std=list(spec.image_std), do_sample_frames=False)
    video = torch.from_numpy(case_frames(t, h, w))
    out = proc(videos=[video], return_tensors="pt", do_sample_frames=False, cap_pixels_per_frame=False,
               input_data_format="channels_last", device="cpu")
    return out["pixel_values_videos"].float(), out["video_grid_thw"]


# Prompt-level check: the official processor of a tiny checkpoint (tokenizer + processor files, no weights)
# expands the chat text around a clip of case "odd" frames; we must produce the same ids.
PROMPT_SYSTEM = "You are a careful driving analyst."
PROMPT_USER = "Describe the weather and the road."
PROMPT_FPS = 8.0
PROMPT_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                "preprocessor_config.json", "video_preprocessor_config.json")


def prompt_case(family: str):
    """Frames, sampled indices, clip fps and vision settings of the prompt-level case."""
    t, h, w, lo, hi = CASES["odd"]
    indices = list(range(0, 2 * t, 2))  # every other frame of a 12-frame clip at PROMPT_FPS
    return case_frames(t, h, w), indices, 2 * t, case_vision("odd")


def official_prompt_ids(family: str, checkpoint_dir: Path) -> List[int]:
    """input_ids from the official AutoProcessor of `checkpoint_dir` (needs torchvision)."""
    import torch
    from transformers import AutoProcessor
    from transformers.video_utils import VideoMetadata

    from cosmos_exp.data.processor import Processor

    frames, indices, total, vision = prompt_case(family)
    proc = AutoProcessor.from_pretrained(str(checkpoint_dir))
    text = Processor.prompt_text([{"role": "system", "content": PROMPT_SYSTEM},
                                  {"role": "user", "content": [{"type": "video", "video": "clip.mp4"},
                                                               {"type": "text", "text": PROMPT_USER}]}])
    meta = VideoMetadata(total_num_frames=total, fps=PROMPT_FPS, frames_indices=indices, duration=total / PROMPT_FPS)
    scale = 1 if family == "qwen2_5_vl" else len(indices)
    out = proc(text=[text], videos=[torch.from_numpy(frames)], video_metadata=[meta], return_tensors="pt",
               do_sample_frames=False, input_data_format="channels_last",
               videos_kwargs={"size": {"shortest_edge": vision.min_pixels * scale,
                                       "longest_edge": vision.max_pixels * scale}})
    return out["input_ids"][0].tolist()


def our_prompt_ids(family: str, checkpoint_dir: Path) -> List[int]:
    from cosmos_exp.data.conversation import build_conversation
    from cosmos_exp.data.processor import Processor

    frames, indices, total, vision = prompt_case(family)
    proc = Processor.from_pretrained(checkpoint_dir)
    pixels, grid = preprocess_frames(frames, proc.spec, vision)
    proc.encode_video = lambda path, vis: {"pixel_values_videos": pixels, "video_grid_thw": grid, "indices": indices,
                                           "video_fps": PROMPT_FPS, "num_frames": total}
    conv = build_conversation(PROMPT_SYSTEM, PROMPT_USER, "clip.mp4", vision, None)
    return proc.encode(conv, vision, add_generation_prompt=True)["input_ids"].tolist()


def _prompt_checks(out: Path, manifest: dict) -> bool:
    import shutil
    import tempfile

    from cosmos_exp.config.model import TinyModelConfig
    from cosmos_exp.models.tiny import build_tiny_model

    ok = True
    for family in SPECS:
        with tempfile.TemporaryDirectory() as tmp:
            ckpt = build_tiny_model(family, Path(tmp) / family, TinyModelConfig())
            official_ids, mine = official_prompt_ids(family, ckpt), our_prompt_ids(family, ckpt)
            same = official_ids == mine
            ok &= same
            print(f"{family:10s} prompt ids: official {len(official_ids)}, ours {len(mine)}, equal {same}")
            manifest["cases"][f"{family}_prompt"] = {"tokens": len(official_ids), "equal_to_ours": same}
            if out:
                keep = out / f"{family}_checkpoint"
                keep.mkdir(parents=True, exist_ok=True)
                for name in PROMPT_FILES:
                    shutil.copy2(ckpt / name, keep / name)
                (out / f"{family}_prompt.json").write_text(json.dumps({"input_ids": official_ids}) + "\n")
    return ok


def main(argv: List[str] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="write golden fixtures here")
    args = ap.parse_args(argv)
    import torch
    import torchvision
    import transformers

    manifest = {"transformers": transformers.__version__, "torch": torch.__version__,
                "torchvision": torchvision.__version__, "device": "cpu",
                "command": "python tools/golden.py --out tests/fixtures/golden", "cases": {}}
    ok = True
    for family in SPECS:
        for case in CASES:
            pv, grid = official(family, case)
            mine, my_grid = ours(family, case)
            same_grid = grid.tolist() == my_grid.tolist()
            diff = float((pv - mine).abs().max()) if same_grid and pv.shape == mine.shape else float("inf")
            ok &= same_grid and diff <= 1e-5
            manifest["cases"][f"{family}_{case}"] = {"grid": grid.tolist(), "shape": list(pv.shape),
                                                     "max_abs_diff_vs_ours": diff, "params": CASES[case]}
            print(f"{family:10s} {case:5s} grid {grid.tolist()} ours {my_grid.tolist()} max|diff| {diff:.3g}")
            if args.out:
                args.out.mkdir(parents=True, exist_ok=True)
                np.savez_compressed(args.out / f"{family}_{case}.npz", pixel_values_videos=pv.numpy(),
                                    video_grid_thw=grid.numpy())
    ok &= _prompt_checks(args.out, manifest)
    if args.out:
        (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print("MATCH" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
