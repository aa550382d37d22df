"""The cosmos-rl entry script feeds cosmos-rl the same conversations the DeepSpeed loop trains on, as a
torch.utils.data.Dataset, from the run directory's resolved config, without importing transformers."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from cosmos_exp.config import register_configs
from cosmos_exp.config.validate import typed
from cosmos_exp.repro.record import resolved_yaml
from cosmos_exp.train.cosmos_rl.entry import parse_args
from cosmos_exp.train.cosmos_rl.launch import ENTRY_SCRIPT
from cosmos_exp.train.data import load_split

from _data_fixtures import make_synthetic
from conftest import CONF_DIR

register_configs()

# A stand-in for the two cosmos_rl modules the entry touches: it records what cosmos-rl would receive.
FAKE_WORKER_ENTRY = '''
import json, os, sys
from typing import Callable
from torch.utils.data import DataLoader, Dataset, DistributedSampler
def main(dataset=None, args=None, val_dataset=None, **kwargs):
    assert isinstance(dataset, Callable)  # cosmos-rl calls a factory with its config ...
    ds = dataset({"custom": {}})
    assert isinstance(ds, Dataset) and not isinstance(ds, Callable)  # ... asserts a torch Dataset (data_fetcher.py)
    ds.setup({"custom": {}})              # ... then setup(config)
    items = [ds[i] for i in range(len(ds))]
    # Its SFT worker: one DataLoader per data-parallel rank over a DistributedSampler; batches may index with lists.
    per_rank = [[x for batch in DataLoader(ds, batch_size=2, sampler=DistributedSampler(ds, num_replicas=2, rank=r,
                 shuffle=False), collate_fn=lambda b: b) for x in batch] for r in (0, 1)]
    assert sorted(map(json.dumps, per_rank[0] + per_rank[1])) == sorted(map(json.dumps, items + items[:len(items) % 2]))
    assert ds[[0, 1]] == items[:2]
    import pickle
    assert pickle.loads(pickle.dumps(ds))[0] == items[0]  # DataLoader workers started by spawn get a copy
    val = None
    if val_dataset is not None:
        vd = val_dataset({"custom": {}})
        assert isinstance(vd, Dataset)
        vd.setup({"custom": {}})
        val = [vd[i] for i in range(len(vd))]
    for step in (1, 2):                   # what its SFT worker reports on the master rank
        for fn in kwargs.get("custom_logger_fns") or []:
            fn({"train/loss_avg": 1.0 / step, "optimizer/grad_norm": 0.5, "optimizer/lr_0": 1e-5,
                "train/iteration_time": 2.0, "train/epoch": 0, "note": "text"}, step)
    heavy = sorted(m for m in ("transformers", "deepspeed", "torchvision", "hydra") if m in sys.modules)
    with open(os.environ["FAKE_OUT"], "w") as f:
        json.dump({"items": items, "val": val, "heavy": heavy, "config": args.config, "run_dir": args.cosmos_exp_run_dir,
                   "kwargs": sorted(kwargs), "role": os.environ.get("COSMOS_ROLE")}, f)
'''
FAKE_PACKER_BASE = '''
import argparse
def worker_entry_parser():
    p = argparse.ArgumentParser()
    p.add_argument("--config", default=None)
    p.add_argument("--port", type=int, default=8000)
    return p
'''


def _fake_cosmos_rl(root: Path) -> Path:
    for pkg in ("cosmos_rl", "cosmos_rl/launcher", "cosmos_rl/dispatcher", "cosmos_rl/dispatcher/data",
                "cosmos_rl/dispatcher/data/packer"):
        (root / pkg).mkdir(parents=True, exist_ok=True)
        (root / pkg / "__init__.py").write_text("")
    (root / "cosmos_rl/launcher/worker_entry.py").write_text(FAKE_WORKER_ENTRY)
    (root / "cosmos_rl/dispatcher/data/packer/base.py").write_text(FAKE_PACKER_BASE)
    return root


def test_entry_dataset_matches_the_deepspeed_conversations(tmp_path):
    data = tmp_path / "data"
    make_synthetic(data, num_train=3, num_eval=3)
    (data / "train" / "metas" / "orphan.label.json").write_text("{}")  # a label without its video: skipped
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = typed(compose(config_name="config", overrides=[
            "stage=sft", "backend=cosmos_rl", f"dataset.root={data}", "dataset.vision.nframes=8",
            f"paths.root={tmp_path}/outputs", "train.eval_every=5", "train.eval_batches=1",
            "train.micro_batch_size=2", "train.global_batch_size=2"]))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "resolved.yaml").write_text(resolved_yaml(cfg))

    fake = _fake_cosmos_rl(tmp_path / "fake")
    out = tmp_path / "seen.json"
    env = dict(os.environ, PYTHONPATH=str(fake), FAKE_OUT=str(out), COSMOS_ROLE="Controller")
    # cosmos-rl hands the script a temporary TOML copy and may add flags of its own.
    proc = subprocess.run([sys.executable, str(ENTRY_SCRIPT), "--config", "/tmp/cosmos_copy.toml",
                           "--cosmos-exp-run-dir", str(run_dir), "--some-cosmos-flag", "1"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(out.read_text())
    # The entry runs in cosmos-rl's env (transformers<5): it must not import them (nor Hydra: one package less to
    # install there); torch.utils.data it may, cosmos-rl's environment has torch.
    assert seen["heavy"] == []
    assert seen["config"] == "/tmp/cosmos_copy.toml" and seen["run_dir"] == str(run_dir)
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [(m["step"], m["loss"], m["lr"], m["grad_norm"]) for m in lines] == [(1, 1.0, 1e-5, 0.5), (2, 0.5, 1e-5, 0.5)]
    assert lines[0]["train/loss_avg"] == 1.0 and "note" not in lines[0]

    samples, _ = load_split(cfg, cfg.dataset.train_split)  # what the DeepSpeed loop trains on
    assert seen["items"] == [s.conversation for s in samples]
    assert len(seen["items"]) == 3
    # train.eval_every: the eval split as cosmos-rl's val_dataset, eval_batches x micro batch x world items.
    held_out, _ = load_split(cfg, cfg.dataset.eval_split)
    assert seen["val"] == [s.conversation for s in held_out][:2] and len(seen["val"]) == 2
    first = seen["items"][0]
    assert [m["role"] for m in first] == ["system", "user", "assistant"]
    video = first[1]["content"][0]
    assert video["type"] == "video" and video["nframes"] == 8 and "fps" not in video
    assert os.path.isabs(video["video"]) and Path(video["video"]).is_file()

    report = json.loads((run_dir / "cosmos_rl" / "data_report_train.json").read_text())
    assert (report["used"], report["skipped"]) == (3, 1)
    assert "orphan.label.json" in report["skipped_items"][0]["file"]
    assert "built synthetic_av/train: 3 of 4 items used" in proc.stderr

    # Another role of the same launch reads what the first one built (no second scan of the clips).
    Path(seen["items"][0][1]["content"][0]["video"]).unlink()
    again = subprocess.run([sys.executable, str(ENTRY_SCRIPT), "--config", "c.toml", "--cosmos-exp-run-dir",
                            str(run_dir)], env=dict(env, COSMOS_ROLE="Policy"), capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "built" not in again.stderr and "3 conversations" in again.stderr
    assert json.loads(out.read_text())["items"] == seen["items"]
    # A relaunch redoes steps 1-2: their old lines are replaced, not doubled.
    assert [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()] == [1, 2]


@pytest.mark.slow
def test_concurrent_roles_build_the_dataset_once(tmp_path):
    data = tmp_path / "data"
    make_synthetic(data, num_train=2, num_eval=1)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = typed(compose(config_name="config", overrides=[
            "stage=sft", "backend=cosmos_rl", f"dataset.root={data}", "dataset.vision.nframes=8"]))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "resolved.yaml").write_text(resolved_yaml(cfg))
    fake = _fake_cosmos_rl(tmp_path / "fake")
    procs = [subprocess.Popen([sys.executable, str(ENTRY_SCRIPT), "--cosmos-exp-run-dir", str(run_dir)],
                              env=dict(os.environ, PYTHONPATH=str(fake), FAKE_OUT=str(tmp_path / f"o{i}.json"),
                                       COSMOS_ROLE=role), stderr=subprocess.PIPE, text=True)
             for i, role in enumerate(("Controller", "Policy", "Policy"))]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errs
    assert sum("built" in e for e in errs) == 1
    items = [json.loads((tmp_path / f"o{i}.json").read_text())["items"] for i in range(3)]
    assert items[0] == items[1] == items[2] and len(items[0]) == 2


def test_entry_fails_clearly_without_the_run_config(tmp_path):
    fake = _fake_cosmos_rl(tmp_path / "fake")
    env = dict(os.environ, PYTHONPATH=str(fake), FAKE_OUT=str(tmp_path / "x.json"), COSMOS_ROLE="Policy")
    proc = subprocess.run([sys.executable, str(ENTRY_SCRIPT), "--config", "c.toml", "--cosmos-exp-run-dir",
                           str(tmp_path / "nowhere")], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "resolved.yaml is missing" in proc.stderr


def test_parse_args_leaves_unknown_flags_to_cosmos_rl():
    args = parse_args(["--cosmos-exp-run-dir", "/r", "--config", "c.toml", "--policy", "2"])
    assert args.cosmos_exp_run_dir == "/r" and args.cosmos_exp_split is None


def test_metrics_file_after_a_resume_keeps_earlier_steps(tmp_path):
    from cosmos_exp.train.cosmos_rl.metrics_hook import MetricsFile

    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in range(1, 6)))
    log = MetricsFile(tmp_path)  # the relaunch resumes from the step-3 checkpoint
    log({"train/loss_avg": 0.25}, 4)
    log({"val/avg_loss": 0.75, "val/train_step": 4}, 4)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [1, 2, 3, 4, 4]
    assert lines[3]["loss"] == 0.25 and lines[4]["eval_loss"] == 0.75
