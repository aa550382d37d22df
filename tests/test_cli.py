"""The real entrypoint in a subprocess: run directories, dry runs, config errors, unbuilt stages, secrets."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import run_cli

SECRETS = {"OPENAI_API_KEY": "sk-test-0123456789abcdef", "WANDB_API_KEY": "wandb-secret-9876543210",
           "HF_TOKEN": "hf_tokenvalue_abcdef123"}


def run_dirs(outputs: Path):
    return sorted(p.parent for p in outputs.glob("runs/*/*/run.json"))


def test_prepare_writes_complete_run_dir(prepared):
    out = prepared["outputs"]
    dirs = run_dirs(out)
    assert len(dirs) == 2
    for d in dirs:
        for f in (".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml", "resolved.yaml", "run.json", "log.txt"):
            assert (d / f).is_file(), f
        info = json.loads((d / "run.json").read_text())
        assert info["status"] == "succeeded" and info["stage"] == "prepare"
        assert info["code"]["origin"] == "source checkout" and info["code"]["version"]
        assert info["code"]["commit"] and isinstance(info["code"]["dirty"], bool)
        assert info["packages"]["torch"] and info["python"]
        assert info["start_time"] <= info["end_time"]
        resolved = yaml.safe_load((d / "resolved.yaml").read_text())
        assert "${" not in (d / "resolved.yaml").read_text()  # fully resolved
        assert resolved["stage"]["name"] == "prepare"
    assert (prepared["data"] / "train").is_dir() and (prepared["tiny_qwen3_vl"] / "config.json").is_file()


def test_prepare_twice_is_a_no_op(prepared):
    proc = run_cli(["stage=prepare", f"paths.root={prepared['outputs']}", "dry_run=true"], cwd=prepared["root"])
    assert proc.returncode == 0, proc.stderr
    assert "up to date" in proc.stdout


@pytest.mark.parametrize("stage", ["prepare", "sft", "caption"])
def test_dry_run_writes_nothing(stage, prepared):
    before = sorted(p for p in prepared["outputs"].rglob("*"))
    proc = run_cli([f"stage={stage}", f"paths.root={prepared['outputs']}", "dry_run=true"], cwd=prepared["root"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "plan for stage" in proc.stdout and "dry run: nothing was written" in proc.stdout
    assert "# resolved config" in proc.stdout
    assert sorted(p for p in prepared["outputs"].rglob("*")) == before


@pytest.mark.parametrize("stage,inputs", [("judge", ["captions"]), ("compare", ["a", "b"])])
def test_dry_run_refuses_empty_input_runs_by_name(stage, inputs, prepared, tmp_path):
    proc = run_cli([f"stage={stage}", f"paths.root={prepared['outputs']}", "dry_run=true",
                    *[f"{k}={tmp_path}" for k in inputs]], cwd=prepared["root"])
    assert proc.returncode == 2
    assert f"config error at '{inputs[0]}'" in proc.stderr
    assert not list(tmp_path.iterdir())


def test_config_error_exits_before_work_and_leaves_nothing(workdir):
    proc = run_cli(["stage=prepare", "dataset.vision.fps=4", f"paths.root={workdir}/outputs"], cwd=workdir)
    assert proc.returncode == 2
    assert "dataset.vision.nframes" in proc.stderr and "exactly one of nframes and fps" in proc.stderr
    assert not list((workdir / "outputs").rglob("run.json"))
    assert not (workdir / "outputs" / "data").exists()


def test_unknown_key_on_command_line_fails_naming_it(workdir):
    proc = run_cli(["train.lrr=1", f"paths.root={workdir}/outputs"], cwd=workdir)
    assert proc.returncode != 0 and "train.lrr" in proc.stderr


@pytest.mark.parametrize("override", ["+model.max_pixelz=5", "++model.max_pixelz=5", "+train.warmup.steps=3",
                                      "++dataset.vision.fpz=2"])
def test_keys_added_with_plus_are_checked_too(override, workdir):
    """`+key=` / `++key=` add keys Hydra would let through: the schema still refuses a misspelled one, before any work."""
    proc = run_cli(["stage=prepare", override, f"paths.root={workdir}/outputs"], cwd=workdir)
    key = override.lstrip("+").split("=")[0]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"'{key.rsplit('.', 1)[0] if key.startswith('train.warmup') else key}'" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not list((workdir / "outputs").rglob("run.json")) and not (workdir / "outputs" / "data").exists()


def test_plus_adds_keys_where_the_schema_allows_any(workdir):
    """backend.toml_overrides is a free dict: `+` there is how a user adds a cosmos-rl key."""
    proc = run_cli(["stage=prepare", "+backend.toml_overrides.train.compile=false", "dry_run=true",
                    f"paths.root={workdir}/outputs"], cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_data_error_is_one_line_and_one_split_is_enough(workdir):
    """A real dataset with only its eval split prepares (scans) that split; one with neither fails in one line."""
    root = workdir / "avha"
    (root / "eval" / "videos").mkdir(parents=True)
    (root / "eval" / "metas").mkdir(parents=True)
    proc = run_cli(["stage=prepare", "dataset=avha", f"dataset.root={root}", f"paths.root={workdir}/outputs"],
                   cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(next((workdir / "outputs").glob("runs/*/*/data_report.json")).read_text())
    assert list(report) == ["eval"]
    (root / "eval" / "metas" / "clip_1.label.json").write_text("{}")  # a label without its video
    proc = run_cli(["stage=prepare", "dataset=avha", f"dataset.root={root}", "dataset.strict=true",
                    f"paths.root={workdir}/outputs"], cwd=workdir)
    assert proc.returncode == 2 and "clip_1" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    empty = workdir / "empty"
    empty.mkdir()
    proc = run_cli(["stage=prepare", "dataset=avha", f"dataset.root={empty}", f"paths.root={workdir}/outputs"],
                   cwd=workdir)
    assert proc.returncode == 2 and "dataset.root" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_every_stage_and_backend_has_a_module_with_plan_and_run():
    from omegaconf import OmegaConf

    from cosmos_exp import run
    from cosmos_exp.config import BACKENDS, STAGES

    assert set(run.STAGE_MODULES) == set(STAGES)
    for stage in STAGES:
        for backend in BACKENDS:
            module = run.stage_module(OmegaConf.create({"stage": {"name": stage}, "backend": {"name": backend}}))
            assert callable(module.plan) and callable(module.run), (stage, backend)


def test_config_errors_come_before_stage_lookup(workdir):
    proc = run_cli(["stage=sft", "backend=cosmos_rl", "model.path=/nonexistent", f"paths.root={workdir}/outputs"],
                   cwd=workdir)
    assert proc.returncode == 2 and "model.path" in proc.stderr


def test_no_secret_lands_in_run_dir(prepared, tmp_path):
    """Secrets set in the environment appear in no file of a run directory, failed runs included."""
    out = tmp_path / "outputs"
    ok = run_cli(["stage=prepare", f"paths.root={out}", f"paths.data_dir={prepared['outputs']}/data",
                  f"paths.models_dir={prepared['outputs']}/models"], cwd=tmp_path, env=SECRETS)
    assert ok.returncode == 0, ok.stderr[-2000:]
    # A run that fails inside the stage (the dataset stamp is fine, the model dir is not ours).
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "config.json").write_text("{}")
    bad = run_cli(["stage=prepare", f"paths.root={out}", f"paths.data_dir={prepared['outputs']}/data",
                   f"model.path={tmp_path}/foreign", f"name=leak_{SECRETS['HF_TOKEN'][:3]}"], cwd=tmp_path, env=SECRETS)
    assert bad.returncode != 0
    dirs = run_dirs(out)
    assert len(dirs) == 2
    statuses = sorted(json.loads((d / "run.json").read_text())["status"] for d in dirs)
    assert statuses == ["failed", "succeeded"]
    for d in dirs:
        for f in d.rglob("*"):
            if f.is_file():
                data = f.read_bytes()
                for value in SECRETS.values():
                    assert value.encode() not in data, f"{value} leaked into {f}"


def test_entrypoint_imports_no_heavy_library(workdir):
    """Heavy imports stay inside stages (the start-up figure itself is in bench/bench_startup.py)."""
    code = ("import sys, cosmos_exp.run, cosmos_exp.config.validate, cosmos_exp.stages.prepare;"
            "print(sorted(m for m in ('torch', 'transformers', 'deepspeed', 'openai') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=workdir)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
