"""Searches by a sweeper plugin that proposes values as it goes (Optuna): the checks before any trial, a trial's
objective and its failures, resuming an interrupted search, train-then-evaluate trials, and the search report."""

import json
import signal
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import run_cli, wait_for
from cosmos_exp.run import CONF_DIR, stage_module
from cosmos_exp.sweep.aggregate import load_child
from cosmos_exp.sweep.preflight import compose_job
from cosmos_exp.sweep.search import preflight_any as preflight
from cosmos_exp.sweep.trial import run_trial

OPTUNA = ["-m", "hydra/sweeper=optuna"]
# Two optimiser steps on one item per step, a held-out loss at the last: each trial takes seconds.
TINY = ["stage=sft", "train.max_steps=2", "train.save_every=2", "train.eval_every=2", "train.eval_batches=1",
        "train.micro_batch_size=1", "train.global_batch_size=1"]
LR = "train.lr=tag(log, interval(1e-5,1e-3))"


def objective_of(job: Path) -> dict:
    return json.loads((job / "objective.json").read_text())


# -- before any trial: the search space and the fixed config ----------------------------------------------------

@pytest.mark.parametrize("search,key,words", [
    ("train.lr=interval(1e-3,1e-5)", "train.lr", "low bound must be below the high bound"),
    ("train.lr=tag(log, interval(0,1e-3))", "train.lr", "log scale needs bounds above 0"),
    ("train.lrr=interval(1e-5,1e-3)", "train.lrr", "not in 'TrainConfig'"),
    ("train.max_steps=interval(1.5,4.5)", "train.max_steps", "could not be converted to Integer"),
    ("train.lr=interval(-1.0,1e-3)", "train.lr", "with train.lr=-1.0: must be > 0"),
    ("train.lr=choice(1e-4,fast)", "train.lr", "could not be converted to Float"),
])
def test_a_bad_search_space_fails_before_any_trial_naming_the_key(prepared, tmp_path, capsys, search, key, words):
    sweep = tmp_path / "search"
    with pytest.raises(SystemExit) as stop:
        preflight([*OPTUNA, search, *TINY, f"paths.root={prepared['outputs']}", f"hydra.sweep.dir={sweep}"],
                  CONF_DIR, stage_module)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "no trial was run" in err
    assert f"config error at '{key}'" in err and words in err, err
    assert not sweep.exists()


@pytest.mark.parametrize("extra,key,words", [
    (["sweep.objective.metric=local"], "sweep.objective.metric", "stage=sft measures only eval_loss"),
    (["train.eval_every=null"], "train.eval_every", "needs held-out evaluations"),
    (["hydra.sweeper.direction=maximize"], "sweep.objective.direction", "is to minimize"),
    (["hydra.sweeper.storage=sqlite:///study.db"], "hydra.sweeper.storage", "SQLAlchemy 2"),
    (["train.warmup_ratio=2"], "train.warmup_ratio", "the fixed part of the search"),
])
def test_the_objective_the_sweeper_settings_and_the_fixed_part_are_checked_up_front(prepared, tmp_path, capsys,
                                                                                   extra, key, words):
    with pytest.raises(SystemExit):
        preflight([*OPTUNA, LR, *TINY, *extra, f"paths.root={prepared['outputs']}",
                   f"hydra.sweep.dir={tmp_path}/s"], CONF_DIR, stage_module)
    err = capsys.readouterr().err
    assert f"config error at '{key}'" in err and words in err, err


