"""Our preprocessing against the parts of transformers that run without torchvision."""

import random

import numpy as np
import pytest
import torch

from cosmos_exp.config.data import VisionConfig
from cosmos_exp.data.preprocess import (
    VisionSpec, num_video_tokens, patchify, preprocess_frames, preprocess_images, resize_frames,
    smart_resize_qwen2, smart_resize_qwen3, target_size,
)
from tests._data_fixtures import load_transformers_module

CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
Q25 = VisionSpec("qwen2_5_vl", 14, 2, 2, CLIP_MEAN, CLIP_STD)
Q3 = VisionSpec("qwen3_vl", 16, 2, 2, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def _qwen3_video_module():
    return load_transformers_module("models/qwen3_vl/video_processing_qwen3_vl.py",
                                    "transformers.models.qwen3_vl.video_processing_qwen3_vl")


def test_qwen2_size_rule_matches_transformers():
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    rng = random.Random(0)
    for _ in range(3000):
        h, w = rng.randint(8, 4000), rng.randint(8, 4000)
        if max(h, w) / min(h, w) > 200:
            continue
        lo, hi = rng.choice([3136, 4096, 50176]), rng.choice([12544, 112897, 147457, 360000, 12845056])
        assert smart_resize_qwen2(h, w, 28, lo, hi) == smart_resize(h, w, 28, lo, hi)


def test_qwen3_size_rule_matches_transformers():
    official = _qwen3_video_module().smart_resize
    rng = random.Random(1)
    for _ in range(3000):
        t, h, w = rng.choice([2, 4, 8, 16, 64]), rng.randint(8, 3000), rng.randint(8, 3000)
        if max(h, w) / min(h, w) > 150:
            continue
        lo, hi = rng.choice([4096, 3136 * 16]), rng.choice([360000 * 16, 25165824, 100000])
        assert smart_resize_qwen3(t, h, w, 2, 32, lo, hi) == official(t, h, w, 2, 32, lo, hi)


def test_qwen3_per_frame_bounds_equal_per_frame_rule():
    # per-frame bounds x frames under the clip rule == the per-frame rule, when frames are a multiple of 2
    rng = random.Random(2)
    for _ in range(500):
        t, h, w = rng.choice([2, 8, 16]), rng.randint(40, 2000), rng.randint(40, 2000)
        v = VisionConfig(nframes=t, min_pixels=3136, max_pixels=rng.choice([20000, 360000]))
        assert target_size(Q3, t, h, w, v) == smart_resize_qwen2(h, w, 32, v.min_pixels, v.max_pixels)


def test_total_pixels_caps_frames_like_qwen_vl_utils():
    v = VisionConfig(nframes=16, min_pixels=3136, max_pixels=360000, total_pixels=16 * 20000)
    h, w = target_size(Q25, 16, 720, 1280, v)
    assert h * w <= 40000 and h % 28 == 0 and w % 28 == 0  # 20000 * 2 per frame (temporal patch of 2)


def test_patchify_matches_official_layout():
    official = _qwen3_video_module().Qwen3VLVideoProcessor.patchify
    for spec in (Q25, Q3):
        f = spec.factor
        x = torch.randn(5, 3, 2 * f, 3 * f)  # odd frame count: the last frame is repeated
        ours, grid = patchify(x, spec)
        ref, gt, gh, gw = official(None, x[None], spec.patch_size, spec.merge_size, spec.temporal_patch_size)
        assert grid == (gt, gh, gw) == (3, 4, 6)
        assert torch.equal(ours, ref[0])


def test_normalise_and_patchify_match_official_pil_processor():
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    img = np.random.default_rng(0).integers(0, 256, (84, 168, 3), dtype=np.uint8)
    official = Qwen2VLImageProcessorPil()(images=[img], do_resize=False, return_tensors="pt")
    ours, grid = preprocess_frames(img[None], Q25, VisionConfig(nframes=2, min_pixels=3136, max_pixels=20000))
    assert grid.tolist() == official["image_grid_thw"].tolist() == [[1, 6, 12]]
    assert torch.allclose(ours, official["pixel_values"].float(), atol=1e-6, rtol=0)


def test_resize_is_antialiased_bicubic_on_uint8():
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 3, 50, 70), dtype=np.uint8))
    y = resize_frames(x, (28, 56))
    assert y.dtype == torch.uint8 and tuple(y.shape) == (2, 3, 28, 56)
    ref = torch.nn.functional.interpolate(x, size=(28, 56), mode="bicubic", antialias=True, align_corners=False)
    assert torch.equal(y, ref)
    assert resize_frames(x, (50, 70)) is x  # same size: untouched, as torchvision does


def test_preprocess_shapes_and_token_count():
    frames = np.random.default_rng(0).integers(0, 256, (8, 96, 160, 3), dtype=np.uint8)
    for spec, pdim in ((Q25, 3 * 2 * 14 * 14), (Q3, 3 * 2 * 16 * 16)):
        pv, grid = preprocess_frames(frames, spec, VisionConfig(nframes=8))
        t, h, w = grid[0].tolist()
        assert t == 4 and pv.shape == (t * h * w, pdim) and pv.dtype == torch.float32
        assert num_video_tokens(grid[0], 2) == t * h * w // 4
    with pytest.raises(ValueError, match="uint8"):
        preprocess_frames(frames.astype(np.float32), Q25, VisionConfig())


def test_still_images_match_official_pil_processor():
    """Several images of different sizes (already on the patch grid, so no resize) against the official image
    processor configured as Qwen3-VL's: each image is repeated to one temporal patch, grids one row each."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((64, 96, 3), (96, 32, 3), (32, 32, 3))]
    ours, grid = preprocess_images(images, Q3, min_pixels=1024, max_pixels=8192)
    official = Qwen2VLImageProcessorPil(patch_size=16, image_mean=list(Q3.image_mean), image_std=list(Q3.image_std))(
        images=images, do_resize=False, return_tensors="pt")
    assert grid.tolist() == official["image_grid_thw"].tolist() == [[1, 4, 6], [1, 6, 2], [1, 2, 2]]
    assert torch.allclose(ours, official["pixel_values"].float(), atol=1e-6, rtol=0)


def test_still_images_are_sized_per_image_within_the_bounds():
    img = np.random.default_rng(4).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    for lo, hi in ((1024, 8192), (3136, 200 * 300), (65536, 200000)):
        pv, grid = preprocess_images(img[None], Q3, lo, hi)
        _, gh, gw = grid[0].tolist()
        assert (gh * 16, gw * 16) == smart_resize_qwen2(200, 300, 32, lo, hi)
        assert pv.shape == (gh * gw, 3 * 2 * 16 * 16)
    with pytest.raises(ValueError, match="uint8"):
        preprocess_images([img.astype(np.float32)], Q3, 1024, 8192)
