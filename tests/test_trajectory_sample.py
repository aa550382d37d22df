"""The trajectory tokens added to a backbone, and one sample's prefix: cameras, history tokens, prompt."""

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from cosmos_exp.config.trajectory import TrajectoryPromptConfig
from cosmos_exp.data.processor import Processor
from cosmos_exp.data.trajectory_sample import encode_trajectory_sample
from cosmos_exp.models.loading import load_model
from cosmos_exp.models.trajectory_tokens import prepare_backbone
from cosmos_exp.trajectory.action_space import fit_actions, normalise
from cosmos_exp.trajectory.history_tokens import history_levels, history_token, history_token_offset
from cosmos_exp.trajectory.token_names import FUTURE_START, HISTORY_END, HISTORY_START
from tests._trajectory_fixtures import (  # noqa: F401  (fixtures)
    ACTIONS, PROMPT, dirs, features, left_turn, processor, scene_images, straight,
)


def test_prepare_backbone_adds_the_tokens_once_and_keeps_the_old_rows(dirs):
    base, prepared = load_model(dirs["base"], dtype="float32"), load_model(dirs["backbone"], dtype="float32")
    tok = AutoTokenizer.from_pretrained(str(dirs["backbone"]))
    old_rows = base.get_input_embeddings().weight.shape[0]
    assert len(tok) == old_rows + 3 + PROMPT.history_bins + ACTIONS.token_bins  # delimiters, history, future bins
    assert prepared.get_input_embeddings().weight.shape[0] == len(tok)
    assert torch.equal(prepared.get_input_embeddings().weight[:old_rows], base.get_input_embeddings().weight)
    assert torch.equal(prepared.lm_head.weight[:old_rows], base.lm_head.weight)
    assert history_token_offset(tok, PROMPT) == tok.convert_tokens_to_ids(history_token(0))
    assert tok.tokenize(f"a{history_token(7)}{FUTURE_START}b")[1:3] == [history_token(7), FUTURE_START]  # never split

    again = prepare_backbone(dirs["backbone"], dirs["root"] / "again", PROMPT)  # nothing to add: unchanged
    assert len(AutoTokenizer.from_pretrained(str(again))) == len(tok)
    twice = load_model(again, dtype="float32")
    assert all(torch.equal(a, b) for a, b in zip(twice.state_dict().values(), prepared.state_dict().values()))
    other = load_model(prepare_backbone(dirs["base"], dirs["root"] / "other", PROMPT), dtype="float32")
    assert torch.equal(other.get_input_embeddings().weight, prepared.get_input_embeddings().weight)  # seeded


def test_prefix_layout_cameras_in_fixed_order_history_then_future_start(processor):
    f = features(processor)[0]
    ids = f["input_ids"].tolist()
    tok = processor.tokenizer
    text = tok.decode(ids)
    assert text.startswith(f"<|im_start|>system\n{PROMPT.system_prompt}<|im_end|>\n<|im_start|>user\n<|vision_start|>")
    assert text.endswith(f"{PROMPT.user_prompt}<|im_end|>\n<|im_start|>assistant\n{FUTURE_START}")
    # camera-major in the fixed order (cross_left is index 0, front_wide 1), frames oldest first
    assert f["camera_index"].tolist() == [0, 0, 1, 1]
    grids = f["image_grid_thw"].tolist()
    assert ids.count(processor.vision_start_id) == len(grids) == 4
    assert ids.count(processor.image_pad_id) == sum(t * h * w // 4 for t, h, w in grids)
    assert int((f["mm_token_type_ids"] == 1).sum()) == ids.count(processor.image_pad_id)
    # the 48 history tokens between their delimiters: the history's levels
    start = ids.index(tok.convert_tokens_to_ids(HISTORY_START))
    assert ids[start + 49] == tok.convert_tokens_to_ids(HISTORY_END)
    levels = history_levels(straight(10.0, 16, -15), PROMPT) + history_token_offset(tok, PROMPT)
    assert ids[start + 1:start + 49] == levels.tolist()
    # the images of camera cross_left come first: its pixels lead pixel_values
    images = scene_images(np.random.default_rng(0), PROMPT, 64, 64)
    first = processor.encode_images(list(images["camera_cross_left_120fov"]), 1024, 8192)["pixel_values"]
    assert torch.equal(f["pixel_values"][:first.shape[0]], first)


def test_camera_names_in_prompt_precede_each_image(processor):
    prompt = TrajectoryPromptConfig(**{**PROMPT.__dict__, "camera_names_in_prompt": True})
    text = processor.tokenizer.decode(features(processor, prompt=prompt)[0]["input_ids"])
    order = [f"{cam} frame {j}: <|vision_start|>" for cam in ("camera_cross_left_120fov", "camera_front_wide_120fov")
             for j in range(2)]
    positions = [text.index(s) for s in order]
    assert positions == sorted(positions)
    assert "frame" not in processor.tokenizer.decode(features(processor)[0]["input_ids"])


def test_v0_and_normalised_ground_truth_actions(processor):
    f = features(processor)[1]
    assert abs(float(f["v0"]) - 5.0) < 1e-6
    expected = normalise(fit_actions(left_turn(5.0, 20.0), f["v0"].double(), ACTIONS), ACTIONS)
    assert torch.allclose(f["actions"], expected.float())
    assert f["actions"].shape == (64, 2) and float(f["actions"][:, 1].mean()) > 1.5  # curvature 0.05 /m, normalised


def test_bad_samples_fail_naming_what_to_fix(processor):
    rng = np.random.default_rng(0)
    images = scene_images(rng, PROMPT, 64, 64)
    hist = straight(5.0, 16, -15)
    with pytest.raises(ValueError, match=r"no images for cameras \['camera_front_wide_120fov'\]"):
        encode_trajectory_sample(processor, {"camera_cross_left_120fov": images["camera_cross_left_120fov"]}, hist,
                                 PROMPT, ACTIONS)
    with pytest.raises(ValueError, match="frames_per_camera"):
        encode_trajectory_sample(processor, {k: v[:1] for k, v in images.items()}, hist, PROMPT, ACTIONS)
    with pytest.raises(ValueError, match="history_steps"):
        encode_trajectory_sample(processor, images, hist[1:], PROMPT, ACTIONS)
    with pytest.raises(ValueError, match="not in camera_order"):
        encode_trajectory_sample(processor, images, hist, TrajectoryPromptConfig(cameras=["dashcam"]), ACTIONS)
    short = Processor(processor.tokenizer, processor.spec, processor.processor_files, model_max_length=100)
    with pytest.raises(ValueError, match="image_max_pixels"):
        encode_trajectory_sample(short, images, hist, PROMPT, ACTIONS)