def test_the_sweeper_is_told_the_direction_and_a_seed_and_the_grid_preflight_stays(prepared, tmp_path):
    out = preflight([*OPTUNA, LR, *TINY, "sweep.objective.direction=minimize", f"paths.root={prepared['outputs']}",
                     f"hydra.sweep.dir={tmp_path}/s"], CONF_DIR, stage_module)
    assert "hydra.sweeper.direction=minimize" in out and "hydra.sweeper.sampler.seed=42" in out
    record = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert record["search_space"] == {"train.lr": "tag(log, interval(1e-5,1e-3))"}
    assert record["objective"] == {"metric": "eval_loss", "direction": "minimize"}
    with pytest.raises(SystemExit) as stop:  # a dry search checks and stops: its jobs do not exist yet
        preflight([*OPTUNA, LR, *TINY, "dry_run=true", f"paths.root={prepared['outputs']}",
                   f"hydra.sweep.dir={tmp_path}/dry"], CONF_DIR, stage_module)
    assert stop.value.code == 0 and not (tmp_path / "dry").exists()
    # A grid is still validated job by job (sweep/preflight.py), and a sweep plugin without a search is refused.
    grid = preflight(["-m", "train.lr=1e-4,2e-4", *TINY, f"paths.root={prepared['outputs']}",
                      f"hydra.sweep.dir={tmp_path}/g"], CONF_DIR, stage_module)
    assert len(json.loads((tmp_path / "g" / "sweep.json").read_text())["jobs"]) == 2 and grid[-1].startswith("hydra.")


def test_a_proposed_job_the_rules_refuse_is_a_recorded_failure_not_a_crash(prepared, tmp_path):
    """Each key alone is valid up front; together they are not (2 per step does not divide 3)."""
    overrides = [*TINY, "train.micro_batch_size=2", "train.global_batch_size=3", f"paths.root={prepared['outputs']}"]
    job = tmp_path / "0"
    job.mkdir()
    assert run_trial(compose_job(CONF_DIR, overrides), job, overrides, stage_module) is None
    record = objective_of(job)
    assert record["status"] == "failed" and record["value"] is None and "train.global_batch_size" in record["error"]
    assert record["metric"] == "eval_loss" and not (job / "run.json").exists()


# -- whole searches through the CLI -------------------------------------------------------------------------------

