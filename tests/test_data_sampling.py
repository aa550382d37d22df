import numpy as np
import pytest

from cosmos_exp.config.data import VisionConfig
from cosmos_exp.data.sampling import FrameSamplingError, sample_frames, sampled_fps, temporal_patch_timestamps
from tests._data_fixtures import load_transformers_module


def test_nframes_rounded_to_temporal_patch_and_spread_over_clip():
    idx, ts = sample_frames(300, 30.0, VisionConfig(nframes=16), 2)
    assert len(idx) == 16 and idx[0] == 0 and idx[-1] == 299
    assert idx == np.linspace(0, 299, 16).round().astype(int).tolist()
    assert ts == pytest.approx([i / 30.0 for i in idx])
    assert len(sample_frames(300, 30.0, VisionConfig(nframes=7), 2)[0]) == 8  # round(7/2)*2
    assert len(sample_frames(300, 30.0, VisionConfig(nframes=5), 2)[0]) == 4


def test_fps_sampling_clamps_and_floors():
    v = VisionConfig(nframes=None, fps=2.0)
    assert len(sample_frames(300, 30.0, v, 2)[0]) == 20  # 10 s * 2 fps
    assert len(sample_frames(45, 30.0, v, 2)[0]) == 4  # 3 frames -> min_frames 4
    v_max = VisionConfig(nframes=None, fps=2.0, max_frames=9)
    assert len(sample_frames(300, 30.0, v_max, 2)[0]) == 8  # floor to a multiple of 2
    assert len(sample_frames(5, 30.0, VisionConfig(nframes=None, fps=30.0), 2)[0]) == 4  # capped by the clip


def test_too_short_and_both_settings_fail():
    with pytest.raises(FrameSamplingError, match="fewer than the 16"):
        sample_frames(10, 8.0, VisionConfig(nframes=16), 2)
    with pytest.raises(FrameSamplingError, match="exactly one"):
        sample_frames(100, 8.0, VisionConfig(nframes=8, fps=2.0), 2)


def test_timestamps_match_official_qwen3_processor():
    mod = load_transformers_module("models/qwen3_vl/processing_qwen3_vl.py",
                                   "transformers.models.qwen3_vl.processing_qwen3_vl")
    official = mod.Qwen3VLProcessor._calculate_timestamps
    for indices, fps in (([0, 20, 40, 59], 30.0), ([0, 7, 15], 8.0), (list(range(0, 100, 7)), 29.97)):
        assert temporal_patch_timestamps(indices, fps, 2) == pytest.approx(official(None, list(indices), fps, 2))


def test_official_qwen3_frame_sampler_gives_same_indices():
    mod = load_transformers_module("models/qwen3_vl/video_processing_qwen3_vl.py",
                                   "transformers.models.qwen3_vl.video_processing_qwen3_vl")
    from transformers.video_utils import VideoMetadata

    class Holder:  # the sampler only reads these attributes
        fps, min_frames, max_frames = 2, 4, 768

    for total, fps, n in ((300, 30.0, 16), (47, 8.0, 8), (1000, 24.0, 32)):
        meta = VideoMetadata(total_num_frames=total, fps=fps)
        official = mod.Qwen3VLVideoProcessor.sample_frames(Holder(), meta, num_frames=n).tolist()
        assert sample_frames(total, fps, VisionConfig(nframes=n), 2)[0] == official


def test_sampled_fps():
    assert sampled_fps(16, 300, 30.0) == pytest.approx(1.6)
