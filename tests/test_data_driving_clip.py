"""A driving clip becomes the trajectory model's sample (cameras in the fixed order, the newest frames, history
tokens, v0, fitted ground-truth actions) and the metrics' truth; the actions re-integrate to the future."""

import numpy as np
import pytest
import torch

from cosmos_exp.config.trajectory import DrivingSyntheticConfig, TrajectoryMetricsConfig, TrajectoryPromptConfig
from cosmos_exp.data.driving_clip import clip_features, clip_frames, clip_truth
from cosmos_exp.data.driving_clip_files import read_driving_clips
from cosmos_exp.data.driving_synthetic import generate_driving_synthetic
from cosmos_exp.data.trajectory_sample import collate_trajectory
from cosmos_exp.evaluate.trajectory import scene_metrics
from cosmos_exp.trajectory.action_space import denormalise, integrate
from tests._trajectory_fixtures import ACTIONS, dirs, processor  # noqa: F401  (fixtures)

RIG_CAMERAS = ["camera_cross_left_120fov", "camera_front_wide_120fov", "camera_cross_right_120fov"]
PROMPT3 = TrajectoryPromptConfig(cameras=list(reversed(RIG_CAMERAS)), frames_per_camera=2, image_min_pixels=1024,
                                 image_max_pixels=4096)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips") / "data"
    generate_driving_synthetic(DrivingSyntheticConfig(num_train=5, num_eval=0, frames=3, width=32, height=32), root)
    return read_driving_clips(root, "train", "rig_b")[0]


def test_clip_to_sample_and_back_to_the_future(processor, clips):  # noqa: F811
    for clip in clips:
        f = clip_features(processor, clip, PROMPT3, ACTIONS)
        # the fixed camera order (cross_left 0, front_wide 1, cross_right 2), each camera's newest two frames
        assert f["camera_index"].tolist() == [0, 0, 1, 1, 2, 2]
        newest = clip_frames(clip, RIG_CAMERAS, 2)
        expected = processor.encode_images([fr for cam in RIG_CAMERAS for fr in newest[cam]], 1024, 4096)
        assert torch.equal(f["pixel_values"], expected["pixel_values"])
        assert float(f["v0"]) == pytest.approx(clip.v0, abs=1e-4)
        # the fitted ground-truth actions roll out to the future within a few centimetres
        actions = denormalise(f["actions"].double(), ACTIONS)
        xy = integrate(actions, float(f["v0"]), ACTIONS.dt).xy.numpy()
        assert np.abs(xy - clip.future_xy).max() < 0.05, clip.scene_id
    batch = collate_trajectory(processor, [clip_features(processor, c, PROMPT3, ACTIONS) for c in clips[:2]])
    assert batch["actions"].shape == (2, 64, 2) and batch["camera_index"].shape == (12,)


def test_clip_truth_scores_a_perfect_prediction_as_zero(clips):
    truth = clip_truth(clips[0])
    m = scene_metrics(truth["xy"][None], truth["xy"], TrajectoryMetricsConfig(), true_yaw=truth["yaw"],
                      label=truth["manoeuvre"])
    assert m["min_ade"] == 0.0 and m["manoeuvre"] == clips[0].manoeuvre


def test_missing_cameras_and_frames_are_one_line_errors(processor, clips):  # noqa: F811
    clip = clips[0]
    with pytest.raises(ValueError, match="no images for camera camera_front_tele_30fov"):
        clip_features(processor, clip, TrajectoryPromptConfig(frames_per_camera=2), ACTIONS)
    with pytest.raises(ValueError, match="has 3 frames, 4 wanted"):
        clip_frames(clip, RIG_CAMERAS, 4)
