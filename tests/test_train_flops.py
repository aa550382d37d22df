"""Model FLOPs accounting (cosmos_exp/train/flops.py): hand-counted small shapes, and the formula against
torch's own FLOP counter on a tiny real Qwen3-VL, forward and forward + backward."""

import pytest

from cosmos_exp.train.flops import (Flops, TextShape, VisionShape, attention_pairs, mfu, peak_bf16_tflops,
                                    qwen3_vl_shapes, sample_forward, text_forward, training, vision_forward)

TEXT = TextShape(layers=2, hidden=8, heads=2, kv_heads=1, head_dim=4, intermediate=16, vocab=10)
VISION = VisionShape(depth=1, hidden=4, intermediate=8, in_channels=3, patch=2, temporal_patch=2, merge=2,
                     out_hidden=6, deepstack=1)


def test_text_forward_by_hand():
    # Per token and layer: q 8x8 + k 8x4 + v 8x4 + o 8x8 + MLP 3 x 8x16 = 576 multiply-adds; 2 layers, 5
    # tokens, 2 FLOPs each = 11,520; the logits 8x10 per token = 800. Attention over He = 8: causal 15 pairs
    # -> 4 x 8 x 15 x 2 layers = 960; non-causal 25 pairs -> 1,600.
    assert text_forward(TEXT, 5) == Flops(text_matmul=12_320, text_attention=960)
    assert text_forward(TEXT, 5, causal=False) == Flops(text_matmul=12_320, text_attention=1_600)
    # PaLM's training count for non-causal attention, 12 L He T per token, is 3 x our forward count.
    assert training(text_forward(TEXT, 5, causal=False)).text_attention == 12 * 2 * 8 * 5 * 5
    assert attention_pairs(1, causal=True) == 1 and attention_pairs(4, causal=True) == 10


def test_vision_forward_by_hand():
    # One 2x2 frame pair (t=1): 4 patches of 3x2x2x2 = 24 inputs -> 4 wide: 2 x 4 x 24 x 4 = 768; the block:
    # 2 x 4 x (3x16 + 16 + 2x4x8) = 1,024; merger and one deepstack merger on 1 merged token: 2 x (16x16 +
    # 16x6) = 704 each. Attention: 4 x 4 wide x 4^2 pairs = 256.
    assert vision_forward(VISION, [(1, 2, 2)]) == Flops(vision_matmul=3_200, vision_attention=256)
    # Two temporal slices attend separately: twice the work, not (2 x 4)^2 pairs.
    assert vision_forward(VISION, [(2, 2, 2)]).vision_attention == 512
    with pytest.raises(ValueError, match="multiple of merge"):
        vision_forward(VISION, [(1, 3, 2)])


def test_flops_arithmetic_and_mfu():
    a = Flops(1, 2, 3, 4)
    assert (a + a) * 3 == Flops(6, 12, 18, 24) and a.total == 10 and a.as_dict()["total"] == 10
    assert mfu(494.5e12, 989.0) == pytest.approx(0.5)
    assert peak_bf16_tflops("NVIDIA H200") == 989.0
    assert peak_bf16_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert peak_bf16_tflops("NVIDIA H100 PCIe") == 756.0
    assert peak_bf16_tflops("cpu") is None


def test_reason2_2b_shape_counts():
    from cosmos_exp.models.shapes import reason2_2b_config

    text, vision = qwen3_vl_shapes(reason2_2b_config())
    assert (text.layers, text.hidden, text.heads, text.kv_heads, text.head_dim) == (28, 2048, 16, 8, 128)
    assert (vision.depth, vision.hidden, vision.deepstack, vision.out_hidden) == (24, 1024, 3, 2048)
    # 2 x non-embedding text weights (1.41 B) + the 311 M-row logits product, per token.
    per_token = text_forward(text, 1).text_matmul
    assert per_token == 2 * (28 * (2048 * 2048 * 2 + 2 * 2048 * 1024 + 3 * 2048 * 6144) + 2048 * 151936)
    with pytest.raises(ValueError, match="Qwen3-VL"):
        qwen3_vl_shapes(type("C", (), {"model_type": "qwen2_5_vl"})())


def _tiny_qwen3_vl():
    import torch
    from transformers import AutoModelForImageTextToText, Qwen3VLConfig

    text = dict(vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, head_dim=8, max_position_embeddings=4096,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 1, 1],
                                 "mrope_interleaved": True})
    vision = dict(depth=2, hidden_size=16, intermediate_size=40, num_heads=2, out_hidden_size=32, patch_size=4,
                  spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=16,
                  deepstack_visual_indexes=[0], hidden_act="gelu_pytorch_tanh")
    config = Qwen3VLConfig(text_config=text, vision_config=vision, image_token_id=90, video_token_id=91,
                           vision_start_token_id=92, vision_end_token_id=93)
    torch.manual_seed(0)
    return AutoModelForImageTextToText.from_config(config, attn_implementation="eager"), config


def test_formula_matches_torch_flop_counter_on_a_tiny_qwen3_vl():
    """Eager attention multiplies every (query, key) pair, so torch counts the non-causal figure; the backward
    pass is exactly twice the forward except the patch embedding's input gradient, which nothing needs (the
    pixels are data), as the training count (3 x forward) assumes it is."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model, config = _tiny_qwen3_vl()
    grid = (2, 4, 6)  # 2 temporal slices of 4 x 6 patches -> 6 language tokens each
    per_slice = [7, 92] + [91] * (grid[1] * grid[2] // 4) + [93]  # a timestamp token, then the slice's tokens
    ids = [1, 2, 3] + per_slice * grid[0] + [4, 5, 6, 8]
    input_ids = torch.tensor([ids])
    batch = dict(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                 mm_token_type_ids=(input_ids == 91).long() * 2,
                 pixel_values_videos=torch.randn(grid[0] * grid[1] * grid[2], 3 * 2 * 4 * 4),
                 video_grid_thw=torch.tensor([grid]), labels=input_ids.clone())
    expected = sample_forward(config, len(ids), [grid], causal=False)

    with FlopCounterMode(display=False) as forward_only, torch.no_grad():
        model(**batch)
    assert forward_only.get_total_flops() == expected.total

    with FlopCounterMode(display=False) as step:
        model(**batch).loss.backward()
    patch_embedding = 2 * (grid[0] * grid[1] * grid[2]) * (3 * 2 * 4 * 4) * 16
    assert step.get_total_flops() == training(expected).total - patch_embedding
    # The causal count is what a causal kernel needs: less than torch saw the eager kernel do.
    assert sample_forward(config, len(ids), [grid]).total < expected.total
