"""Trajectory checkpoints (backbone as a plain HF directory + action_expert/) and the backbone-loading check that
catches upstream's stage-1 bug."""

import json
import shutil

import pytest
import torch

from cosmos_exp.config.trajectory import TrajectoryPromptConfig
from cosmos_exp.data.processor import Processor
from cosmos_exp.models.loading import load_model
from cosmos_exp.models.trajectory_checkpoint import (
    EXPERT_DIR, BackboneMismatchError, check_backbone, load_trajectory_checkpoint, save_trajectory_checkpoint,
    weights_digest,
)
from tests._trajectory_fixtures import (  # noqa: F401  (fixtures)
    ACTIONS, PROMPT, batch, dirs, make_model, processor,
)


def test_checkpoint_round_trip_gives_identical_outputs(dirs, batch):
    prompt = TrajectoryPromptConfig(**{**PROMPT.__dict__, "camera_id_embedding": True})
    model = make_model(dirs["backbone"], prompt=prompt, seed=3)
    with torch.no_grad():
        model.camera_embedding.weight.normal_()
    out = save_trajectory_checkpoint(model, dirs["root"] / "ckpt")
    assert load_model(out).config.model_type == "qwen3_vl"  # the backbone is a plain HF checkpoint
    assert Processor.from_pretrained(out).tokenizer.convert_tokens_to_ids("<|traj_hist_0|>") == \
        Processor.from_pretrained(dirs["backbone"]).tokenizer.convert_tokens_to_ids("<|traj_hist_0|>")
    meta = json.loads((out / EXPERT_DIR / "config.json").read_text())
    assert meta["backbone"]["sha256"] == weights_digest(dirs["backbone"]) == weights_digest(out)
    assert meta["action_space"]["accel_std"] == ACTIONS.accel_std and meta["expert"]["hidden_size"] == 32

    loaded = load_trajectory_checkpoint(out, dtype="float32", expected_backbone=dirs["backbone"])
    s1 = model.sample(batch, k=2, steps=3, generator=torch.Generator().manual_seed(0))
    s2 = loaded.sample(batch, k=2, steps=3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s1.actions, s2.actions) and torch.equal(s1.xy, s2.xy)
    l1 = model.stage2_loss(batch, generator=torch.Generator().manual_seed(0))
    l2 = loaded.stage2_loss(batch, generator=torch.Generator().manual_seed(0))
    assert torch.equal(l1, l2)


@pytest.fixture(scope="module")
def stage1(dirs):
    """A 'stage-1 output': the prepared backbone with trained (here: perturbed) language-model weights."""
    m = load_model(dirs["backbone"], dtype="float32")
    with torch.no_grad():
        m.model.language_model.layers[0].mlp.up_proj.weight.add_(0.01)
    out = dirs["root"] / "stage1"
    shutil.copytree(dirs["backbone"], out)
    (out / "model.safetensors").unlink()
    m.save_pretrained(out)
    return out


def test_backbone_check_catches_base_weights_where_stage1_was_named(dirs, stage1):
    wrong = make_model(dirs["backbone"])  # built from the base (prepared) backbone although stage 1 is named
    with pytest.raises(BackboneMismatchError) as e:
        check_backbone(wrong, stage1)
    msg = str(e.value)
    assert str(dirs["backbone"]) in msg and str(stage1) in msg and "layers.0.mlp.up_proj" in msg and "\n" not in msg

    right = make_model(stage1)
    check_backbone(right, stage1)  # passes

    # upstream's bug itself: built from stage 1, then the base weights loaded over it
    right.backbone.load_state_dict(load_model(dirs["backbone"], dtype="float32").state_dict())
    with pytest.raises(BackboneMismatchError, match="not the checkpoint the config names"):
        check_backbone(right, stage1)

    # a lower-precision load of the named checkpoint passes (compared in the loaded precision)
    check_backbone(make_model(stage1, dtype="bfloat16"), stage1)


def test_loading_refuses_a_backbone_changed_after_saving(dirs, stage1):
    out = save_trajectory_checkpoint(make_model(dirs["backbone"]), dirs["root"] / "ckpt_changed")
    shutil.copyfile(stage1 / "model.safetensors", out / "model.safetensors")
    with pytest.raises(BackboneMismatchError, match="changed after saving"):
        load_trajectory_checkpoint(out, dtype="float32")
    fresh = save_trajectory_checkpoint(make_model(dirs["backbone"]), dirs["root"] / "ckpt_fresh")
    with pytest.raises(BackboneMismatchError, match="not the checkpoint the config names"):
        load_trajectory_checkpoint(fresh, dtype="float32", expected_backbone=stage1)


def test_unreadable_expert_metadata_fails_naming_the_file(dirs):
    with pytest.raises(FileNotFoundError, match="not a trajectory checkpoint"):
        load_trajectory_checkpoint(dirs["backbone"])
    out = save_trajectory_checkpoint(make_model(dirs["backbone"]), dirs["root"] / "ckpt_meta")
    path = out / EXPERT_DIR / "config.json"
    meta = json.loads(path.read_text())
    meta["expert"]["hidden_sise"] = 8
    path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"config.json: section 'expert' .*unknown keys \['hidden_sise'\]"):
        load_trajectory_checkpoint(out)
