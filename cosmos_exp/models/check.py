"""Smoke check of a checkpoint directory through the public Auto classes only.

    python -m cosmos_exp.models.check <model_dir> [--generate N]

Loads the model with AutoModelForImageTextToText and the tokenizer with AutoTokenizer (what a user
or vLLM would do), builds one video conversation by hand (random pixels for one temporal patch),
runs a forward pass with labels and greedy generation, and prints a JSON line with the results.
Run in a fresh process, it proves the directory alone is enough to use the checkpoint.
"""

import argparse
import json
import sys
from pathlib import Path


def check(model_dir: str, generate: int = 4, grid_hw: int = 4) -> dict:
    import torch
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32).eval()
    cfg = json.loads((Path(model_dir) / "config.json").read_text())
    vis = cfg["vision_config"]
    patch, tps, merge = vis["patch_size"], vis["temporal_patch_size"], vis["spatial_merge_size"]

    conversation = [
        {"role": "system", "content": "You are a driving assistant."},
        {"role": "user", "content": [{"type": "video", "video": "clip.mp4"},
                                     {"type": "text", "text": "Describe the scene."}]},
    ]
    text = tok.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    n_vision = grid_hw * grid_hw // (merge * merge)
    text = text.replace("<|video_pad|>", "<|video_pad|>" * n_vision)
    ids = tok(text, return_tensors="pt")["input_ids"]
    video_id = tok.convert_tokens_to_ids("<|video_pad|>")
    mm_types = (ids == video_id).long() * 2  # 0 text, 1 image, 2 video

    g = torch.Generator().manual_seed(0)
    pixels = torch.randn(grid_hw * grid_hw, 3 * tps * patch * patch, generator=g)
    grid = torch.tensor([[1, grid_hw, grid_hw]])
    inputs = dict(input_ids=ids, attention_mask=torch.ones_like(ids), mm_token_type_ids=mm_types,
                  pixel_values_videos=pixels, video_grid_thw=grid)
    with torch.no_grad():
        out = model(**inputs, labels=ids)
        gen = model.generate(**inputs, max_new_tokens=generate, do_sample=False)
    new = gen[0, ids.shape[1]:].tolist()
    return {
        "model_class": type(model).__name__,
        "model_type": cfg["model_type"],
        "tokenizer_class": type(tok).__name__,
        "prompt_tokens": int(ids.shape[1]),
        "video_tokens": int((ids == video_id).sum()),
        "loss": float(out.loss),
        "logits_shape": list(out.logits.shape),
        "generated_ids": new,
        "generated_text": tok.decode(new),
        "rendered": text,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--generate", type=int, default=4)
    args = parser.parse_args(argv)
    print(json.dumps(check(args.model_dir, args.generate)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
