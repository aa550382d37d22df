"""Schedule, optimiser groups, DeepSpeed config and checkpoint directories (processes: test_runtime_*.py)."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from cosmos_exp.config.parallel import ParallelismConfig
from cosmos_exp.config.train import ModuleLR, TrainConfig
from cosmos_exp import rundir
from cosmos_exp.train import checkpoint as ckpt
from cosmos_exp.train.ds_config import deepspeed_config, grad_accumulation
from cosmos_exp.train.schedule import lr_factor, resolve_warmup


def _train(**kw):
    return OmegaConf.structured(TrainConfig(**kw))


# -- schedule ---------------------------------------------------------------------------------------

def test_warmup_from_steps_or_ratio():
    assert resolve_warmup(100, 7, None) == 7
    assert resolve_warmup(100, None, 0.03) == 3
    assert resolve_warmup(10, None, 0.0) == 0
    assert resolve_warmup(5, 50, None) == 5


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_warmup_then_decay_to_floor(schedule):
    total, warm = 20, 4
    f = [lr_factor(s, total, warm, schedule, 0.1) for s in range(total)]
    assert f[:4] == [0.25, 0.5, 0.75, 1.0]
    assert f[4] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[4:], f[5:]))  # non-increasing after warm-up
    assert lr_factor(total, total, warm, schedule, 0.1) == pytest.approx(0.1)
    mid = lr_factor(warm + (total - warm) // 2, total, warm, schedule, 0.0)
    assert mid == pytest.approx(0.5)  # both shapes pass the midpoint at half way


def test_constant_and_unknown_schedule():
    assert [lr_factor(s, 10, 2, "constant") for s in range(4)] == [0.5, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="unknown lr schedule"):
        lr_factor(0, 10, 0, "exponential")


def test_scheduler_keeps_module_lr_ratio():
    import torch

    from cosmos_exp.train.schedule import build_scheduler

    p1, p2 = torch.nn.Parameter(torch.ones(2, 2)), torch.nn.Parameter(torch.ones(2, 2))
    opt = torch.optim.AdamW([{"params": [p1], "lr": 1e-3}, {"params": [p2], "lr": 1e-4}])
    sched = build_scheduler(opt, _train(lr=1e-3, warmup_steps=2, warmup_ratio=None, lr_schedule="cosine"), 10)
    seen = []
    for _ in range(6):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    assert seen[0] == pytest.approx([5e-4, 5e-5])
    assert seen[1] == pytest.approx([1e-3, 1e-4])
    for a, b in seen:
        assert a / b == pytest.approx(10.0)


# -- optimiser --------------------------------------------------------------------------------------

class _Tiny:
    """A model-shaped module: a 'visual' tower and a language model with norms and biases."""

    @staticmethod
    def build():
        import torch

        m = torch.nn.Module()
        m.visual = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
        m.language_model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
        return m


def test_freeze_patterns_and_typos():
    from cosmos_exp.train.optim import apply_freeze

    m = _Tiny.build()
    frozen = apply_freeze(m, ["visual.*"])
    assert frozen == ["visual.0.bias", "visual.0.weight", "visual.1.bias", "visual.1.weight"]
    assert all(not p.requires_grad for n, p in m.named_parameters() if n.startswith("visual"))
    assert all(p.requires_grad for n, p in m.named_parameters() if n.startswith("language_model"))
    with pytest.raises(ValueError, match="'vision_tower.*' matches no parameter"):
        apply_freeze(_Tiny.build(), ["vision_tower.*"])
    with pytest.raises(ValueError, match="nothing would train"):
        apply_freeze(_Tiny.build(), ["*"])


def test_param_groups_scale_and_decay():
    from cosmos_exp.train.optim import build_optimizer, param_groups

    train = _train(lr=1e-3, weight_decay=0.1, module_lr=[ModuleLR(pattern="visual", scale=0.1)])
    groups = param_groups(_Tiny.build(), train)
    by_key = {(g["lr_scale"], g["weight_decay"]): sorted(g["names"]) for g in groups}
    assert by_key == {
        (0.1, 0.0): ["visual.0.bias", "visual.1.bias", "visual.1.weight"],
        (0.1, 0.1): ["visual.0.weight"],
        (1.0, 0.0): ["language_model.0.bias", "language_model.1.bias", "language_model.1.weight"],
        (1.0, 0.1): ["language_model.0.weight"],
    }
    opt = build_optimizer(_Tiny.build(), train)
    assert sorted(g["lr"] for g in opt.param_groups) == pytest.approx([1e-4, 1e-4, 1e-3, 1e-3])
    with pytest.raises(ValueError, match=r"module_lr\[0\].pattern 'vision'"):
        param_groups(_Tiny.build(), _train(module_lr=[ModuleLR(pattern="vision", scale=0.1)]))


# -- DeepSpeed config -------------------------------------------------------------------------------

def test_deepspeed_config_from_parallelism():
    train = _train(micro_batch_size=2, global_batch_size=8, grad_clip=1.0)
    par = OmegaConf.structured(ParallelismConfig(zero_stage=3, nproc_per_node=2, offload_optimizer=True,
                                                 offload_param=True))
    cfg = deepspeed_config(par, train, world_size=2, on_gpu=False)
    assert cfg["gradient_accumulation_steps"] == 2
    assert cfg["train_batch_size"] == 8 and cfg["train_micro_batch_size_per_gpu"] == 2
    assert cfg["bf16"]["enabled"] is False and cfg["gradient_clipping"] == 1.0
    z = cfg["zero_optimization"]
    assert z["stage"] == 3 and z["offload_optimizer"]["device"] == "cpu" and z["offload_param"]["device"] == "cpu"
    assert z["stage3_gather_16bit_weights_on_model_save"] is True
    gpu = deepspeed_config(OmegaConf.structured(ParallelismConfig(zero_stage=2)), train, 1, on_gpu=True)
    assert gpu["bf16"]["enabled"] is True and "offload_optimizer" not in gpu["zero_optimization"]
    assert gpu["gradient_accumulation_steps"] == 4
    with pytest.raises(ValueError, match="must be a multiple of 3"):
        grad_accumulation(_train(micro_batch_size=3, global_batch_size=8), 1)


# -- checkpoint directories -------------------------------------------------------------------------

def _fake_checkpoint(run_dir: Path, step: int) -> Path:
    tmp = rundir.temp_step_dir(run_dir, step)
    tmp.mkdir(parents=True)
    (tmp / "model.safetensors").write_bytes(b"x" * 10)
    (tmp / ckpt.STATE_DIR).mkdir()  # the layout of our loop's checkpoints: the export beside its training state
    (tmp / ckpt.STATE_DIR / "optim_states.pt").write_bytes(b"o" * 30)
    (tmp / ckpt.state_file(0)).write_bytes(b"r")
    return ckpt.publish(run_dir, step, {"world_size": 1})


def _layout(run_dir: Path) -> dict:
    """step name -> (has the export, has the training state) of every complete checkpoint."""
    return {p.name: ((p / "model.safetensors").is_file(), ckpt.has_training_state(p)
                     and (p / ckpt.state_file(0)).is_file()) for p in rundir.list_complete(run_dir)}


def test_publish_latest_retention_and_resume(tmp_path):
    assert ckpt.resume_target(tmp_path, "auto") is None
    for step in (2, 4, 6):
        _fake_checkpoint(tmp_path, step)
    assert (rundir.checkpoints_dir(tmp_path) / "latest").read_text().strip() == "step_6"
    # A checkpoint that was being written when the run died is neither listed nor resumed.
    half = rundir.temp_step_dir(tmp_path, 8)
    half.mkdir()
    incomplete = rundir.step_dir(tmp_path, 10)
    incomplete.mkdir()
    assert [p.name for p in rundir.list_complete(tmp_path)] == ["step_2", "step_4", "step_6"]
    assert ckpt.resume_target(tmp_path, "auto").name == "step_6"
    assert ckpt.resume_target(tmp_path, "none") is None
    assert ckpt.resume_target(tmp_path, str(rundir.step_dir(tmp_path, 4))).name == "step_4"
    with pytest.raises(FileNotFoundError, match="not a complete checkpoint"):
        ckpt.resume_target(tmp_path, str(incomplete))
    assert ckpt.clean_temp_dirs(tmp_path) == [".tmp_step_8"]
    assert ckpt.apply_retention(tmp_path, None, None) == {"states": [], "checkpoints": []}
    # Few states, every export: the older checkpoints stay complete and evaluable, without their state.
    assert ckpt.apply_retention(tmp_path, 1, None) == {"states": ["step_2", "step_4"], "checkpoints": []}
    assert _layout(tmp_path) == {"step_2": (True, False), "step_4": (True, False), "step_6": (True, True)}
    assert not (rundir.step_dir(tmp_path, 2) / ckpt.STATE_DIR).exists()
    assert rundir.read_checkpoint_info(rundir.step_dir(tmp_path, 2)) == {"step": 2, "training_state": False,
                                                                         "world_size": 1}
    assert ckpt.resume_target(tmp_path, "auto").name == "step_6"
    with pytest.raises(FileNotFoundError, match="exported weights only.*resume from .*step_6"):
        ckpt.resume_target(tmp_path, str(rundir.step_dir(tmp_path, 4)))
    # Exports pruned too: a directory goes once neither its export nor its state is kept.
    assert ckpt.apply_retention(tmp_path, 1, 2) == {"states": [], "checkpoints": ["step_2"]}
    assert _layout(tmp_path) == {"step_4": (True, False), "step_6": (True, True)}
    assert rundir.read_checkpoint_info(rundir.step_dir(tmp_path, 6))["step"] == 6


def test_a_requeued_job_resumes_its_own_newest_checkpoint(tmp_path):
    """SLURM_RESTART_COUNT > 0: the job's own checkpoint wins over train.resume, which said where its first
    attempt starts; with none of its own yet, train.resume still applies."""
    other, run = tmp_path / "other", tmp_path / "run"
    _fake_checkpoint(other, 3)
    given = str(rundir.step_dir(other, 3))
    assert ckpt.resume_target(run, "none", requeued=True) is None
    assert ckpt.resume_target(run, given, requeued=True).name == "step_3"
    _fake_checkpoint(run, 2)
    for resume in ("none", "auto", given):
        assert ckpt.resume_target(run, resume, requeued=True) == rundir.step_dir(run, 2)
    assert ckpt.resume_target(run, "none") is None and ckpt.resume_target(run, given).parent.parent == other


def test_retention_keeps_a_state_whose_export_is_not_kept(tmp_path):
    for step in (2, 4, 6):
        _fake_checkpoint(tmp_path, step)
    # One export but two states: step_4 stays for its state (resume's spare), step_2 goes whole.
    assert ckpt.apply_retention(tmp_path, 2, 1) == {"states": [], "checkpoints": ["step_2"]}
    assert _layout(tmp_path) == {"step_4": (True, True), "step_6": (True, True)}
