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


def test_unbuilt_stage_is_reported_not_faked(monkeypatch):
    """A stage whose module is not written exits 3 with a clear message, never a silent success."""
    from omegaconf import OmegaConf

    from cosmos_exp import run
    from cosmos_exp.config import NotImplementedStage

    monkeypatch.setitem(run.STAGE_MODULES, "report", "cosmos_exp.sweep.not_written_yet")
    monkeypatch.setitem(run.STAGE_MODULES, "sft", {"deepspeed": "cosmos_exp.train.sft_stage",
                                                   "cosmos_rl": "cosmos_exp.not_a_package.sft_stage"})
    for stage, backend in (("report", "deepspeed"), ("sft", "cosmos_rl")):
        cfg = OmegaConf.create({"stage": {"name": stage}, "backend": {"name": backend}})
        with pytest.raises(NotImplementedStage, match="not implemented yet"):
            run.stage_module(cfg)
    assert run.EXIT_NOT_IMPLEMENTED == 3


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
    code = ("import sys, cosmos_exp.run, cosmos_exp.config.validate, cosmos_exp.data.prepare_stage;"
            "print(sorted(m for m in ('torch', 'transformers', 'deepspeed', 'openai') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=workdir)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
