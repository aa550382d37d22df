"""backend=cosmos_rl: the rendered TOML round-trips and carries our values; bad keys fail naming the key."""

import json
import re
import sys
import tomllib
from pathlib import Path
from typing import List

import pytest
from omegaconf import DictConfig

from cosmos_exp.config import ConfigError
from cosmos_exp.config.validate import check_backend, check_choices, validate
from cosmos_exp.train.cosmos_rl import pydantic_check, render, schema, toml_io
from cosmos_exp.train.cosmos_rl.document import validated_document

from _compose import compose_typed

RUN_DIR = Path("/runs/2026-01-01/r1")
HAVE_COSMOS_RL = pydantic_check.load_config_class() is not None


def make_cfg(overrides: List[str]) -> DictConfig:
    return compose_typed(["backend=cosmos_rl", *overrides])


@pytest.fixture
def recipe_cfg(tmp_path: Path) -> DictConfig:
    """experiment=reason2_sft_recipe with fake (existing) model and data directories."""
    model, data = tmp_path / "Cosmos-Reason2-8B", tmp_path / "data"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "qwen3_vl"}))
    for sub in ("cv_annotated", "human_annotated", "reason1_sft"):
        (data / sub).mkdir(parents=True)
    cfg = make_cfg(["experiment=reason2_sft_recipe", f"model.path={model}", f"dataset.root={data}",
                    f"paths.root={tmp_path}/outputs"])
    validate(cfg)
    return cfg


def test_recipe_toml_round_trips_with_the_recipe_values(recipe_cfg, tmp_path):
    doc = render.render(recipe_cfg, RUN_DIR)
    schema.check_document(doc)
    parsed = tomllib.loads(toml_io.dumps(doc))
    assert parsed == doc  # nothing lost or changed in the text
    train, policy = parsed["train"], parsed["policy"]
    # The cookbook Reason 2 recipe (shared/reference/cookbook-recipe.md).
    assert policy["model_name_or_path"] == str(tmp_path / "Cosmos-Reason2-8B")
    assert policy["model_max_length"] == 4096
    assert policy["parallelism"] == {"n_init_replicas": 1, "tp_size": 1, "dp_shard_size": 8, "cp_size": 1,
                                     "pp_size": 1, "dp_replicate_size": 1, "ep_size": 1}
    # The cookbook's 32 per GPU x dp_shard 8 = 256 samples per optimizer step, uncompiled.
    assert (train["epoch"], train["train_batch_per_replica"], train["train_policy"]["mini_batch"]) == (3, 32, 4)
    assert recipe_cfg.train.global_batch_size == 256 and train["compile"] is False
    assert train["optm_lr"] == 2e-7 and train["optm_warmup_steps"] == 0.03 and train["optm_decay_type"] == "cosine"
    assert (train["optm_grad_norm_clip"], train["optm_weight_decay"], train["seed"]) == (1.0, 0.01, 42)
    assert train["ckpt"] == {"enable_checkpoint": True, "save_freq": 20, "max_keep": -1, "export_safetensors": True}
    assert parsed["logging"]["logger"] == ["console", "wandb"]
    assert train["train_policy"]["type"] == "sft" and parsed["validation"] == {"enable": False}
    # Deterministic paths: cosmos-rl will not append a wall-clock timestamp.
    assert train["output_dir"] == str(RUN_DIR / "cosmos_rl" / "sft") and train["timestamp"] == "sft"
    ours = parsed["custom"]["cosmos_exp"]
    assert ours["vision"]["nframes"] == 16 and "fps" not in ours["vision"]
    assert (ours["vision"]["min_pixels"], ours["vision"]["max_pixels"]) == (3136, 360000)
    assert ours["dataset"]["kind"] == "blend" and ours["run_dir"] == str(RUN_DIR)


@pytest.fixture
def legacy_checkpoint(tmp_path: Path) -> Path:
    """A Qwen2.5-VL checkpoint with the original key layout (visual.*, model.layers.*), weights of size 0."""
    import numpy as np
    from safetensors.numpy import save_file

    model = tmp_path / "qwen2_5_vl"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    keys = ["visual.blocks.0.attn.qkv.weight", "visual.blocks.0.attn.qkv.bias", "model.embed_tokens.weight",
            "model.layers.0.mlp.up_proj.weight", "model.layers.0.self_attn.q_proj.bias", "lm_head.weight"]
    save_file({k: np.zeros(0, dtype=np.float32) for k in keys}, str(model / "model.safetensors"))
    return model


