"""Training loader: deterministic by seed, resumable by step, prefetching in worker processes."""

import itertools

import pytest
import torch

from cosmos_exp.config.model import TinyModelConfig
from cosmos_exp.data.datasets import build_dataset
from cosmos_exp.data.loader import build_train_loader, step_positions
from cosmos_exp.data.processor import Processor
from tests._data_fixtures import make_synthetic


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from cosmos_exp.models.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("loader")
    cfg, _ = make_synthetic(root / "data", num_train=5, num_eval=0)
    samples, _ = build_dataset(cfg, "train")
    proc = Processor.from_pretrained(build_tiny_model("qwen2_5_vl", root / "m", TinyModelConfig()))
    return cfg, samples, proc


def _take(loader, n):
    return list(itertools.islice(iter(loader), n))


def test_positions_partition_ranks():
    a = step_positions(3, 10, 2, 0, 2)
    b = step_positions(3, 10, 2, 1, 2)
    assert a == [12, 13] and b == [14, 15]


def test_same_seed_same_batches_and_resume(setup):
    cfg, samples, proc = setup
    full = _take(build_train_loader(samples, proc, cfg.vision, 2, seed=7, num_workers=0), 4)
    again = _take(build_train_loader(samples, proc, cfg.vision, 2, seed=7, num_workers=0), 4)
    assert all(torch.equal(x["input_ids"], y["input_ids"]) for x, y in zip(full, again))
    loader = build_train_loader(samples, proc, cfg.vision, 2, seed=7, num_workers=0)
    _take(loader, 2)
    state = loader.state_dict()
    assert state == {"step": 2}
    resumed = build_train_loader(samples, proc, cfg.vision, 2, seed=7, num_workers=0, start_step=state["step"])
    rest = _take(resumed, 2)
    assert all(torch.equal(x["input_ids"], y["input_ids"]) for x, y in zip(full[2:], rest))
    other = _take(build_train_loader(samples, proc, cfg.vision, 2, seed=8, num_workers=0), 4)
    assert any(not torch.equal(x["input_ids"], y["input_ids"]) for x, y in zip(full, other))


@pytest.mark.slow
def test_worker_processes_give_the_same_batches(setup):
    cfg, samples, proc = setup
    inline = _take(build_train_loader(samples, proc, cfg.vision, 2, seed=3, num_workers=0, start_step=1), 3)
    loader = build_train_loader(samples, proc, cfg.vision, 2, seed=3, num_workers=2, start_step=1)
    workers = _take(loader, 3)
    for x, y in zip(inline, workers):
        assert torch.equal(x["input_ids"], y["input_ids"])
        assert torch.equal(x["pixel_values_videos"], y["pixel_values_videos"])
    assert loader.state_dict() == {"step": 4}
    loader.close()


def test_bad_video_at_load_time_is_replaced(setup, tmp_path):
    import copy

    cfg, samples, proc = setup
    broken = copy.deepcopy(samples)
    bad = tmp_path / "gone.mp4"
    broken[0].conversation[1]["content"][0]["video"] = str(bad)
    batches = _take(build_train_loader(broken, proc, cfg.vision, 5, seed=0, num_workers=0), 1)
    assert batches[0]["input_ids"].shape[0] == 5
