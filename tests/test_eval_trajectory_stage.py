"""stage=evaluate with a trajectory task (eval=trajectory), through the CLI on the synthetic rigs: prepare a few
scenes, train stage 1 for two steps, evaluate its checkpoint on rigs A and B: predictions per clip for both
sources (expert samples, token decode), per-clip score files, summary.json with the trajectory headline and
per-rig blocks; a rerun with the same settings is skipped; a second evaluation compares clip by clip (slow).
The config rules that route trajectory evaluation are fast."""

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from cosmos_exp import rundir
from cosmos_exp.config import ConfigError, register_configs
from cosmos_exp.config.validate import typed, validate
from conftest import CONF_DIR, run_cli

register_configs()
SMALL = ["experiment=trajectory_synthetic", "dataset.driving_synthetic.num_train=4",
         "dataset.driving_synthetic.num_eval=3", "train.max_steps=2", "train.save_every=2", "train.eval_every=0",
         "train.micro_batch_size=2", "train.global_batch_size=2"]
EVAL = ["stage=evaluate", "dataset.rigs=[rig_a,rig_b]", "task.trajectory.metrics.k=2",
        "task.trajectory.flow_matching.euler_steps=2", "eval.bootstrap_samples=50", "generation.batch_size=2"]


def _cfg(prepared, *overrides):
    """A validated config whose model and data exist (the session's tiny Qwen3-VL and synthetic captions)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = typed(compose(config_name="config", overrides=[
            f"paths.root={prepared['outputs']}", "dry_run=true", *overrides,
            f"model.path={prepared['tiny_qwen3_vl']}", f"dataset.root={prepared['data']}"]))
    validate(cfg)
    return cfg


@pytest.mark.parametrize("overrides,key", [
    (["stage=evaluate", "eval=trajectory"], "eval.metrics"),  # a caption task
    (["stage=judge", "eval=trajectory"], "eval.metrics"),
    (["stage=evaluate", "experiment=trajectory_synthetic", "eval=local"], "eval.metrics"),
    (["stage=caption", "experiment=trajectory_synthetic"], "task"),
])
def test_trajectory_evaluation_rules_name_their_key(overrides, key, prepared):
    with pytest.raises(ConfigError) as err:
        _cfg(prepared, "model=tiny_qwen3_vl", *overrides)
    assert err.value.key == key


def test_a_trajectory_task_validates_for_evaluate_with_eval_trajectory(prepared):
    cfg = _cfg(prepared, "stage=evaluate", "experiment=trajectory_synthetic")
    assert list(cfg.eval.metrics) == ["trajectory"] and cfg.task.kind == "trajectory"


@pytest.fixture(scope="module")
def stage1(tmp_path_factory):
    root = tmp_path_factory.mktemp("traj_eval")
    small = SMALL + [f"paths.root={root}/outputs"]
    for args in (["stage=prepare", *small], ["stage=sft", *small, f"hydra.run.dir={root}/stage1"]):
        proc = run_cli(args, cwd=root)
        assert proc.returncode == 0, proc.stderr[-3000:]
    return {"root": root, "small": small, "step": root / "stage1" / "checkpoints" / "step_2"}


def _evaluate(stage1, name, *extra):
    run = stage1["root"] / name
    proc = run_cli([*stage1["small"], *EVAL, f"model.path={stage1['step']}", f"hydra.run.dir={run}", *extra],
                   cwd=stage1["root"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run, json.loads((run / rundir.RUN_JSON).read_text())


@pytest.mark.slow
def test_evaluate_scores_a_stage1_checkpoint_on_both_rigs_and_skips_a_rerun(stage1):
    run, record = _evaluate(stage1, "eval_a")
    for rig in ("rig_a", "rig_b"):
        files = sorted((run / rundir.PREDICTIONS_DIR / rig).glob("*.json"))
        assert len(files) == 3
        pred = json.loads(files[0].read_text())
        assert len(pred["expert"]["xy"]) == 2 and len(pred["expert"]["xy"][0]) == 64  # K x T x 2
        assert len(pred["tokens"]["xy"]) == 1 and len(pred["tokens"]["token_ids"]) == 128
    # the same scene's expert noise on both rigs: paired scenes differ by their cameras only
    a = json.loads(next((run / rundir.PREDICTIONS_DIR / "rig_a").glob("*.json")).read_text())
    assert a["scene_id"] in {p.stem for p in (run / rundir.PREDICTIONS_DIR / "rig_b").glob("*.json")}
    summary = json.loads((run / rundir.SUMMARY_JSON).read_text())
    traj = summary["metrics"]["trajectory"]
    assert traj["headline_source"] == "expert" and traj["headline"] == traj["sources"]["expert"]["all"]["min_ade"]["mean"]
    assert traj["headline"] > 0 and traj["min_ade"]["n"] == 6 and traj["min_ade"]["ci_low"] is not None
    for source in ("expert", "tokens"):
        assert set(traj["sources"][source]["per_rig"]) == {"rig_a", "rig_b"}
        assert traj["sources"][source]["per_rig"]["rig_b"]["scenes"] == 3
    assert traj["rig_differences"]["expert"]["rig_b - rig_a"]["paired_scenes"] == 3
    assert len(rundir.score_files(run)) == 6
    evaluated = json.loads((run / rundir.EVALUATE_JSON).read_text())
    assert evaluated["step"] == 2 and evaluated["checkpoint"] == str(stage1["step"].resolve())
    assert record["result"]["headline"]["trajectory"] == traj["headline"]

    before = {p: p.stat().st_mtime_ns for p in (run / rundir.PREDICTIONS_DIR).rglob("*.json")}
    _, again = _evaluate(stage1, "eval_a")
    assert again["result"]["skipped"] and again["result"]["headline"] == record["result"]["headline"]
    assert before == {p: p.stat().st_mtime_ns for p in (run / rundir.PREDICTIONS_DIR).rglob("*.json")}


@pytest.mark.slow
def test_compare_of_two_trajectory_evaluations_pairs_clips_lower_is_better(stage1):
    a, _ = _evaluate(stage1, "cmp_a")
    b, _ = _evaluate(stage1, "cmp_b", "seed=7")  # other expert noise, the same token decode
    out = stage1["root"] / "cmp"
    proc = run_cli(["stage=compare", f"a={a}", f"b={b}", "eval=trajectory", "eval.bootstrap_samples=50",
                    f"paths.root={stage1['root']}/outputs", f"hydra.run.dir={out}"], cwd=stage1["root"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    cmp = json.loads((out / rundir.COMPARISON_JSON).read_text())
    traj = cmp["metrics"]["trajectory"]
    assert cmp["paired_items"] == 6 and traj["overall"]["n"] == 6
    assert traj["by_source"]["expert"]["rig_a"]["paired_scenes"] == 3
    tokens = traj["by_source"]["tokens"]["rig_b"]["min_ade"]
    assert tokens["mean"] == 0 and tokens["verdict"] == "no significant difference"  # greedy: seed-independent
    assert "trajectory | expert rig_a min_ade" in (out / rundir.COMPARISON_MD).read_text()