def test_demo_toml_maps_steps_warmup_schedule_and_keep(legacy_checkpoint):
    cfg = make_cfg(["experiment=demo", f"model.path={legacy_checkpoint}", "train.warmup_ratio=null", "train.warmup_steps=7", "train.keep_last_states=2",
                    "train.lr_schedule=constant", "train.freeze=[model.visual.*]", "model.dtype=bf16", "train.max_steps=123",
                    "train.gradient_checkpointing=true", "parallelism.nproc_per_node=4", "parallelism.tp_size=2"])
    rendered = render.render(cfg, RUN_DIR)
    doc = tomllib.loads(toml_io.dumps(rendered))
    assert doc == rendered
    schema.check_document(doc)
    train = doc["train"]
    assert isinstance(train["optm_warmup_steps"], int) and train["optm_warmup_steps"] == 7
    assert train["optm_decay_type"] == "none" and train["max_num_steps"] == 123 and train["ckpt"]["max_keep"] == -1
    # global 4 over 4 GPUs in tp pairs: 2 data-parallel ranks of 2 samples each.
    assert (train["train_batch_per_replica"], train["train_policy"]["mini_batch"], train["optm_lr"]) == (2, 2, 3e-3)
    assert train["param_dtype"] == "bfloat16" and doc["policy"]["model_gradient_checkpointing"] is True
    assert doc["validation"] == {"enable": True, "freq": cfg.train.eval_every, "batch_size": 2,
                                 "val_before_train": False}
    # dp_shard_size=-1 becomes explicit: cosmos-rl's launcher would count -1 as 1 GPU.
    assert (doc["policy"]["parallelism"]["tp_size"], doc["policy"]["parallelism"]["dp_shard_size"]) == (2, 2)
    # fnmatch patterns become anchored regexes (cosmos-rl uses re.search) in its names: visual.* for Qwen2.5-VL.
    (pattern,) = doc["policy"]["freeze_pattern"]
    assert re.search(pattern, "visual.blocks.0.attn.qkv.weight")
    assert not re.search(pattern, "model.lm_head.visual.x") and not re.search(pattern, "model.layers.0.w")


def test_cosmos_rl_reads_our_toml_the_same(recipe_cfg, legacy_checkpoint):
    """cosmos-rl loads the file with the `toml` package (0.10.2), re-dumps it to a temporary copy and loads
    that in every role: our text must survive both (regex freeze patterns with backslashes included)."""
    toml = pytest.importorskip("toml")
    cfg = make_cfg(["experiment=demo", f"model.path={legacy_checkpoint}", "train.freeze=[model.visual.*,'*.bias']"])
    for config in (recipe_cfg, cfg):
        text = toml_io.dumps(render.render(config, RUN_DIR))
        ours = tomllib.loads(text)
        assert toml.loads(text) == ours
        assert toml.loads(toml.dumps(toml.loads(text))) == ours


def test_toml_writer_escapes_and_types():
    doc = {"a": {"s": 'quote " back \\ nl \n tab \t uni ‑ del \x7f', "f": 1e-7, "i": -1, "b": False,
                 "l": [1.5, 2.0], "none": None, "weird key": "x", "sub": {"x": []}}}
    assert tomllib.loads(toml_io.dumps(doc)) == {"a": {k: v for k, v in doc["a"].items() if k != "none"}}
    with pytest.raises(ValueError, match="a.f"):
        toml_io.dumps({"a": {"f": float("nan")}})


def test_overrides_merge_and_are_checked():
    cfg = make_cfg(["experiment=demo", "+backend.toml_overrides.train.compile=false",
                    "+backend.toml_overrides.train.ckpt.save_mode=sync"])
    doc = render.render(cfg, RUN_DIR)
    schema.check_document(doc)
    assert doc["train"]["compile"] is False and doc["train"]["ckpt"]["save_mode"] == "sync"
    assert doc["train"]["ckpt"]["save_freq"] == 100  # the rest of the table is kept


BAD = [
    ({"train": {"optm_nmae": "AdamW"}}, "cosmos_rl.train.optm_nmae", "optm_name"),  # misspelled
    ({"policy": {"parallelism": {"tp_szie": 1}}}, "cosmos_rl.policy.parallelism.tp_szie", "tp_size"),
    ({"trian": {"epoch": 1}}, "cosmos_rl.trian", "unknown key"),
    ({"rollout": {"n_generation": 2}}, "cosmos_rl.rollout", "not a cosmos-rl 0.4.7 table"),
    ({"train": {"epoch": "three"}}, "cosmos_rl.train.epoch", "does not match the type int"),
    ({"train": {"compile": 1}}, "cosmos_rl.train.compile", "type bool"),
    ({"train": {"optm_decay_type": "exponential"}}, "cosmos_rl.train.optm_decay_type", "cosine"),
    ({"train": {"optm_name": "SGD"}}, "cosmos_rl.train.optm_name", "AdamW"),
    ({"train": {"ckpt": {"save_mode": "lazy"}}}, "cosmos_rl.train.ckpt.save_mode", "async"),
    ({"logging": {"logger": ["console", "tensorboard"]}}, "cosmos_rl.logging.logger", "tensorboard"),
    ({"train": {"optm_warmup_steps": 1.5}}, "cosmos_rl.train.optm_warmup_steps", "fraction"),
    ({"train": {"optm_lr": {"visual": 1e-6}}}, "cosmos_rl.train.optm_lr", "global"),
    ({"train": {"train_policy": {"type": "grpo"}}}, "cosmos_rl.train.train_policy.type", "sft"),
    ({"policy": {"parallelism": {"tp_size": 0}}}, "cosmos_rl.policy.parallelism.tp_size", ">= 1"),
]


