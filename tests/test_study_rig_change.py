"""experiment=rig_change (cosmos_exp/study/): the runs it starts and their order, what each run gets of the
study's overrides, the checks before any run starts, a rerun that skips finished runs, the passing on of stop
signals, and the report's numbers against its evaluations' own files. The whole study runs once, small (slow);
the last test removes one of its runs."""

import json
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from safetensors.torch import load_file

from cosmos_exp import rundir
from cosmos_exp.config import ConfigError, DataError, register_configs
from cosmos_exp.config.names import RIG_CHANGE_PHASES
from cosmos_exp.config.validate import validate
from cosmos_exp.evaluate.compare import compare_runs
from cosmos_exp.evaluate.trajectory import paired_differences
from cosmos_exp.evaluate.trajectory_scores import METRIC, scene_records_of
from cosmos_exp.config.trajectory import TrajectoryMetricsConfig
from cosmos_exp.study import rig_change
from cosmos_exp.study.rig_change_report import COLUMNS, findings, render_markdown

from _compose import compose_typed
from _processes import live
from conftest import CONF_DIR, run_cli

register_configs()
SMALL = ["experiment=rig_change", "dataset.driving_synthetic.num_train=4", "dataset.driving_synthetic.num_eval=5",
         "train.save_every=2", "train.eval_every=0", "train.micro_batch_size=2", "train.global_batch_size=2",
         "task.trajectory.metrics.k=2", "task.trajectory.flow_matching.euler_steps=2", "eval.bootstrap_samples=50",
         "generation.batch_size=5"] + [f"rig_change.{p}.steps=2" for p in RIG_CHANGE_PHASES]


def _study_cfg(*overrides):
    return compose_typed(["experiment=rig_change", *overrides])


# -- what runs, in which order, with which overrides ----------------------------------------------------------

def test_every_run_starts_from_a_run_before_it_and_trains_as_its_settings_say():
    study = _study_cfg().rig_change
    phases = rig_change.phases(study)
    names = [p.name for p in phases]
    assert [p.name for p in phases if p.stage == "sft"] == list(RIG_CHANGE_PHASES)
    assert names[0] == "prepare" and [p.stage for p in phases[-4:]] == ["evaluate"] * 4
    for i, phase in enumerate(phases):
        assert phase.start is None or phase.start in names[:i], phase
    by_name = {p.name: p for p in phases}
    assert by_name["a_stage1"].start is None and by_name["a_stage1"].rigs == ("rig_a",)
    assert {by_name[n].start for n in ("b_expert", "b_stage1", "mix_stage1")} == {"a_stage2"}
    assert by_name["b_expert"].task == "trajectory_stage2" and by_name["b_stage1"].task == "trajectory_stage1"
    assert by_name["mix_stage1"].rigs == ("rig_a", "rig_b") and by_name["b_stage2"].rigs == ("rig_b",)
    assert [by_name[v.evaluation].start for v in rig_change.VARIANTS] == ["a_stage2", "b_expert", "b_stage2",
                                                                         "mix_stage2"]


def test_a_run_gets_the_study_overrides_then_its_own_which_win(tmp_path):
    """The study's stage/task/dry_run are not passed on; everything else is, before the run's own values; a
    study directory with characters Hydra's grammar reserves comes through as the same path."""
    study_dir = tmp_path / "my study, v'1"
    parent = ["experiment=rig_change", "stage=rig_change", "dry_run=true", "train.lr=0.5", "rig_change.b_stage1.steps=7",
              "rig_change.b_stage1.lr=0.002", "rig_change.b_stage1.overrides=['train.warmup_steps=3']", "seed=5"]
    cfg = _study_cfg(*parent[2:])
    phase = next(p for p in rig_change.phases(cfg.rig_change) if p.name == "b_stage1")
    overrides = rig_change.child_overrides(phase, cfg.rig_change, study_dir, parent)
    assert "stage=rig_change" not in overrides and "dry_run=true" not in overrides
    assert overrides.index("train.lr=0.5") < overrides.index("train.lr=0.002")
    child = rig_change.compose_child(phase, overrides)
    assert child.stage.name == "sft" and child.task.name == "trajectory_stage1" and child.seed == 5
    assert (child.train.max_steps, child.train.lr, child.train.warmup_steps) == (7, 0.002, 3)
    assert list(child.dataset.rigs) == ["rig_b"] and child.dry_run is False
    steps = cfg.rig_change.a_stage2.steps
    assert child.model.path == str(study_dir / "runs" / "a_stage2" / "checkpoints" / f"step_{steps}")
    assert child.dataset.root == str(study_dir / "data" / "driving_synthetic")


