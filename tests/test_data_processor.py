"""Processor on real decoded synthetic clips with both tiny model families."""

import json
import re

import pytest
import torch

from cosmos_exp.config.data import VisionConfig
from cosmos_exp.config.model import TinyModelConfig
from cosmos_exp.data.conversation import build_conversation
from cosmos_exp.data.datasets import build_dataset
from cosmos_exp.data.processor import IGNORE_INDEX, Processor
from tests._data_fixtures import make_synthetic

FAMILIES = ("qwen2_5_vl", "qwen3_vl")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("proc_data")
    cfg, _ = make_synthetic(root, num_train=3, num_eval=0)
    samples, _ = build_dataset(cfg, "train")
    return cfg, samples


@pytest.fixture(scope="module", params=FAMILIES)
def model_dir(request, tmp_path_factory):
    from cosmos_exp.models.tiny import build_tiny_model

    return build_tiny_model(request.param, tmp_path_factory.mktemp(request.param) / "m", TinyModelConfig())


def test_family_and_spec_come_from_checkpoint_files(model_dir):
    p = Processor.from_pretrained(model_dir)
    fam = json.loads((model_dir / "config.json").read_text())["model_type"]
    assert p.family == fam
    assert p.spec.patch_size == (14 if fam == "qwen2_5_vl" else 16)
    assert p.spec.image_mean == tuple(json.loads((model_dir / "video_preprocessor_config.json").read_text())["image_mean"])


def test_placeholders_equal_vision_tokens_and_labels_cover_only_answer(model_dir, data):
    cfg, samples = data
    p = Processor.from_pretrained(model_dir)
    enc = p.encode(samples[0].conversation, cfg.vision)
    grid = enc["video_grid_thw"][0].tolist()
    n_pad = int((enc["input_ids"] == p.video_pad_id).sum())
    assert n_pad == grid[0] * grid[1] * grid[2] // 4 == enc["pixel_values_videos"].shape[0] // 4
    assert int((enc["mm_token_type_ids"] == 2).sum()) == n_pad
    labelled = enc["labels"] != IGNORE_INDEX
    text = p.tokenizer.decode(enc["input_ids"][labelled])
    assert text == samples[0].target + "<|im_end|>"
    first = int(labelled.nonzero()[0])
    assert p.tokenizer.decode(enc["input_ids"][:first]).endswith("<|im_start|>assistant\n")
    assert not labelled[first:][~labelled[first:]].numel() > 1  # only the trailing newline is masked after


def test_qwen3_prompt_carries_per_patch_timestamps(model_dir, data):
    cfg, samples = data
    p = Processor.from_pretrained(model_dir)
    enc = p.encode(samples[0].conversation, cfg.vision, add_generation_prompt=True)
    text = p.tokenizer.decode(enc["input_ids"])
    stamps = re.findall(r"<(\d+\.\d) seconds>", text)
    assert "labels" not in enc and text.endswith("<|im_start|>assistant\n")
    if p.family == "qwen3_vl":
        # 8 frames of a 16-frame 8 fps clip: indices 0,2,4,6,9,11,13,15 -> pairs averaged
        assert stamps == ["0.1", "0.6", "1.2", "1.8"]
        assert text.count("<|vision_start|>") == 1 + enc["video_grid_thw"][0, 0]
    else:
        assert stamps == [] and "second_per_grid_ts" in enc
        assert float(enc["second_per_grid_ts"]) == pytest.approx(2 / (8 / 16 * 8))


def test_collate_pads_and_forward_pass_gives_loss(model_dir, data):
    from transformers import AutoModelForImageTextToText

    cfg, samples = data
    p = Processor.from_pretrained(model_dir)
    feats = [p.encode(s.conversation, cfg.vision) for s in samples[:2]]
    # make the second one 3 tokens shorter than the first (cut inside its answer) so padding is exercised
    cut = feats[0]["input_ids"].shape[0] - 3
    feats[1] = {k: (v[:cut] if k in ("input_ids", "attention_mask", "labels", "mm_token_type_ids") else v)
                for k, v in feats[1].items()}
    batch = p.collate(feats)
    L = max(f["input_ids"].shape[0] for f in feats)
    assert batch["input_ids"].shape == (2, L) and batch["attention_mask"][1, -3:].sum() == 0
    assert (batch["labels"][1, -3:] == IGNORE_INDEX).all() and (batch["input_ids"][1, -3:] == p.pad_id).all()
    assert batch["pixel_values_videos"].shape[0] == sum(f["pixel_values_videos"].shape[0] for f in feats)
    model = AutoModelForImageTextToText.from_pretrained(model_dir)
    out = model(**batch)
    assert torch.isfinite(out.loss) and out.loss > 0
    out.loss.backward()
    left = p.collate(feats, padding_side="left")
    assert left["attention_mask"][1, :3].sum() == 0