@pytest.mark.parametrize("extra,key,words", BAD)
def test_strict_check_names_the_bad_key(extra, key, words):
    doc = render.merge(render.render(make_cfg(["experiment=demo"]), RUN_DIR), extra)
    with pytest.raises(ConfigError) as err:
        schema.check_document(doc)
    assert err.value.key == key and words in str(err.value)


def test_missing_output_dir_is_caught():
    doc = render.render(make_cfg(["experiment=demo"]), RUN_DIR)
    del doc["train"]["output_dir"]
    with pytest.raises(ConfigError, match="cosmos_rl.train.output_dir"):
        schema.check_document(doc)


def test_config_values_cosmos_rl_cannot_take_fail_naming_our_key(tmp_path):
    with pytest.raises(ConfigError, match="train.loggers"):  # rules on values: config/validate
        check_backend(make_cfg(["experiment=demo", "stage=sft", "train.loggers=[console,tensorboard]"]))
    with pytest.raises(ConfigError, match="train.module_lr"):
        check_backend(make_cfg(["experiment=demo", "stage=sft", "train.module_lr=[{pattern: visual, scale: 0.1}]"]))
    (tmp_path / "step_3").mkdir()  # one of our checkpoint dirs, not cosmos-rl training state
    with pytest.raises(ConfigError, match="train.resume"):
        render.render(make_cfg(["experiment=demo", f"train.resume={tmp_path}/step_3"]), RUN_DIR)
    (tmp_path / "step_3" / "policy").mkdir()
    doc = render.render(make_cfg(["experiment=demo", f"train.resume={tmp_path}/step_3"]), RUN_DIR)
    assert doc["train"]["resume"] == str(tmp_path / "step_3" / "policy")
    assert render.render(make_cfg(["experiment=demo", "train.resume=none"]), RUN_DIR)["train"]["resume"] is False


needs_cosmos_rl = pytest.mark.skipif(not HAVE_COSMOS_RL, reason="cosmos-rl 0.4.7 not installed "
                                     "(bash launchers/install.sh --test installs it with --no-deps)")


@needs_cosmos_rl
def test_cosmos_rl_pydantic_accepts_ours_and_leaves_no_trace(recipe_cfg, legacy_checkpoint):
    doc = tomllib.loads(toml_io.dumps(render.render(recipe_cfg, RUN_DIR)))
    before = json.dumps(doc, sort_keys=True)
    assert pydantic_check.validate(doc) is None
    assert json.dumps(doc, sort_keys=True) == before  # from_dict mutates: we hand it a copy
    # Loading its config module alone left no half-imported cosmos_rl package behind.
    assert not [m for m in sys.modules if m == "cosmos_rl" or m.startswith("cosmos_rl.")]
    parsed, note = validated_document(recipe_cfg, RUN_DIR)
    assert note.endswith("passed") and parsed["train"]["epoch"] == 3
    demo = make_cfg(["experiment=demo", f"model.path={legacy_checkpoint}", "train.freeze=[model.visual.*]",
                     "train.warmup_ratio=null", "train.warmup_steps=3", "model.dtype=bf16"])  # validation on, freeze, warm-up steps, dtype
    assert pydantic_check.validate(toml_io.round_trip(render.render(demo, RUN_DIR))) is None


@needs_cosmos_rl
@pytest.mark.parametrize("extra,key", [
    ({"train": {"epoch": "three"}}, "train.epoch"),
    ({"train": {"train_policy": {"mini_batch": "four"}}}, "train.train_policy.mini_batch"),
    ({"train": {"optm_lr": {"visual": 1e-6}}}, "train"),
])
def test_cosmos_rl_pydantic_rejects_a_broken_document(extra, key):
    doc = render.merge(render.render(make_cfg(["experiment=demo"]), RUN_DIR), extra)
    found = pydantic_check.validate(doc)
    assert found is not None and found[0] == key, found


@pytest.mark.parametrize("override,key", [("backend.pydantic_check=sometimes", "backend.pydantic_check"),
                                          ("backend.redis_port=70000", "backend.redis_port"),
                                          ("backend.checkpoint_poll_s=0", "backend.checkpoint_poll_s")])
def test_bad_backend_settings_name_the_key(override, key):
    cfg = make_cfg(["experiment=demo", "stage=sft", override])
    with pytest.raises(ConfigError) as err:  # rules on values: config/validate, before any stage plans
        check_choices(cfg)
        check_backend(cfg)
    assert err.value.key == key


def test_pydantic_check_modes(monkeypatch):
    cfg = make_cfg(["experiment=demo", "backend.pydantic_check=never"])
    assert "off" in validated_document(cfg, RUN_DIR)[1]
    monkeypatch.setattr(pydantic_check, "load_config_class", lambda: None)
    assert "skipped" in validated_document(make_cfg(["experiment=demo"]), RUN_DIR)[1]
    with pytest.raises(ConfigError, match="backend.pydantic_check"):
        validated_document(make_cfg(["experiment=demo", "backend.pydantic_check=always"]), RUN_DIR)
