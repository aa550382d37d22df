"""stage=evaluate (caption + judge in one run directory) and checkpoint sweeps through the real CLI."""

import json
import re
import shutil
from pathlib import Path
from typing import List

import pytest

from conftest import run_cli
from cosmos_exp.sweep.preflight import expand_checkpoints, job_overrides

SMALL = ["generation.max_new_tokens=8", "generation.max_items=2", "eval=local"]


def make_train_run(model_dir: Path, root: Path, steps=(1, 2, 3)) -> Path:
    """A training run directory in the layout of cosmos_exp.train.checkpoint: complete step_N copies of a tiny
    model, plus a half-written temp dir and a step without complete.json that a sweep must ignore."""
    run = root / "train_run"
    for step in steps:
        d = run / "checkpoints" / f"step_{step}"
        shutil.copytree(model_dir, d)
        (d / "complete.json").write_text(json.dumps({"step": step}))
    shutil.copytree(model_dir, run / "checkpoints" / "step_9")  # incomplete: no complete.json
    (run / "checkpoints" / ".tmp_step_10").mkdir()
    return run


def run_dirs(root: Path) -> List[Path]:
    return sorted(p.parent for p in root.rglob("run.json"))


def result_dir(proc) -> Path:
    m = re.search(r"results in (\S+)", proc.stdout + proc.stderr)
    assert m, (proc.stdout + proc.stderr)[-3000:]
    return Path(m.group(1))


@pytest.fixture
def train_run(prepared, tmp_path) -> Path:
    return make_train_run(prepared["tiny_qwen2_5_vl"], tmp_path)