def test_an_evaluation_scores_both_rigs_against_rig_a(tmp_path):
    cfg = _study_cfg("rig_change.eval_overrides=['task.trajectory.metrics.k=3']")
    phase = next(p for p in rig_change.phases(cfg.rig_change) if p.name == "eval_b_stage12")
    parent = ["experiment=rig_change", "eval=local"]  # the evaluations score trajectories whatever the study's eval
    child = rig_change.compose_child(phase, rig_change.child_overrides(phase, cfg.rig_change, tmp_path, parent))
    assert child.stage.name == "evaluate" and list(child.eval.metrics) == ["trajectory"]
    assert list(child.dataset.rigs) == ["rig_a", "rig_b"] and child.task.trajectory.metrics.baseline_rig == "rig_a"
    assert child.task.trajectory.metrics.k == 3
    steps = cfg.rig_change.b_stage2.steps
    assert child.model.path == str(tmp_path / "runs" / "b_stage2" / "checkpoints" / f"step_{steps}")


# -- checks before any run --------------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides,key", [
    (["stage=rig_change"], "rig_change"),  # the stage without the study's settings
    (["experiment=rig_change", "rig_change.rig_b=rig_a"], "rig_change.rig_b"),
    (["experiment=rig_change", "rig_change.rig_a=rig_c"], "rig_change.rig_a"),
    (["experiment=rig_change", "rig_change.mix_stage2.steps=0"], "rig_change.mix_stage2.steps"),
    (["experiment=rig_change", "rig_change.b_expert.lr=-1"], "rig_change.b_expert.lr"),
    (["experiment=rig_change", "dataset.driving_synthetic=null"], "rig_change.own_data"),  # scenes it cannot make
])
def test_the_study_settings_are_checked_naming_the_key(overrides, key):
    with pytest.raises(ConfigError) as err:
        validate(compose_typed(overrides))
    assert err.value.key == key


def test_an_unknown_study_key_fails_at_composition():
    with pytest.raises(Exception, match="b_expert.stepz"):
        compose_typed(["experiment=rig_change", "rig_change.b_expert.stepz=3"])


@pytest.mark.parametrize("override,key,where", [
    ("rig_change.b_expert.overrides=['train.warmup_steps=-1']", "train.warmup_steps", "b_expert"),
    ("rig_change.eval_overrides=['task.trajectory.metrics.kk=2']", "rig_change.eval_overrides", "eval_a"),
])
def test_a_bad_run_config_fails_before_any_run_starts(workdir, override, key, where):
    proc = run_cli(["experiment=rig_change", f"paths.root={workdir}/outputs", override,
                    f"hydra.run.dir={workdir}/study"], cwd=workdir)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"'{key}'" in proc.stderr and where in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (workdir / "study").exists() and not (workdir / "outputs").exists()  # nothing ran, nothing written


# -- a child's failure and a stop signal ------------------------------------------------------------------------

def test_a_run_that_stopped_on_bad_input_fails_the_study_with_its_own_line(tmp_path):
    log = tmp_path / "b_expert.log"
    log.write_text("...\ncosmos-exp: config error at 'model.path': checkpoint /x does not exist\n")
    err = rig_change._failure("b_expert", 2, log)
    assert isinstance(err, ConfigError) and err.key == "model.path" and "b_expert" in str(err) and str(log) in str(err)
    log.write_text("cosmos-exp: data error: /d/train/rig_b holds no scene\n")
    err = rig_change._failure("b_expert", 2, log)
    assert isinstance(err, DataError) and "/d/train/rig_b holds no scene" in str(err)
    log.write_text("Traceback (most recent call last):\nRuntimeError: boom\n")
    err = rig_change._failure("b_expert", 1, log)
    assert isinstance(err, RuntimeError) and "exit code 1" in str(err) and "boom" in str(err)


