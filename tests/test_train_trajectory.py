"""Trajectory training on the DeepSpeed loop (task=trajectory_stage1|stage2|cotrain): the task config and its
rules, the checks on model.path, stage 1's future tokens, and real runs of the loop on in-memory scenes
(tests/_trajectory_train.py, in its own process): stage 1's loss falls; stage 2 leaves the backbone bitwise as
it was and trains the expert; co-training moves both; a stage-2 model whose backbone is not model.path's is
refused (upstream's stage-1-weights bug). Slow: a SIGKILLed stage-2 run resumes to the same weights (three
processes), and stage 1 on two ranks over gloo with ZeRO-2."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
import torch

from cosmos_exp.config import ConfigError, register_configs
from conftest import REPO_ROOT, run_cli, wait_for
from tests._trajectory_fixtures import ACTIONS, SMALL, dirs, features, make_model, processor  # noqa: F401
from tests._trajectory_train import compose

register_configs()
SCRIPT = REPO_ROOT / "tests" / "_trajectory_train.py"


def _run(run_dir: Path, backbone: Path, *overrides: str) -> dict:
    proc = subprocess.run([sys.executable, str(SCRIPT), str(run_dir), str(backbone), *overrides],
                          capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _tensors(path: Path) -> Dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def _backbone(step: Path) -> Dict[str, torch.Tensor]:
    return _tensors(step / "model.safetensors")


def _expert(step: Path) -> Dict[str, torch.Tensor]:
    return _tensors(step / "action_expert" / "model.safetensors")


def _losses(run_dir: Path) -> List[float]:
    return [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _fresh_expert(backbone: Path, seed: int = 42) -> Dict[str, torch.Tensor]:
    """The expert a run with `seed` starts from (the config's default seed)."""
    return {k: v for k, v in make_model(backbone, seed=seed).state_dict().items() if not k.startswith("backbone.")}


# -- config ----------------------------------------------------------------------------------------------------

def test_caption_stays_the_default_and_the_trajectory_presets_compose(dirs, tmp_path):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from cosmos_exp.config.validate import typed
    from conftest import CONF_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = typed(hydra_compose("config", overrides=["experiment=demo"]))
    assert cfg.task.kind == "caption" and cfg.task.trajectory is None and "loss" not in cfg.train
    for stage in ("stage1", "stage2", "cotrain"):
        cfg = compose(tmp_path / "run", dirs["backbone"], [f"task=trajectory_{stage}"])
        assert cfg.task.kind == "trajectory" and cfg.task.trajectory.stage == stage
        assert cfg.task.trajectory.action_space.token_bins == 3000  # the reference's bins over [-10, 10]
        assert (cfg.task.trajectory.action_space.token_min, cfg.task.trajectory.action_space.token_max) == (-10, 10)


RULES = [
    (["backend=cosmos_rl"], "task", "cosmos-rl trains captions only; use backend=deepspeed"),
    (["stage=caption"], "task", "scored with stage=evaluate eval=trajectory"),
    (["stage=evaluate"], "eval.metrics", "use eval=trajectory"),
    (["parallelism=zero3", "parallelism.nproc_per_node=1"], "parallelism.zero_stage", "ZeRO 0-2"),
    (["train.freeze=[model.visual.*]"], "train.freeze", "freezes the whole backbone"),
    (["task=trajectory_cotrain", "train.gradient_checkpointing=true"], "train.gradient_checkpointing", "KV cache"),
    (["task.kind=caption"], "task.trajectory", "only when task.kind=trajectory"),
    (["task.trajectory.stage=stage3"], "task.trajectory.stage", "stage3"),
    (["task=trajectory_stage1", "task.trajectory.action_space.token_bins=1"],
     "task.trajectory.action_space.token_bins", ">= 2"),
]


@pytest.mark.parametrize("overrides,key,words", RULES)
def test_config_rules_name_their_key(overrides, key, words, dirs, tmp_path):
    with pytest.raises(ConfigError) as err:
        compose(tmp_path / "run", dirs["backbone"], overrides)
    assert err.value.key == key and words in str(err.value), str(err.value)


def test_a_checkpoint_without_the_trajectory_tokens_or_with_another_expert_is_refused(dirs, tmp_path):
    from cosmos_exp.models.trajectory_checkpoint import save_trajectory_checkpoint
    from cosmos_exp.train.trajectory_task import check_checkpoint

    with pytest.raises(ConfigError) as err:  # the base model: never prepared
        check_checkpoint(compose(tmp_path / "run", dirs["base"], ["task=trajectory_stage2"]))
    assert err.value.key == "model.path" and "lacks the trajectory tokens" in str(err.value)
    assert "prepare_backbone" in str(err.value)
    check_checkpoint(compose(tmp_path / "run", dirs["backbone"], ["task=trajectory_stage1"]))  # prepared: fine

    ckpt = save_trajectory_checkpoint(make_model(dirs["backbone"]), tmp_path / "traj_ckpt")
    check_checkpoint(compose(tmp_path / "run", ckpt, ["task=trajectory_stage2"]))  # the same expert settings
    with pytest.raises(ConfigError) as err:
        check_checkpoint(compose(tmp_path / "run", ckpt, ["task.trajectory.expert.hidden_size=48"]))
    assert err.value.key == "task.trajectory.expert.hidden_size" and "48" in str(err.value)


@pytest.mark.slow
def test_the_cli_prepares_and_trains_stage_1_then_stage_2_on_the_synthetic_rigs(tmp_path):
    """The user's path: stage=prepare (scenes + the tiny backbone with the trajectory tokens), stage 1, then stage 2
    from stage 1's checkpoint, each one CLI run with its run directory."""
    small = ["experiment=trajectory_synthetic", f"paths.root={tmp_path}/outputs", "dataset.driving_synthetic.num_train=8",
             "dataset.driving_synthetic.num_eval=4", "train.max_steps=2", "train.save_every=2", "train.eval_every=2",
             "train.micro_batch_size=2", "train.global_batch_size=2"]
    proc = run_cli(["stage=prepare", *small], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run_cli(["stage=sft", *small, f"hydra.run.dir={tmp_path}/stage1"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    step = tmp_path / "stage1" / "checkpoints" / "step_2"
    assert (step / "action_expert").is_dir() and (step / "complete.json").is_file()
    report = json.loads((tmp_path / "stage1" / "data_report.json").read_text())
    assert report["used"] == 8 and report["split"] == "train"  # rig A's scenes (dataset.rigs=[rig_a])
    proc = run_cli(["stage=sft", *small, "task=trajectory_stage2", f"model.path={step}",
                    f"hydra.run.dir={tmp_path}/stage2"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "stage2" / "train_result.json").read_text())
    assert result["final_eval_loss"] is not None and result["trainable_parameters"] > 0


# -- stage 1's future tokens --------------------------------------------------------------------------------------

def test_future_tokens_follow_the_prefix_labelled_and_decode_to_the_actions(dirs, processor):
    from cosmos_exp.config.task import TrajectoryTaskConfig
    from cosmos_exp.train.trajectory_batches import with_future_tokens
    from cosmos_exp.trajectory.future_tokens import actions_from_future_ids, future_token_offset
    from cosmos_exp.trajectory.token_names import FUTURE_START, future_token

    f = features(processor)[1]  # the left turn
    offset = future_token_offset(processor.tokenizer, ACTIONS)
    assert offset == processor.tokenizer.convert_tokens_to_ids(future_token(0))
    out = with_future_tokens(f, offset, TrajectoryTaskConfig(stage="stage1"), processor.model_max_length)
    n, t = f["input_ids"].shape[0], ACTIONS.n_steps
    assert torch.equal(out["input_ids"][:n], f["input_ids"]) and out["input_ids"].shape[0] == n + 2 * t
    assert int(f["input_ids"][-1]) == processor.tokenizer.convert_tokens_to_ids(FUTURE_START)
    assert (out["labels"][:n] == -100).all() and torch.equal(out["labels"][n:], out["input_ids"][n:])
    assert int(out["prefix_length"]) == n and out["attention_mask"].sum() == n + 2 * t
    decoded = actions_from_future_ids(out["input_ids"][n:], ACTIONS, offset)
    half_bin = (ACTIONS.token_max - ACTIONS.token_min) / ACTIONS.token_bins / 2
    assert (decoded - f["actions"]).abs().max() <= half_bin + 1e-6
    with pytest.raises(ValueError, match="model_max_length"):
        with_future_tokens(f, offset, TrajectoryTaskConfig(stage="stage1"), n + 10)



def test_samples_kept_in_memory_give_the_same_batches_and_stay_within_the_bound(processor):
    from cosmos_exp.config.task import TrajectoryTaskConfig
    from cosmos_exp.train.trajectory_batches import TrajectoryBatches

    items = features(processor) + features(processor, seed=1)
    calls = []

    def encode(_, item):
        calls.append(1)
        return dict(item)

    def batches(mib):
        cfg = TrajectoryTaskConfig(stage="stage1", action_space=ACTIONS, sample_memory_mib=mib)
        return TrajectoryBatches(items, encode, processor, cfg, batch_size=2, seed=0, rank=0, world_size=1)

    plain, kept = batches(0), batches(64)
    for step in range(6):  # three passes over the four items
        a, b = plain[step], kept[step]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert len(calls) == 12 + 4 and len(kept.memo) == 4 and not plain.memo  # each item encoded once when kept
    sizes = [sum(v.numel() * v.element_size() for v in f.values() if hasattr(v, "element_size"))
             for f in kept.memo.values()]
    assert kept.memo_bytes == sum(sizes) <= 64 * 2**20

# -- the backbone-loading check (upstream's bug) -----------------------------------------------------------------

def test_stage2_refuses_a_backbone_that_is_not_model_path(dirs, tmp_path, monkeypatch):
    """Upstream built stage 2 with the stage-1 weights and then let from_pretrained load the base checkpoint over
    them. Simulated here: model.path is a 'stage-1' checkpoint, the loader hands back the weights before it."""
    from cosmos_exp.models import trajectory_model
    from cosmos_exp.models.loading import load_model, save_checkpoint
    from cosmos_exp.train.trajectory_task import TrajectorySource, TrajectoryTask

    stage1 = load_model(dirs["backbone"], dtype="float32")
    with torch.no_grad():
        stage1.lm_head.weight.add_(0.01)
    stage1_dir = save_checkpoint(stage1, dirs["backbone"], tmp_path / "stage1")
    cfg = compose(tmp_path / "run", stage1_dir, ["task=trajectory_stage2"])
    source = TrajectorySource(items=lambda split: [], encode=lambda processor, item: item)
    model = TrajectoryTask(cfg, source).load_model()  # the right weights: passes
    assert torch.equal(model.backbone.lm_head.weight, stage1.lm_head.weight)

    monkeypatch.setattr(trajectory_model, "load_model", lambda path, **kw: load_model(dirs["backbone"], **kw))
    with pytest.raises(ConfigError) as err:
        TrajectoryTask(cfg, source).load_model()
    message = str(err.value)
    assert err.value.key == "model.path" and "\n" not in message
    assert "is not the checkpoint the config names" in message and str(stage1_dir) in message


# -- the loop --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stage1_run(dirs):
    run_dir = dirs["root"] / "stage1_run"
    result = _run(run_dir, dirs["backbone"], "task=trajectory_stage1", "train.max_steps=8", "train.save_every=8",
                  "train.lr=1e-2")
    return {"dir": run_dir, "result": result, "step": run_dir / "checkpoints" / "step_8"}


def test_stage1_loss_falls_and_its_checkpoint_is_a_trajectory_model(stage1_run, dirs):
    from cosmos_exp.models.trajectory_checkpoint import load_trajectory_checkpoint

    losses = _losses(stage1_run["dir"])
    assert len(losses) == 8 and sum(losses[-2:]) / 2 < sum(losses[:2]) / 2 - 0.5, losses
    step = stage1_run["step"]
    info = json.loads((step / "complete.json").read_text())
    assert info["task"] == "trajectory_stage1" and stage1_run["result"]["task"] == "trajectory_stage1"
    before, after = _backbone(dirs["backbone"]), _backbone(step)
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the backbone trained
    fresh = _fresh_expert(dirs["backbone"])
    assert all(torch.equal(v, fresh[k]) for k, v in _expert(step).items())  # the expert did not
    model = load_trajectory_checkpoint(step, dtype="float32", expected_backbone=step)  # what evaluate loads
    assert model.expert_cfg.hidden_size == SMALL.hidden_size


def test_stage2_from_stage1_freezes_the_backbone_and_trains_the_expert(stage1_run, tmp_path):
    start = stage1_run["step"]  # a trajectory checkpoint: its backbone and expert are loaded, the expert goes on
    run_dir = tmp_path / "stage2"
    result = _run(run_dir, start, "task=trajectory_stage2", "train.eval_every=2", "train.eval_batches=1")
    step = run_dir / "checkpoints" / "step_4"
    before, after = _backbone(start), _backbone(step)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)  # bitwise
    expert_before, expert_after = _expert(start), _expert(step)
    changed = [k for k in expert_before if not torch.equal(expert_before[k], expert_after[k])]
    assert changed == list(expert_before)  # every expert tensor moved
    n_expert = sum(v.numel() for v in expert_before.values())
    assert result["trainable_parameters"] == n_expert  # only the expert's parameters were optimised
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics if "eval_loss" in m] == [2, 4]
    for key in ("loss", "lr", "grad_norm", "tokens_per_s", "samples_per_s", "step_time_s", "memory_gb"):
        assert metrics[-1][key] == metrics[-1][key], key  # present, not NaN


def test_cotrain_trains_backbone_and_expert(stage1_run, tmp_path):
    start = stage1_run["step"]
    run_dir = tmp_path / "cotrain"
    _run(run_dir, start, "task=trajectory_cotrain", "train.max_steps=2")
    step = run_dir / "checkpoints" / "step_2"
    before, after = _backbone(start), _backbone(step)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    expert_before, expert_after = _expert(start), _expert(step)
    assert any(not torch.equal(expert_before[k], expert_after[k]) for k in expert_before)
    assert all(loss == loss and loss > 0 for loss in _losses(run_dir))


@pytest.mark.slow  # three training processes one after another (~40 s on 2 cores)
def test_stage2_resume_after_sigkill_matches_the_uninterrupted_run(dirs, tmp_path):
    extra = ("task=trajectory_stage2", "train.max_steps=6", "train.save_every=2")
    straight = tmp_path / "straight"
    _run(straight, dirs["backbone"], *extra)
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(SCRIPT), str(killed), str(dirs["backbone"]), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    try:
        wait_for(killed / "checkpoints" / "step_2", proc)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert not (killed / "checkpoints" / "step_6").exists(), "the run finished before it could be killed"
    result = _run(killed, dirs["backbone"], *extra)  # train.resume=auto, the same run directory
    assert result["start_step"] >= 2 and result["steps"] == 6
    a, b = straight / "checkpoints" / "step_6", killed / "checkpoints" / "step_6"
    for load in (_backbone, _expert):
        wa, wb = load(a), load(b)
        assert wa.keys() == wb.keys()
        worst = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
        assert worst <= 1e-6, f"max weight difference {worst}"
    assert any(not torch.equal(v, _fresh_expert(dirs["backbone"])[k]) for k, v in _expert(a).items())
    steps = [json.loads(line)["step"] for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 7))


@pytest.mark.slow
def test_stage1_two_ranks_zero2_over_gloo(dirs, tmp_path):
    """Stage 1 the reference's way, ZeRO-2, two ranks started by torchrun (each builds its in-memory source)."""
    run_dir = tmp_path / "zero2"
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(SCRIPT),
            str(run_dir), str(dirs["backbone"]), "task=trajectory_stage1", "parallelism=zero2",
            "train.micro_batch_size=1", "train.global_batch_size=2", "train.max_steps=6", "train.save_every=3",
            "train.lr=1e-2"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    losses = _losses(run_dir)
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2 - 0.3, losses
    step = run_dir / "checkpoints" / "step_6"
    info = json.loads((step / "complete.json").read_text())
    assert info["world_size"] == 2 and info["zero_stage"] == 2 and info["task"] == "trajectory_stage1"
    from cosmos_exp.models.trajectory_checkpoint import load_trajectory_checkpoint

    load_trajectory_checkpoint(step, dtype="float32", expected_backbone=step)
