"""Every config in cosmos_exp/conf/ composes and validates; bad keys, types and cross-field rules fail early."""

import json
from pathlib import Path
from typing import List

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from cosmos_exp.config import ConfigError, register_configs
from cosmos_exp.config.validate import typed, validate

from conftest import CONF_DIR

register_configs()
GROUPS = ("stage", "backend", "model", "dataset", "parallelism", "eval", "task", "generation", "experiment")


def options(group: str) -> List[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def make_cfg(overrides: List[str]) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


@pytest.fixture
def fake_paths(tmp_path: Path) -> dict:
    """Existing directories for every path a preset leaves to the user."""
    model = tmp_path / "model"
    model.mkdir()
    data = tmp_path / "data"
    for sub in ("", "cv_annotated", "human_annotated", "reason1_sft"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    return {"root": tmp_path, "model": model, "data": data}


def _with_model(model_dir: Path, family: str) -> None:
    (model_dir / "config.json").write_text(json.dumps({"model_type": family}))


def test_every_group_has_options():
    for group in GROUPS:
        assert options(group), f"conf/{group}/ is empty"


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_composes_and_validates(group, option, fake_paths):
    overrides = [f"{group}={option}", f"paths.root={fake_paths['root']}/outputs",
                 f"model.path={fake_paths['model']}", f"dataset.root={fake_paths['data']}"]
    cfg = typed(make_cfg(overrides))
    _with_model(fake_paths["model"], cfg.model.family)
    if cfg.stage.name in ("judge",):
        cfg = typed(make_cfg(overrides + [f"captions={fake_paths['root']}"]))
    if cfg.stage.name == "compare":
        cfg = typed(make_cfg(overrides + [f"a={fake_paths['root']}", f"b={fake_paths['root']}"]))
    if cfg.stage.name == "report":
        cfg = typed(make_cfg(overrides + [f"sweep.dir={fake_paths['root']}"]))
    if cfg.stage.name == "rig_change" and cfg.rig_change is None:  # the study's settings come with its preset
        cfg = typed(make_cfg(overrides + ["experiment=rig_change"]))
    validate(cfg)


@pytest.mark.parametrize("option", options("model"))
def test_model_presets_name_real_families(option):
    cfg = typed(make_cfg([f"model={option}"]))
    assert cfg.model.family in ("qwen2_5_vl", "qwen3_vl")
    assert cfg.model.name == option


def test_real_model_preset_requires_path():
    cfg = typed(make_cfg(["model=cosmos_reason2_8b", "stage=caption"]))
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert err.value.key == "model.path"


def test_recipe_experiment_matches_published_recipe(fake_paths):
    cfg = typed(make_cfg(["experiment=reason2_sft_recipe", f"model.path={fake_paths['model']}",
                          f"dataset.root={fake_paths['data']}"]))
    assert cfg.model.hub_id == "nvidia/Cosmos-Reason2-8B"
    assert [(c.name, c.weight) for c in cfg.dataset.blend] == [
        ("cv_annotated", 0.3), ("human_annotated", 0.5), ("reason1_sft", 0.2)]
    v, t = cfg.dataset.vision, cfg.train
    assert (v.nframes, v.min_pixels, v.max_pixels) == (16, 3136, 360000)
    assert (t.lr, t.warmup_ratio, t.lr_schedule, t.grad_clip, t.weight_decay, t.epochs) == (2e-7, 0.03, "cosine", 1.0, 0.01, 3)
    # 256 samples per optimizer step: the cookbook's 32 per GPU x 8 GPUs (tests/test_batch_size.py).
    assert (t.global_batch_size, t.micro_batch_size, t.save_every, cfg.seed) == (256, 4, 20, 42)
    assert (cfg.backend.name, cfg.backend.compile) == ("cosmos_rl", False)


def test_reason1_recipe_experiment_matches_published_recipe(fake_paths):
    cfg = typed(make_cfg(["experiment=reason1_avha_sft", f"model.path={fake_paths['model']}",
                          f"dataset.root={fake_paths['data']}"]))
    assert (cfg.model.hub_id, cfg.dataset.name) == ("nvidia/Cosmos-Reason1-7B", "avha")
    v, t = cfg.dataset.vision, cfg.train
    # avha_sft.toml: fps 2 at 112,897 pixels a frame; 20 epochs at lr 2e-6; 16 per GPU x 8 GPUs.
    assert (v.fps, v.nframes, v.max_pixels) == (2.0, None, 112897)
    assert (t.epochs, t.lr, t.global_batch_size, t.module_lr) == (20, 2e-6, 128, [])
    assert (cfg.parallelism.nproc_per_node, cfg.parallelism.dp_shard_size) == (8, 8)
    # Its caption answer as avha_sft.py writes it (tests/test_data_datasets.py checks the text).
    assert cfg.dataset.target_format == "fenced_json"
    assert (cfg.backend.name, cfg.backend.compile) == ("cosmos_rl", False)


@pytest.mark.parametrize("model,max_pixels", [("cosmos_reason1_7b", 112897), ("cosmos_reason2_2b", 147457),
                                              ("cosmos_reason2_8b", 147457), ("tiny_qwen2_5_vl", 112897)])
def test_the_cookbook_generation_preset_answers_as_the_cookbook(model, max_pixels, fake_paths):
    cfg = typed(make_cfg(["stage=caption", f"model={model}", "generation=cookbook", f"model.path={fake_paths['model']}"]))
    g, v = cfg.generation, cfg.dataset.vision
    assert (g.do_sample, g.temperature, g.top_p, g.repetition_penalty, g.max_new_tokens) == (True, 0.1, 0.9, 1.05, 4096)
    assert (v.fps, v.nframes, v.max_pixels) == (2.0, None, max_pixels)  # the cookbook's size for this family
    greedy = typed(make_cfg(["stage=caption", f"model={model}", f"model.path={fake_paths['model']}"]))
    assert (greedy.generation.do_sample, greedy.generation.repetition_penalty) == (False, 1.0)  # ours: reproducible
    assert greedy.dataset.vision.nframes == 8  # the dataset's own sampling


def test_misspelled_key_fails_at_composition_naming_it():
    with pytest.raises(Exception) as err:
        make_cfg(["train.lrr=1e-4"])
    assert "lrr" in str(err.value)


def test_misspelled_key_in_yaml_fails_naming_it(tmp_path):
    (tmp_path / "config.yaml").write_text("defaults:\n  - base_config\n  - _self_\ntrain:\n  learning_rate: 1.0\n")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
        with pytest.raises(Exception) as err:
            compose(config_name="config")
    assert "learning_rate" in str(err.value)


def test_wrong_type_fails_at_composition_naming_it():
    with pytest.raises(Exception) as err:
        make_cfg(["train.lr=fast"])
    assert "train.lr" in str(err.value)
    with pytest.raises(Exception) as err:
        make_cfg(["parallelism.nproc_per_node=two"])
    assert "parallelism.nproc_per_node" in str(err.value)


def test_replayed_config_is_typed_again():
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(make_cfg([]))
    raw["train"]["lrr"] = 1
    with pytest.raises(ConfigError) as err:
        typed(OmegaConf.create(raw))
    assert "lrr" in str(err.value)


CROSS_FIELD = [
    (["dataset.vision.fps=2"], "dataset.vision.nframes"),
    (["dataset.vision.nframes=null"], "dataset.vision.nframes"),
    (["dataset.vision.min_pixels=999999"], "dataset.vision.min_pixels"),
    (["dataset.vision.backend=opencv"], "dataset.vision.backend"),
    (["train.warmup_steps=10"], "train.warmup_steps"),
    (["train.warmup_ratio=1.5"], "train.warmup_ratio"),
    (["parallelism=zero2", "train.global_batch_size=6", "train.micro_batch_size=2"], "train.global_batch_size"),
    (["parallelism.offload_param=true"], "parallelism.offload_param"),
    (["parallelism.zero_stage=4"], "parallelism.zero_stage"),
    (["backend=cosmos_rl", "parallelism=zero2", "parallelism.tp_size=2", "parallelism.dp_shard_size=2"],
     "parallelism.dp_shard_size"),
    (["stage=judge"], "captions"),
    (["stage=judge", "captions=/nonexistent/run"], "captions"),
    (["stage=compare", "a=/nonexistent/a"], "a"),
    (["stage=caption", "model.path=/nonexistent/checkpoint"], "model.path"),
    (["train.resume=/nonexistent/step_3"], "train.resume"),
    (["eval.metrics=[bleu,rouge]"], "eval.metrics[1]"),
    (["generation.do_sample=true", "generation.temperature=0"], "generation.temperature"),
    (["dataset=reason2_blend"], "dataset.root"),
    (["dataset=reason2_blend", "dataset.root=/x", "dataset.blend.0.weight=0"], "dataset.blend[0].weight"),
    (["stage=sft", "dataset.root=/nonexistent/data"], "dataset.root"),
]


@pytest.mark.parametrize("overrides,key", CROSS_FIELD)
def test_cross_field_rule_names_key(overrides, key, fake_paths):
    _with_model(fake_paths["model"], "qwen2_5_vl")
    base = [f"paths.root={fake_paths['root']}/outputs", f"model.path={fake_paths['model']}"]
    if "stage=sft" not in overrides and not any(o.startswith("dataset") for o in overrides):
        base.append(f"dataset.root={fake_paths['data']}")
    with pytest.raises(ConfigError) as err:
        validate(typed(make_cfg(base + overrides)))
    assert err.value.key == key, str(err.value)
    assert key.split("[")[0] in str(err.value)


def test_checkpoint_family_must_match_preset(fake_paths):
    _with_model(fake_paths["model"], "qwen3_vl")
    cfg = typed(make_cfg(["stage=caption", f"model.path={fake_paths['model']}", f"dataset.root={fake_paths['data']}"]))
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert err.value.key == "model.family" and "qwen3_vl" in str(err.value)


def test_world_size_must_match_launcher(fake_paths, monkeypatch):
    _with_model(fake_paths["model"], "qwen2_5_vl")
    monkeypatch.setenv("WORLD_SIZE", "4")
    cfg = typed(make_cfg(["stage=sft", "parallelism=zero2", f"model.path={fake_paths['model']}",
                          f"dataset.root={fake_paths['data']}", "train.global_batch_size=4", "train.micro_batch_size=2"]))
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert err.value.key == "parallelism.nproc_per_node"
    # The tasks of an srun launch (hydra/launcher=slurm, tasks_per_node): 4 tasks for 2 ranks fail; one task
    # alone starts its own ranks.
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setenv("SLURM_PROCID", "0")
    monkeypatch.setenv("SLURM_NTASKS", "4")
    with pytest.raises(ConfigError, match="starts 4 processes") as err:
        validate(cfg)
    assert err.value.key == "parallelism.nproc_per_node" and "tasks_per_node" in str(err.value)
    for tasks in ("2", "1"):
        monkeypatch.setenv("SLURM_NTASKS", tasks)
        validate(cfg)