@pytest.mark.slow
def test_optuna_search_interrupted_resumed_and_reported(prepared, tmp_path):
    """Three trials over a log-scale learning rate, driven by the held-out loss: stopped during the third, rerun
    with the same command (the finished two return their recorded loss without training), then the report."""
    sweep = tmp_path / "search"
    args = [*OPTUNA, "hydra.sweeper.n_trials=3", "hydra.sweeper.n_jobs=1", LR, *TINY,
            f"paths.root={prepared['outputs']}", f"hydra.sweep.dir={sweep}"]
    proc = subprocess.Popen([sys.executable, "-m", "cosmos_exp.run", *args], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    wait_for(sweep / "2" / ".hydra" / "overrides.yaml", proc, timeout=300)
    proc.send_signal(signal.SIGTERM)  # as a scheduler stops a job
    proc.communicate(timeout=120)
    assert not (sweep / "2" / "objective.json").exists() and not (sweep / "optimization_results.yaml").exists()
    done = {j: (sweep / j / "metrics.jsonl").stat().st_mtime_ns for j in ("0", "1")}
    first = {j: objective_of(sweep / j)["value"] for j in ("0", "1")}

    again = run_cli(args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    for j in ("0", "1"):
        assert (sweep / j / "metrics.jsonl").stat().st_mtime_ns == done[j], f"trial {j} trained again"
        assert objective_of(sweep / j)["value"] == first[j]
    assert (again.stdout + again.stderr).count("finished earlier with the same config") == 2
    values = {j: objective_of(sweep / j)["value"] for j in ("0", "1", "2")}
    lrs = {j: float(yaml.safe_load((sweep / j / ".hydra" / "overrides.yaml").read_text())[0].split("=")[1])
           for j in values}
    assert all(1e-5 <= lr <= 1e-3 for lr in lrs.values()) and len(set(lrs.values())) == 3
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == min(values.values())
    assert best["best_params"]["train.lr"] == lrs[min(values, key=values.get)]

    report = run_cli(["stage=report", f"sweep.dir={sweep}", f"paths.root={prepared['outputs']}",
                      f"hydra.run.dir={tmp_path}/report"], cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-3000:]
    out = json.loads((tmp_path / "report" / "search.json").read_text())
    assert [t["trial"] for t in out["trials"]] == [0, 1, 2] and not out["failed"]
    assert out["best"]["value"] == best["best_value"] and out["optuna_best"] == best
    for t in out["trials"]:
        assert t["value"] == values[str(t["trial"])] and t["params"]["train.lr"] == lrs[str(t["trial"])]
        assert json.loads((Path(t["run_dir"]) / "run.json").read_text())["status"] == "succeeded"
    assert (tmp_path / "report" / "plots" / "objective_vs_train.lr.png").stat().st_size > 1000
    table = (tmp_path / "report" / "search.md").read_text()
    assert "**(best)**" in table and "optimization_results.yaml" in table
    header = (tmp_path / "report" / "search.csv").read_text().splitlines()[0]
    assert header.startswith("trial,status,train.lr,eval_loss")


def test_the_optuna_sweeper_records_a_trial_without_a_value_as_failed_and_goes_on(tmp_path):
    """What run_trial relies on, checked against the installed plugin: a job that returns None is a failed trial
    (an exception or a NaN would end the study), and the search continues to its best-parameters file. (Not with
    Optuna's grid sampler: when the grid's last point fails, the plugin 1.3.0 crashes in GridSampler.after_trial.)"""
    app = tmp_path / "app.py"
    app.write_text("import hydra\n"
                   "@hydra.main(version_base='1.3', config_path=None, config_name=None)\n"
                   "def main(cfg):\n"
                   "    return None if cfg.x > 0.6 else float(cfg.x)\n"
                   "main()\n")
    proc = subprocess.run([sys.executable, str(app), "-m", "hydra/sweeper=optuna", "hydra/sweeper/sampler=random",
                           "hydra.sweeper.sampler.seed=0", "hydra.sweeper.n_trials=4", "+x=interval(0,1)",
                           f"hydra.sweep.dir={tmp_path}/s"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    assert out.count("Failed experiment: Return value must be float-castable. Got 'None'") == 2  # seed 0: two > 0.6
    assert yaml.safe_load((tmp_path / "s" / "optimization_results.yaml").read_text())["best_value"] <= 0.6


@pytest.mark.slow
def test_a_train_then_evaluate_trial(prepared, tmp_path):
    """One trial fine-tunes, picks its checkpoint with the lowest held-out loss, evaluates it, and returns the
    evaluation's metric; each step is a run directory of its own, named by train_eval.json."""
    sweep = tmp_path / "search"
    proc = run_cli([*OPTUNA, "hydra.sweeper.n_trials=1", "train.lr=interval(1e-4,1e-3)", "stage=train_eval",
                    *[a for a in TINY[1:] if "max_steps" not in a], "train.max_steps=4", "sweep.pick=best",
                    "sweep.objective.metric=bleu", "eval=local",
                    "generation.max_new_tokens=8", "generation.max_items=2", f"paths.root={prepared['outputs']}",
                    f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trial = sweep / "0"
    parts = json.loads((trial / "train_eval.json").read_text())
    assert parts["sft"] == str(trial / "runs" / "sft") and parts["evaluate"] == str(trial / "runs" / "evaluate")
    metrics = [json.loads(line) for line in (trial / "runs" / "sft" / "metrics.jsonl").read_text().splitlines()]
    losses = {m["step"]: m["eval_loss"] for m in metrics if "eval_loss" in m}
    assert sorted(losses) == [2, 4] and parts["step"] == min(losses, key=lambda s: (losses[s], s))
    assert parts["eval_loss"] == losses[parts["step"]]
    scored = json.loads((trial / "runs" / "evaluate" / "evaluate.json").read_text())
    assert scored["checkpoint"] == parts["checkpoint"] and scored["train_run"] == parts["sft"]
    for run in ("runs/sft", "runs/evaluate", "."):
        assert json.loads((trial / run / "run.json").read_text())["status"] == "succeeded"
    summary = json.loads((trial / "runs" / "evaluate" / "summary.json").read_text())
    assert objective_of(trial)["value"] == summary["metrics"]["bleu"]["headline"] == parts["metrics"]["bleu"]
    assert yaml.safe_load((sweep / "optimization_results.yaml").read_text())["best_value"] == parts["metrics"]["bleu"]
    # A grid's report reads a train-then-evaluate job through train_eval.json to its evaluation.
    child = load_child(trial)
    assert not child.problem and child.step == parts["step"] and child.train_run == parts["sft"]
    assert child.metrics["bleu"]["headline"] == parts["metrics"]["bleu"]


# -- several training seeds of one configuration -----------------------------------------------------------------

def test_report_and_compare_show_the_spread_across_training_seeds(tmp_path):
    """A grid of two learning rates x three training seeds, each job a real judge run (local + BLEU on captions
    that differ by seed): report.json/md and comparison.json/md give each setting's spread across its seeds
    beside the runs' own CIs."""
    from omegaconf import OmegaConf

    from test_eval_compare import caption_run
    from cosmos_exp.config.evaluation import EvalConfig
    from cosmos_exp.config.schema import Config
    from cosmos_exp.stages import compare as compare_stage
    from cosmos_exp.stages import judge as judge_stage
    from cosmos_exp.sweep.report import write_report

    def cfg(**top):
        c = OmegaConf.structured(Config)
        c.eval = OmegaConf.structured(EvalConfig)
        c.eval.metrics = ["local", "bleu"]
        c.eval.bootstrap_samples = 200
        for k, v in top.items():
            setattr(c, k, v)
        return c

    sweep = tmp_path / "grid"
    grid = [(lr, seed) for lr in ("1e-4", "1e-3") for seed in (0, 1, 2)]
    for job, (lr, seed) in enumerate(grid):
        captions = tmp_path / f"captions_{job}"
        caption_run(captions, 12, wrong_keys=seed + (4 if lr == "1e-4" else 1))
        judge_stage.run(cfg(captions=str(captions)), sweep / str(job))
        (sweep / str(job) / "run.json").write_text(json.dumps({
            "stage": "judge", "status": "succeeded", "overrides": [f"train.lr={lr}", f"train.seed={seed}"]}))
    (sweep / "sweep.json").write_text(json.dumps({"jobs": [{"num": j} for j in range(len(grid))]}))

    write_report(sweep, tmp_path / "report")
    spreads = json.loads((tmp_path / "report" / "report.json").read_text())["seed_spread"]
    local = {s["settings"]["train.lr"]: s for s in spreads if s["metric"] == "local"}
    assert set(local) == {"1e-4", "1e-3"} and local["1e-3"]["seeds"] == ["0", "1", "2"]
    summaries = [json.loads((sweep / str(j) / "summary.json").read_text()) for j in range(3, 6)]
    values = [s["metrics"]["local"]["headline"] for s in summaries]
    assert local["1e-3"]["values"] == values and local["1e-3"]["sd"] == pytest.approx(statistics.stdev(values))
    assert local["1e-3"]["mean_ci_half_width"] > 0 and "training seeds" in local["1e-3"]["text"]
    assert "## Spread across training seeds" in (tmp_path / "report" / "report.md").read_text()

    compare_stage.run(cfg(a=str(sweep / "0"), b=str(sweep / "3")), tmp_path / "cmp")
    out = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert out["seed_spread"]["a"]["local"]["values"] == local["1e-4"]["values"]
    assert out["seed_spread"]["b"]["local"]["values"] == values
    assert "## Spread across training seeds" in (tmp_path / "cmp" / "comparison.md").read_text()
