"""Every stage x backend x experiment composes and plans (a dry run, in process) once its inputs exist, and fails
with a config error naming the missing input when they do not (the lightning-hydra-template practice of
exercising every experiment). A stage that needs no earlier run plans either way."""

import itertools
import json
import os
from pathlib import Path
from typing import Dict, List, Optional

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from cosmos_exp import rundir
from cosmos_exp.config import BACKENDS, STAGES, ConfigError, register_configs
from cosmos_exp.config.validate import typed, validate
from cosmos_exp.run import stage_module
from cosmos_exp.config.trajectory import TrajectoryPromptConfig

from conftest import CONF_DIR, run_cli

register_configs()
EXPERIMENTS = [None] + sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
# What each stage reads from earlier runs, and the key that names it.
STAGE_INPUTS = {"judge": ["captions"], "compare": ["a", "b"], "report": ["sweep.dir"]}
# Experiments on the synthetic driving scenes and the tiny backbone with the trajectory tokens.
TRAJECTORY_EXPERIMENTS = ("trajectory_synthetic", "rig_change")
# Experiments whose preset leaves real paths to the user (a checkpoint and a dataset on disk).
REAL_PATH_KEYS = ["dataset.root"]


def plan(overrides: List[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = typed(compose(config_name="config", overrides=overrides))
    validate(cfg)
    return stage_module(cfg).plan(cfg)


def _scored_run(root: Path, item_id: str = "clip_000") -> Path:
    """A finished judge run: summary.json and one score record."""
    (root / rundir.SCORES_DIR).mkdir(parents=True)
    (root / rundir.SUMMARY_JSON).write_text(json.dumps({"metrics": {}}))
    rundir.score_path(root, item_id).write_text(json.dumps({"id": item_id, "metrics": {}}))
    return root


@pytest.fixture(scope="module")
def inputs(prepared, tmp_path_factory) -> Dict[str, Path]:
    root = tmp_path_factory.mktemp("matrix")
    captions = root / "caption_run"
    rundir.captions_dir(captions).mkdir(parents=True)
    rundir.caption_path(rundir.captions_dir(captions), "clip_000").write_text(json.dumps(
        {"id": "clip_000", "task": "caption", "raw_text": "{}", "parsed": {}, "parse_status": "ok",
         "reference": {"weather": "clear"}}))
    sweep = root / "sweep"
    (sweep / "0").mkdir(parents=True)
    (sweep / "0" / rundir.RUN_JSON).write_text(json.dumps({"status": "succeeded", "stage": "evaluate"}))
    # The recipes' datasets: the synthetic clips stand in for every blend component and for the avha layout.
    real_data = root / "real_data"
    real_data.mkdir()
    for component in ("cv_annotated", "human_annotated", "reason1_sft"):
        os.symlink(prepared["data"], real_data / component)
    # The trajectory experiment's own inputs: a few synthetic rig scenes and the tiny backbone with its tokens.
    traj = root / "trajectory"
    small = ["experiment=trajectory_synthetic", f"paths.root={traj}/outputs", "dataset.driving_synthetic.num_train=4",
             "dataset.driving_synthetic.num_eval=2"]
    proc = run_cli(["stage=prepare", *small], cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # ... and a trajectory checkpoint for stage=evaluate: one optimizer step of stage 1.
    proc = run_cli(["stage=sft", *small, "train.max_steps=1", "train.save_every=1", "train.eval_every=0",
                    "train.micro_batch_size=2", "train.global_batch_size=2", f"hydra.run.dir={traj}/stage1"], cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"captions": captions, "a": _scored_run(root / "judge_a"), "b": _scored_run(root / "judge_b"),
            "sweep.dir": sweep, "real_data": real_data, "outputs": root / "outputs", "trajectory": traj, **prepared}


def overrides_for(stage: str, backend: str, experiment: Optional[str], inputs: Dict[str, Path],
                  with_inputs: bool) -> List[str]:
    out = [f"stage={stage}", f"backend={backend}", f"paths.root={inputs['outputs']}", "dry_run=true",
           f"dataset.root={inputs['data']}", f"model.path={inputs['tiny_qwen3_vl']}", "model=tiny_qwen3_vl"]
    if experiment in TRAJECTORY_EXPERIMENTS:  # their own scenes and backbone, as stage=prepare made them
        out = [f"stage={stage}", f"backend={backend}", f"paths.root={inputs['trajectory']}/outputs", "dry_run=true",
               "dataset.driving_synthetic.num_train=4", "dataset.driving_synthetic.num_eval=2"]
        if stage == "evaluate":
            out.append(f"model.path={inputs['trajectory']}/stage1/checkpoints/step_1")
            if experiment == "rig_change":  # the checkpoint was trained with trajectory_synthetic's prompts
                prompt = TrajectoryPromptConfig()
                out += [f"task.trajectory.prompt.system_prompt='{prompt.system_prompt}'",
                        f"task.trajectory.prompt.user_prompt='{prompt.user_prompt}'"]
    if experiment is not None:
        out.append(f"experiment={experiment}")
    if experiment == "reason2_sft_recipe":  # a blend whose components live under dataset.root
        out += [f"dataset.root={inputs['real_data']}"]
    if experiment == "reason1_avha_sft":  # a Qwen2.5-VL recipe: its tiny stand-in of the same family
        out += ["model=tiny_qwen2_5_vl", f"model.path={inputs['tiny_qwen2_5_vl']}"]
    if with_inputs:
        out += [f"{key}={inputs[key]}" for key in STAGE_INPUTS.get(stage, [])]
    return out


COMBINATIONS = list(itertools.product(STAGES, BACKENDS, EXPERIMENTS))
# Not meant to work, and refused before any work with the key that stands in the way.
REFUSED = {
    **{(s, "cosmos_rl", e): "task" for s in ("sft", "train_eval") for e in TRAJECTORY_EXPERIMENTS},  # cosmos-rl trains captions only
    # a trajectory model answers no caption prompt
    **{("caption", b, e): "task" for b in BACKENDS for e in TRAJECTORY_EXPERIMENTS},
    # the study's settings come with its preset
    **{("rig_change", b, e): "rig_change" for b in BACKENDS for e in EXPERIMENTS if e != "rig_change"},
}


@pytest.mark.parametrize("stage,backend,experiment", COMBINATIONS)
def test_every_combination_plans_with_its_inputs(stage, backend, experiment, inputs):
    overrides = overrides_for(stage, backend, experiment, inputs, with_inputs=True)
    refused = REFUSED.get((stage, backend, experiment))
    if refused:
        with pytest.raises(ConfigError) as err:
            plan(overrides)
        assert err.value.key == refused
        return
    p = plan(overrides)
    assert p.stage == stage and p.render()


@pytest.mark.parametrize("stage,backend,experiment", [c for c in COMBINATIONS if c[0] in STAGE_INPUTS])
def test_a_stage_without_its_inputs_is_a_config_error_naming_them(stage, backend, experiment, inputs):
    with pytest.raises(ConfigError) as err:
        plan(overrides_for(stage, backend, experiment, inputs, with_inputs=False))
    assert err.value.key == STAGE_INPUTS[stage][0]


@pytest.mark.parametrize("experiment", [e for e in EXPERIMENTS if e and e.startswith("reason")])
def test_a_recipe_without_its_data_is_a_config_error(experiment, inputs):
    """The real-data recipes leave dataset.root to the user: composing one without it names the key."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = typed(compose(config_name="config", overrides=[f"experiment={experiment}",
                                                             f"paths.root={inputs['outputs']}"]))
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert err.value.key in ("dataset.root", "model.path")