def test_a_stop_signal_is_passed_on_to_the_run_and_its_group_is_gone(tmp_path):
    """The run leads its own session, so only what the study passes on reaches it (a training run then
    checkpoints and stops); its output lands in the log."""
    script = tmp_path / "child.py"
    script.write_text("import os, signal, sys, time\n"
                      "def stop(signum, frame):\n"
                      "    print('got', signal.Signals(signum).name, flush=True); sys.exit(3)\n"
                      "signal.signal(signal.SIGTERM, stop)\n"
                      f"open({str(tmp_path / 'pid')!r}, 'w').write(str(os.getpid()))\n"
                      "time.sleep(600)\n")

    def send() -> None:
        deadline = time.monotonic() + 60
        while not (tmp_path / "pid").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    code, received = rig_change.run_child([sys.executable, str(script)], tmp_path / "logs" / "child.log")
    thread.join()
    assert (code, received) == (3, [signal.SIGTERM])
    assert "got SIGTERM" in (tmp_path / "logs" / "child.log").read_text()
    assert not live(int((tmp_path / "pid").read_text()))
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


# -- the findings are computed from the numbers ------------------------------------------------------------------

def _diff(mean, lo, hi, mean_a=None, mean_b=None):
    return {"mean": mean, "ci_low": lo, "ci_high": hi, "mean_a": mean_a, "mean_b": mean_b, "n": 10}


def _report(base_yaw, fix_yaws, base_ade):
    """A report with the fields findings() reads: the rig gaps and each fix against the model trained on A."""
    def variant(label, yaw, ade=None, cost=None):
        row = {"label": label, "rig_gap": {"abs_yaw_ratio": yaw, "min_ade": ade or _diff(0.1, -0.1, 0.3, 2.0),
                                           "ade": ade or _diff(0.1, -0.1, 0.3, 2.0)}}
        if cost is not None:
            row["versus_trained_on_a"] = {"rig_a": {"min_ade": cost, "abs_yaw_ratio": _diff(0, -1, 1)},
                                          "rig_b": {"min_ade": cost, "abs_yaw_ratio": _diff(0.3, 0.1, 0.5)}}
        return row

    return {"rig_a": "rig_a", "rig_b": "rig_b", "confidence": 0.95,
            "variants": [variant("trained on A", base_yaw, base_ade)] +
                        [variant(f"fix {i}", yaw, cost=_diff(0.05 * (3 - i), 0.01, 0.2)) for i, yaw in
                         enumerate(fix_yaws)]}


def test_findings_name_the_bias_and_the_cheapest_fix_that_removes_it():
    biased = _diff(-0.4, -0.5, -0.3, 0.9, 0.5)
    report = _report(biased, [biased, _diff(-0.05, -0.2, 0.1, 0.9, 0.85), _diff(0.0, -0.1, 0.1, 0.9, 0.9)],
                     _diff(0.1, -0.05, 0.25, 2.0))
    text = findings(report)
    assert "turns less on rig_b: a straight bias" in text[0] and "-0.4 [-0.5, -0.3]" in text[0]
    assert "overall ADE understates the bias" in text[1]
    assert "it turns less on rig_b: a straight bias" in text[2] and "no significant deficit" in text[3]
    assert text[-1].startswith("Removes the straight bias on rig_b") and "fix 1, fix 2" not in text[-1]
    assert "fix 2, fix 1" in text[-1] and "cheapest on rig_a by minADE is fix 2" in text[-1]
    md = render_markdown({**report, "study": "s", "columns": [], "findings": text,
                          "variants": [_with_rows(v) for v in report["variants"]]})
    assert md.endswith("\n".join(f"- {line}" for line in text) + "\n")


