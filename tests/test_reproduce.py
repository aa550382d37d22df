"""cosmos-exp-reproduce: same resolved config into a new directory; refusal of incomplete run dirs."""

import json
import shutil
from pathlib import Path

from conftest import run_cli


def _one_run(outputs: Path) -> Path:
    (run_json,) = list(outputs.glob("runs/*/*/run.json"))
    return run_json.parent


def test_reproduce_gives_identical_resolved_config(prepared, tmp_path):
    out = tmp_path / "outputs"
    first = run_cli(["stage=prepare", f"paths.root={out}", f"paths.data_dir={prepared['outputs']}/data",
                     f"paths.models_dir={prepared['outputs']}/models", "seed=7", "name=orig"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    original = _one_run(out)
    new_dir = tmp_path / "again"
    proc = run_cli([str(original), "--out", str(new_dir)], cwd=tmp_path, module="cosmos_exp.repro.reproduce")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "resolved config identical" in proc.stdout
    assert (new_dir / "resolved.yaml").read_text() == (original / "resolved.yaml").read_text()
    info = json.loads((new_dir / "run.json").read_text())
    assert info["status"] == "succeeded" and info["reproduce_of"] == str(original.resolve())


def test_reproduce_warns_when_revision_differs(prepared, tmp_path):
    out = tmp_path / "outputs"
    assert run_cli(["stage=prepare", f"paths.root={out}", f"paths.data_dir={prepared['outputs']}/data",
                    f"paths.models_dir={prepared['outputs']}/models"], cwd=tmp_path).returncode == 0
    original = _one_run(out)
    info = json.loads((original / "run.json").read_text())
    info["code"]["commit"] = "0" * 40
    (original / "run.json").write_text(json.dumps(info))
    proc = run_cli([str(original), "--out", str(tmp_path / "again")], cwd=tmp_path, module="cosmos_exp.repro.reproduce")
    assert proc.returncode == 0
    assert "code revision differs" in proc.stderr and "0" * 40 in proc.stderr


def test_reproduce_refuses_incomplete_run_dir(prepared, tmp_path):
    out = tmp_path / "outputs"
    assert run_cli(["stage=prepare", f"paths.root={out}", f"paths.data_dir={prepared['outputs']}/data",
                    f"paths.models_dir={prepared['outputs']}/models"], cwd=tmp_path).returncode == 0
    original = _one_run(out)
    (original / ".hydra" / "config.yaml").unlink()
    proc = run_cli([str(original)], cwd=tmp_path, module="cosmos_exp.repro.reproduce")
    assert proc.returncode == 2
    assert "not a complete run directory" in proc.stderr and ".hydra/config.yaml" in proc.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_cli([str(empty)], cwd=tmp_path, module="cosmos_exp.repro.reproduce")
    assert proc.returncode == 2 and "run.json" in proc.stderr
