"""Tiny Qwen2.5-VL / Qwen3-VL builders and the family-routing loader."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cosmos_exp.config.model import TinyModelConfig
from cosmos_exp.models.loading import detect_family, load_model, save_checkpoint
from cosmos_exp.models.tiny import FAMILIES, build_tiny_model

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {f: build_tiny_model(f, root / f, TinyModelConfig()) for f in FAMILIES}


def _check_in_fresh_process(model_dir: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "cosmos_exp.models.check", str(model_dir), "--generate", "5"],
        capture_output=True, text=True, env=ENV, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_model_reloads_with_auto_classes_and_runs(tiny_dirs, family):
    model_dir = tiny_dirs[family]
    for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
                 "preprocessor_config.json", "video_preprocessor_config.json"):
        assert (model_dir / name).is_file(), name
    out = _check_in_fresh_process(model_dir)
    expected = {"qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration", "qwen3_vl": "Qwen3VLForConditionalGeneration"}
    assert out["model_class"] == expected[family]
    assert out["model_type"] == family
    assert math.isfinite(out["loss"]) and out["loss"] > 0
    assert out["video_tokens"] == 4
    assert out["logits_shape"][-1] == TinyModelConfig().vocab_size
    assert 1 <= len(out["generated_ids"]) <= 5
    # Qwen-style turns with the video as vision_start / pad / vision_end.
    assert out["rendered"].startswith("<|im_start|>system\nYou are a driving assistant.<|im_end|>\n<|im_start|>user\n"
                                      "<|vision_start|><|video_pad|>")
    assert out["rendered"].endswith("<|vision_end|>Describe the scene.<|im_end|>\n<|im_start|>assistant\n")


def test_processor_files_match_family(tiny_dirs):
    q25 = json.loads((tiny_dirs["qwen2_5_vl"] / "video_preprocessor_config.json").read_text())
    q3 = json.loads((tiny_dirs["qwen3_vl"] / "video_preprocessor_config.json").read_text())
    assert (q25["patch_size"], q3["patch_size"]) == (14, 16)
    for family, proc in (("qwen2_5_vl", q25), ("qwen3_vl", q3)):
        cfg = json.loads((tiny_dirs[family] / "config.json").read_text())["vision_config"]
        assert cfg["patch_size"] == proc["patch_size"]
        assert cfg["temporal_patch_size"] == proc["temporal_patch_size"]
        assert cfg["spatial_merge_size"] == proc["merge_size"]
        assert {"shortest_edge", "longest_edge"} <= set(proc["size"])


def test_caption_tokenizes_compactly(tiny_dirs):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dirs["qwen3_vl"])
    text = ('{"weather": "Light rain", "road_conditions": "Wet surface with puddles", "safety_analysis": '
            '"The ego vehicle proceeds straight on the right lane and slows down to yield to a pedestrian."}')
    ids = tok(text)["input_ids"]
    assert len(ids) < len(text) / 2.5, (len(ids), len(text))
    assert tok.decode(ids) == text
    for special in ("<|im_start|>", "<|im_end|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>"):
        assert len(tok(special)["input_ids"]) == 1


def test_build_is_deterministic(tmp_path, tiny_dirs):
    again = build_tiny_model("qwen3_vl", tmp_path / "again", TinyModelConfig())
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (again / name).read_bytes() == (tiny_dirs["qwen3_vl"] / name).read_bytes(), name
    other = build_tiny_model("qwen3_vl", tmp_path / "other", TinyModelConfig(seed=1))
    assert (other / "model.safetensors").read_bytes() != (again / "model.safetensors").read_bytes()


def test_detect_family_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        detect_family(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ValueError, match=r"config\.json.*'llama'"):
        detect_family(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        detect_family(tmp_path)


def test_load_routes_by_model_type_not_path_and_save_roundtrips(tmp_path, tiny_dirs):
    import torch

    # A Reason2 (Qwen3-VL) checkpoint under a misleading Qwen2.5 name still loads as Qwen3-VL.
    misleading = tmp_path / "Qwen2.5-VL-7B-Instruct"
    save_checkpoint(load_model(tiny_dirs["qwen3_vl"]), tiny_dirs["qwen3_vl"], misleading)
    assert detect_family(misleading) == "qwen3_vl"
    model = load_model(misleading)
    assert type(model).__name__ == "Qwen3VLForConditionalGeneration"
    assert next(model.parameters()).dtype == torch.float32
    ref = load_model(tiny_dirs["qwen3_vl"])
    for (n1, p1), (n2, p2) in zip(model.state_dict().items(), ref.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2), n1
    assert (misleading / "tokenizer.json").is_file() and (misleading / "video_preprocessor_config.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left behind


def test_shaped_model_keeps_the_shape_and_takes_the_tokenizers_ids(tmp_path):
    """A real architecture's config (its own special-token ids, a vocabulary wider than the tiny tokenizer's)
    becomes a loadable checkpoint: same shape and vocabulary rows, the tokenizer's ids, weights in bf16."""
    from cosmos_exp.data.processor import Processor
    from cosmos_exp.models.tiny import SPECIAL_TOKENS, build_shaped_model, tiny_config

    config = tiny_config("qwen3_vl", TinyModelConfig(), {t: 990 + i for i, t in enumerate(SPECIAL_TOKENS)}, 1000)
    out = build_shaped_model(config, tmp_path / "shaped", seed=3, dtype="bfloat16")
    saved = json.loads((out / "config.json").read_text())
    processor = Processor.from_pretrained(out)
    tok = processor.tokenizer
    assert saved["text_config"]["vocab_size"] == 1000 and len(tok) == 512
    assert saved["video_token_id"] == tok.convert_tokens_to_ids("<|video_pad|>") < 512
    assert saved["vision_start_token_id"] == tok.convert_tokens_to_ids("<|vision_start|>")
    model = load_model(out)
    assert model.get_input_embeddings().weight.shape[0] == 1000
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"BF16"}
    too_small = tiny_config("qwen3_vl", TinyModelConfig(), {t: i for i, t in enumerate(SPECIAL_TOKENS)}, 100)
    with pytest.raises(ValueError, match="smaller than the tokenizer"):
        build_shaped_model(too_small, tmp_path / "small")