def _with_rows(variant):
    rows = {"scenes": 10, "turns": 4, "straights": 6}
    return {**variant, "per_rig": {"rig_a": rows, "rig_b": rows}}


def test_findings_credit_no_fix_when_there_is_no_bias():
    text = findings(_report(_diff(0.01, -0.05, 0.07, 0.9, 0.91), [_diff(0.0, -0.1, 0.1, 0.9, 0.9)] * 3,
                            _diff(0.1, -0.05, 0.25, 2.0)))
    assert "shows no rig difference" in text[0] and "understates" not in text[1]
    assert "no fix is credited" in text[-1]


# -- the whole study, small ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("rig_change")
    settings = SMALL + [f"paths.root={root}/outputs"]  # the study's overrides, as its runs get them
    args = settings + [f"hydra.run.dir={root}/study"]
    proc = run_cli(args, cwd=root, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"root": root, "dir": root / "study", "args": args, "settings": settings}


def _summary(run: Path) -> dict:
    return json.loads((run / rundir.SUMMARY_JSON).read_text())["metrics"][METRIC]


def _at(tree, *path):
    for key in path:
        tree = tree[key]
    return tree


@pytest.mark.slow
def test_the_study_runs_every_run_and_its_table_holds_their_numbers(study):
    d = study["dir"]
    record = json.loads((d / rundir.RUN_JSON).read_text())
    assert record["status"] == "succeeded" and record["stage"] == "rig_change"
    for phase in rig_change.phases(_study_cfg(*SMALL[1:]).rig_change):
        run = rundir.study_run(d, phase.name)
        assert json.loads((run / rundir.RUN_JSON).read_text())["status"] == "succeeded", phase.name
        assert (d / rundir.LOGS_DIR / f"{phase.name}.log").stat().st_size > 0
        if phase.stage == "sft":
            assert rundir.is_complete(rundir.step_dir(run, 2)), phase.name
        if phase.stage == "evaluate":
            assert (run / rundir.EVALUATE_JSON).is_file()
    assert (d / "data" / "driving_synthetic" / "eval" / "rig_b").is_dir()  # made inside the study (own_data)
    assert not (study["root"] / "outputs" / "data").exists()

    report = json.loads((d / rundir.RIG_CHANGE_JSON).read_text())
    assert [v["name"] for v in report["variants"]] == ["a", "b_expert", "b_stage12", "mix_stage12"]
    assert [c["key"] for c in report["columns"]] == [c[0] for c in COLUMNS]
    boot = json.loads((rundir.study_run(d, "eval_a") / rundir.SUMMARY_JSON).read_text())["bootstrap"]
    for variant in report["variants"]:
        run = rundir.study_run(d, f"eval_{variant['name']}")
        summary = _summary(run)
        for rig in ("rig_a", "rig_b"):
            for key, _, path, source in COLUMNS:
                assert variant["per_rig"][rig][key] == _at(summary, "sources", source, "per_rig", rig, *path), key
            assert variant["per_rig"][rig]["turns"] == 2 and variant["per_rig"][rig]["straights"] == 3
        gap = summary["rig_differences"]["expert"]["rig_b - rig_a"]
        assert variant["rig_gap"]["abs_yaw_ratio"]["mean"] == gap["turns"]["abs_yaw_ratio"]["mean"]
        assert variant["rig_gap"]["abs_yaw_ratio"]["ci_low"] == gap["turns"]["abs_yaw_ratio"]["ci_low"]
        assert variant["rig_gap"]["min_ade"]["ci_high"] == gap["min_ade"]["ci_high"]
        assert variant["rig_gap"]["ade"]["mean"] == gap["ade"]["mean"]
        if variant["name"] == "a":
            continue
        # fix - trained on A on rig A's scenes, paired by scene from the two runs' score files
        a_items = [json.loads(p.read_text()) for p in rundir.score_files(rundir.study_run(d, "eval_a")).values()]
        f_items = [json.loads(p.read_text()) for p in rundir.score_files(run).values()]
        pick = lambda items: [r for r in scene_records_of(items) if r["source"] == "expert" and r["rig"] == "rig_a"]
        expected = paired_differences(pick(a_items), pick(f_items),
                                      TrajectoryMetricsConfig(**summary["settings"]), boot)
        cost = variant["versus_trained_on_a"]["rig_a"]
        assert cost["min_ade"]["mean"] == pytest.approx(expected["min_ade"]["mean"], abs=1e-12)
        assert cost["abs_yaw_ratio"]["ci_low"] == pytest.approx(expected["turns"]["abs_yaw_ratio"]["ci_low"])
        assert cost["paired_scenes"] == 5

    md = (d / rundir.RIG_CHANGE_MD).read_text()
    header = next(line for line in md.splitlines() if line.startswith("| model | minADE"))
    assert header.count("|") == 2 + 2 * len(COLUMNS)
    for variant in report["variants"]:
        row = next(line for line in md.splitlines() if line.startswith(f"| {variant['label']} | "))
        assert f"{variant['per_rig']['rig_b']['abs_yaw_ratio']:.3g}" in row
    assert "## What the table shows" in md and all(f in md for f in report["findings"])