def test_evaluate_captions_and_judges_in_one_run_dir(prepared, train_run, tmp_path):
    ckpt = train_run / "checkpoints" / "step_2"
    proc = run_cli(["stage=evaluate", f"model.path={ckpt}", f"paths.root={prepared['outputs']}",
                    f"hydra.run.dir={tmp_path}/eval", *SMALL], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "eval"
    captions = sorted(p.stem for p in (out / "captions").glob("*.json") if p.name != "index.json")
    scores = sorted(p.name[: -len(".score.json")] for p in (out / "scores").glob("*.score.json"))
    assert len(captions) == 2 and captions == scores
    summary = json.loads((out / "summary.json").read_text())
    assert summary["items"] == 2 and set(summary["metrics"]) == {"local", "bleu"}
    assert summary["captions_run"] == str(out.resolve())
    record = json.loads((out / "evaluate.json").read_text())
    assert record["checkpoint"] == str(ckpt.resolve()) and record["step"] == 2
    assert record["train_run"] == str(train_run.resolve()) and record["split"] == "eval"
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "succeeded" and run["result"]["step"] == 2


def test_evaluate_rejects_captions_input(prepared, train_run, tmp_path):
    proc = run_cli(["stage=evaluate", f"model.path={train_run}/checkpoints/step_1", f"captions={tmp_path}",
                    f"paths.root={prepared['outputs']}", *SMALL], cwd=tmp_path)
    assert proc.returncode == 2 and "'captions'" in proc.stderr


def test_checkpoint_sweep_one_job_per_complete_checkpoint_and_resume(prepared, train_run, tmp_path):
    sweep_dir = tmp_path / "sweep"
    args = ["-m", "stage=evaluate", f"sweep.checkpoints={train_run}", f"paths.root={prepared['outputs']}",
            f"hydra.sweep.dir={sweep_dir}", *SMALL]
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    children = run_dirs(sweep_dir)
    assert [c.name for c in children] == ["0", "1", "2"]
    records = [json.loads((c / "evaluate.json").read_text()) for c in children]
    assert [r["step"] for r in records] == [1, 2, 3]  # step_9 (incomplete) and the temp dir are not swept
    assert len({r["checkpoint"] for r in records}) == 3
    sweep = json.loads((sweep_dir / "sweep.json").read_text())
    assert sweep["expanded"]["train_run"] == str(train_run.resolve())
    assert [Path(p).name for p in sweep["expanded"]["model.path"]] == ["step_1", "step_2", "step_3"]
    assert [j["state"] for j in sweep["jobs"]] == ["to run"] * 3
    before = {p: p.stat().st_mtime_ns for c in children for p in (c / "captions").glob("*.json")}

    report = run_cli(["stage=report", f"sweep.dir={sweep_dir}", f"paths.root={prepared['outputs']}",
                      f"hydra.run.dir={tmp_path}/report"], cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-3000:]
    table = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [c["step"] for c in table["children"]] == [1, 2, 3]
    for row, child in zip(table["children"], children):
        summary = json.loads((child / "summary.json").read_text())
        assert row["metrics"]["bleu"]["headline"] == summary["metrics"]["bleu"]["headline"]
        assert row["train_run"] == str(train_run.resolve())
        assert row["config"]["dataset"] == "synthetic_av" and row["config"]["metrics"] == ["local", "bleu"]
    assert (tmp_path / "report" / "plots" / "bleu.png").is_file()

    again = run_cli(args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "3 already done and will be skipped" in again.stderr
    sweep = json.loads((sweep_dir / "sweep.json").read_text())
    assert sweep["resumed"] and all(j["state"].startswith("already evaluated") for j in sweep["jobs"])
    for c in children:
        assert json.loads((c / "run.json").read_text())["result"]["skipped"]
    assert before == {p: p.stat().st_mtime_ns for c in children for p in (c / "captions").glob("*.json")}

    # A job killed before it finished (no evaluate.json) is the only one done again.
    (children[2] / "evaluate.json").unlink()
    partial = run_cli(args, cwd=tmp_path)
    assert partial.returncode == 0, partial.stderr[-3000:]
    assert "2 already done and will be skipped" in partial.stderr
    results = [json.loads((c / "run.json").read_text())["result"] for c in children]
    assert [bool(r.get("skipped")) for r in results] == [True, True, False] and results[2]["step"] == 3
    assert (children[2] / "evaluate.json").is_file()

    forced = run_cli(args + ["sweep.skip_done=false"], cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert "0 already done" in forced.stderr
    assert not json.loads((children[1] / "run.json").read_text())["result"].get("skipped")

    # Other settings are not "the same config": the job runs again (here: another BLEU reference).
    changed = run_cli(args + ["eval.bleu_reference=scene_description"], cwd=tmp_path)
    assert changed.returncode == 0, changed.stderr[-3000:]
    assert "0 already done" in changed.stderr
    assert not json.loads((children[0] / "run.json").read_text())["result"].get("skipped")


def test_bad_sweep_value_fails_before_any_job(prepared, train_run, tmp_path):
    proc = run_cli(["-m", "stage=evaluate", f"sweep.checkpoints={train_run}", f"paths.root={tmp_path}/o",
                    f"model.path={prepared['tiny_qwen2_5_vl']}"], cwd=tmp_path)
    assert proc.returncode == 2 and "sweep.checkpoints" in proc.stderr
    # The second value of a swept key is bad: the first job must not run either.
    proc = run_cli(["-m", "stage=evaluate", f"sweep.checkpoints={train_run}", f"paths.root={prepared['outputs']}",
                    f"hydra.sweep.dir={tmp_path}/sweep", "generation.max_new_tokens=8,0", "eval=local"], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "generation.max_new_tokens" in proc.stderr and "no job was launched" in proc.stderr
    assert not (tmp_path / "sweep").exists() and run_dirs(tmp_path) == []


def test_sweep_needs_complete_checkpoints_and_multirun(prepared, tmp_path):
    empty = tmp_path / "train"
    (empty / "checkpoints" / ".tmp_step_3").mkdir(parents=True)
    proc = run_cli(["-m", "stage=evaluate", f"sweep.checkpoints={empty}", f"paths.root={prepared['outputs']}"],
                   cwd=tmp_path)
    assert proc.returncode == 2 and "sweep.checkpoints" in proc.stderr and "no complete" in proc.stderr
    proc = run_cli(["stage=evaluate", f"sweep.checkpoints={empty}", f"paths.root={prepared['outputs']}"], cwd=tmp_path)
    assert proc.returncode == 2 and "needs multirun" in proc.stderr


def test_expansion_keeps_odd_paths_intact(prepared, tmp_path):
    run = make_train_run(prepared["tiny_qwen2_5_vl"], tmp_path / "a,b 'c'", steps=(5, 40))
    overrides, expanded = expand_checkpoints(["stage=evaluate", f"sweep.checkpoints={run}", "seed=1,2"])
    assert [Path(p).name for p in expanded["model.path"]] == ["step_5", "step_40"]  # numeric order, not text
    jobs = job_overrides(overrides)
    assert len(jobs) == 4
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    paths = {parser.parse_override([a for a in job if a.startswith("model.path=")][0]).value() for job in jobs}
    assert paths == {str((run / "checkpoints" / s).resolve()) for s in ("step_5", "step_40")}


def test_include_base_adds_the_training_start_as_step_0(prepared, tmp_path):
    run = make_train_run(prepared["tiny_qwen2_5_vl"], tmp_path, steps=(3,))
    base = prepared["tiny_qwen2_5_vl"]
    # resolved.yaml keeps model.path as given (relative to the run's cwd, which run.json records).
    (run / "resolved.yaml").write_text(f"model:\n  path: {base.name}\n")
    (run / "run.json").write_text(json.dumps({"cwd": str(base.parent)}))
    overrides, expanded = expand_checkpoints([f"sweep.checkpoints={run}", "sweep.include_base=true"])
    assert expanded["model.path"] == [str(base.resolve()), str((run / "checkpoints" / "step_3").resolve())]
    from cosmos_exp.sweep.checkpoints import checkpoint_lineage

    lineage = checkpoint_lineage(str(base), str(run))
    assert lineage["step"] == 0 and lineage["train_run"] == str(run.resolve()) and lineage["role"]
    assert checkpoint_lineage(str(base))["step"] is None  # without the sweep's training run: no step
    (run / "resolved.yaml").write_text("model:\n  path: nowhere\n")
    with pytest.raises(Exception, match="sweep.include_base"):
        expand_checkpoints([f"sweep.checkpoints={run}", "sweep.include_base=true"])


@pytest.mark.slow
def test_checkpoint_sweep_through_the_submitit_local_launcher(prepared, tmp_path):
    """The same path as SLURM (submitit pickles the job, each point its own process), without a cluster."""
    run = make_train_run(prepared["tiny_qwen2_5_vl"], tmp_path, steps=(1, 2))
    sweep_dir = tmp_path / "sweep"
    proc = run_cli(["-m", "hydra/launcher=local", "hydra.launcher.timeout_min=5", "stage=evaluate",
                    f"sweep.checkpoints={run}", f"paths.root={prepared['outputs']}", f"hydra.sweep.dir={sweep_dir}",
                    *SMALL], cwd=tmp_path)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    children = run_dirs(sweep_dir)
    assert [json.loads((c / "evaluate.json").read_text())["step"] for c in children] == [1, 2]
    pids = {json.loads((c / "run.json").read_text())["pid"] for c in children}
    assert len(pids) == 2  # one process per sweep point
    for c in children:
        assert json.loads((c / "captions" / "index.json").read_text())["counts"]["done"] == 2


def test_evaluate_with_the_llm_judge_keeps_the_key_off_disk(prepared, train_run, tmp_path):
    from _judge_server import FakeJudgeServer

    key = "sk-evaluate-never-on-disk-4242"
    base = ["stage=evaluate", f"model.path={train_run}/checkpoints/step_1", f"paths.root={prepared['outputs']}",
            "generation.max_new_tokens=8", "generation.max_items=2", "eval=full",
            f"eval.judge.cache_path={tmp_path}/judge.sqlite", "eval.judge.api_key_env=EVAL_JUDGE_KEY"]
    missing = run_cli(base, cwd=tmp_path, env={"EVAL_JUDGE_KEY": ""})
    assert missing.returncode == 2 and "eval.judge.api_key_env" in missing.stderr  # before any captioning
    with FakeJudgeServer() as server:
        proc = run_cli(base + [f"eval.judge.base_url={server.base_url}", f"hydra.run.dir={tmp_path}/eval"],
                       cwd=tmp_path, env={"EVAL_JUDGE_KEY": key})
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    llm = summary["metrics"]["llm_judge"]
    assert llm["usage"]["requests"] == len(server.requests)
    assert llm["counts"]["items"] == 2 and summary["checkpoint"].endswith("step_1")
    for p in (tmp_path / "eval").rglob("*"):
        assert not p.is_file() or key.encode() not in p.read_bytes(), p


def test_evaluate_dry_run_plans_both_halves_and_writes_nothing(prepared, train_run, tmp_path):
    proc = run_cli(["stage=evaluate", f"model.path={train_run}/checkpoints/step_2", f"paths.root={tmp_path}/o",
                    f"paths.data_dir={prepared['outputs']}/data", "dry_run=true", *SMALL], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "plan for stage 'evaluate'" in out and "(2 found)" in out
    assert f"training run (checkpoint step 2): {train_run.resolve()}" in out
    assert "summary.json" in out and "judge: metrics local, bleu" in out
    assert not (tmp_path / "o").exists()