def test_still_images_take_the_template_expansion_and_run_through_the_model(model_dir):
    """Several images in one user turn: the chat template's image slots, each expanded to its grid's pads (the
    official processors' expansion), and a forward pass over the concatenated pixels."""
    import numpy as np
    from transformers import AutoModelForImageTextToText

    p = Processor.from_pretrained(model_dir)
    f = p.spec.factor
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (2 * f, 3 * f, 3), dtype=np.uint8), rng.integers(0, 256, (f, f, 3), dtype=np.uint8)]
    vision = p.encode_images(images, min_pixels=f * f, max_pixels=6 * f * f)
    grids = vision["image_grid_thw"].tolist()
    assert grids == [[1, 4, 6], [1, 2, 2]]
    ids = p.text_ids("<|im_start|>user\n") + p.image_token_ids(grids[0]) + p.image_token_ids(grids[1])
    ids += p.text_ids("Describe.<|im_end|>\n")
    content = [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "Describe."}]
    conversation = [{"role": "user", "content": content}]
    text = p.tokenizer.apply_chat_template(conversation, tokenize=False)
    for n in (6, 1):  # pads per image: t * h * w / merge^2
        text = text.replace("<|image_pad|>", "<|IMG|>" * n, 1)
    assert ids == p.text_ids(text.replace("<|IMG|>", "<|image_pad|>"))

    input_ids = torch.tensor([ids])
    feature = {"input_ids": input_ids[0], "attention_mask": torch.ones(len(ids), dtype=torch.long),
               "mm_token_type_ids": (input_ids[0] == p.image_pad_id).long(), **vision}
    batch = p.collate([feature, feature])
    assert batch["pixel_values"].shape[0] == 2 * vision["pixel_values"].shape[0]
    assert batch["image_grid_thw"].shape == (4, 3)
    model = AutoModelForImageTextToText.from_pretrained(model_dir)
    out = model(**batch)
    assert out.logits.shape[:2] == (2, len(ids)) and torch.isfinite(out.logits).all()


def test_vision_budget_guard_says_what_to_change(model_dir, data):
    cfg, samples = data
    p = Processor.from_pretrained(model_dir, model_max_length=200)
    with pytest.raises(ValueError, match="fewer frames .* fewer pixels") as err:
        p.encode(samples[0].conversation, cfg.vision)
    assert samples[0].video in str(err.value)


def test_bad_video_raises_video_error(model_dir, tmp_path):
    from cosmos_exp.data.video import VideoError

    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"")
    p = Processor.from_pretrained(model_dir)
    conv = build_conversation("s", "u", str(bad), VisionConfig(nframes=8), "t")
    with pytest.raises(VideoError, match="empty"):
        p.encode(conv, VisionConfig(nframes=8))


def test_save_pretrained_round_trip(model_dir, data, tmp_path):
    cfg, samples = data
    p = Processor.from_pretrained(model_dir)
    (tmp_path / "config.json").write_text((model_dir / "config.json").read_text())
    p.save_pretrained(tmp_path)
    q = Processor.from_pretrained(tmp_path)
    a, b = p.encode(samples[1].conversation, cfg.vision), q.encode(samples[1].conversation, cfg.vision)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_token_layout_is_the_checkpoint_chat_template(model_dir, data):
    cfg, samples = data
    p = Processor.from_pretrained(model_dir)
    conv = samples[0].conversation
    assert p.prompt_text(conv, add_generation_prompt=False) == p.tokenizer.apply_chat_template(conv, tokenize=False)
    enc = p.encode(conv, cfg.vision)
    ids = enc["input_ids"].tolist()
    # collapse the expanded video back to the template's single placeholder
    start = ids.index(p.vision_start_id)
    end = len(ids) - 1 - ids[::-1].index(p.vision_end_id)
    collapsed = ids[: start + 1] + [p.video_pad_id] + ids[end:]
    assert p.tokenizer.decode(collapsed) == p.prompt_text(conv, add_generation_prompt=False)