@pytest.mark.slow
def test_stage1_continues_from_a_trajectory_checkpoint_and_its_expert_reaches_stage2(study):
    runs = study["dir"] / rundir.STUDY_RUNS_DIR
    expert = lambda run: load_file(str(runs / run / "checkpoints" / "step_2" / "action_expert" / "model.safetensors"))
    a2, b1, b2 = expert("a_stage2"), expert("b_stage1"), expert("b_stage2")
    assert a2.keys() == b1.keys() and all(torch.equal(a2[k], b1[k]) for k in a2)  # stage 1 leaves it alone
    assert any(not torch.equal(b1[k], b2[k]) for k in b1)  # and stage 2 trains it further
    backbone = lambda run: load_file(str(next((runs / run / "checkpoints" / "step_2").glob("*.safetensors"))))
    assert any(not torch.equal(v, backbone("b_stage1")[k]) for k, v in backbone("a_stage2").items())


@pytest.mark.slow
def test_a_rerun_skips_finished_runs_and_renders_the_same_table(study):
    d = study["dir"]
    logs = {p.name: p.stat().st_size for p in (d / rundir.LOGS_DIR).iterdir()}
    before = (d / rundir.RIG_CHANGE_JSON).read_text()
    proc = run_cli(study["args"], cwd=study["root"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = json.loads((d / rundir.RUN_JSON).read_text())["result"]["runs"]
    assert len(runs) == 12 and {r["state"] for r in runs.values()} == {"skipped"}
    assert {p.name: p.stat().st_size for p in (d / rundir.LOGS_DIR).iterdir()} == logs  # no run started
    assert (d / rundir.RIG_CHANGE_JSON).read_text() == before


@pytest.mark.slow
def test_the_table_is_rendered_again_from_the_finished_runs_alone(study):
    from cosmos_exp.stages import rig_change as stage

    d = study["dir"]
    before = (d / rundir.RIG_CHANGE_JSON).read_text()
    (d / rundir.RIG_CHANGE_MD).unlink()
    cfg = _study_cfg(*study["settings"], "rig_change.report_only=true")
    assert stage.plan(cfg).commands == []
    assert stage.run(cfg, d)["runs"] == {}
    assert (d / rundir.RIG_CHANGE_JSON).read_text() == before and (d / rundir.RIG_CHANGE_MD).is_file()


@pytest.mark.slow
def test_a_study_directory_refuses_a_run_of_other_settings(study):
    d = study["dir"]
    changed = study["settings"] + ["rig_change.b_stage2.steps=3"]
    with pytest.raises(ConfigError) as err:
        rig_change.plan_runs(_study_cfg(*changed), d, changed)
    assert err.value.key == "train.max_steps" and "b_stage2" in str(err.value)
    shutil.rmtree(rundir.study_run(d, "b_stage2"))  # removing it alone: eval_b_stage12 started from it
    with pytest.raises(ConfigError, match="runs/eval_b_stage12 finished but runs/b_stage2"):
        rig_change.plan_runs(_study_cfg(*study["settings"]), d, study["settings"])
