"""The multirun preflight as a function: what it passes through, what it refuses, and that it plans each job in
the environment the job's launcher will give it."""

import json
import os

import pytest

from cosmos_exp.run import CONF_DIR, stage_module
from cosmos_exp.sweep.preflight import preflight


def run_preflight(args):
    return preflight(list(args), CONF_DIR, stage_module)


def test_single_runs_and_passive_invocations_pass_through(prepared):
    single = ["stage=sft", f"paths.root={prepared['outputs']}", "train.lr=1e-4"]
    assert run_preflight(single) == single
    passive = ["-m", "--cfg", "job", "stage=sft", "train.lr=1e-4,2e-4"]
    assert run_preflight(passive) == passive


def test_a_multi_node_sft_sweep_is_planned_as_slurm_will_run_it(prepared, tmp_path):
    """Under SLURM each task is a rank, so nnodes=2 is valid there; launched locally it is not."""
    common = ["stage=sft", "parallelism.nnodes=2", f"paths.root={prepared['outputs']}", "train.lr=1e-4,2e-4"]
    before = dict(os.environ)
    out = run_preflight(["-m", "hydra/launcher=slurm", "hydra.launcher.nodes=2", *common,
                         f"hydra.sweep.dir={tmp_path}/slurm"])
    assert out[-1] == f"hydra.sweep.dir='{tmp_path}/slurm'"
    assert dict(os.environ) == before  # the job's variables were set only while planning
    jobs = json.loads((tmp_path / "slurm" / "sweep.json").read_text())["jobs"]
    assert [j["overrides"][-1] for j in jobs] == ["train.lr=0.0001", "train.lr=0.0002"]
    with pytest.raises(SystemExit) as exit_info:
        run_preflight(["-m", *common, f"hydra.sweep.dir={tmp_path}/local"])
    assert exit_info.value.code == 2 and not (tmp_path / "local").exists()


def test_misspelled_launcher_key_fails_before_anything_is_written(prepared, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_preflight(["-m", "hydra/launcher=slurm", "hydra.launcher.cpus_per_tsk=1", "stage=sft",
                       f"paths.root={prepared['outputs']}", "train.lr=1e-4,2e-4", f"hydra.sweep.dir={tmp_path}/s"])
    assert exit_info.value.code == 2 and "cpus_per_tsk" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
