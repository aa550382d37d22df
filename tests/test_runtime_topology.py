"""runtime/topology.py and rendezvous.py: one reading of torchrun / SLURM / our launcher's variables."""

import os
import socket

import pytest

from cosmos_exp.run import shared_run_dir_overrides
from cosmos_exp.runtime.rendezvous import rendezvous_port
from cosmos_exp.runtime.topology import LAUNCHER_ENV, Shard, sweep_point_is_one_unit, take_shard, topology

TORCHRUN = {"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "TORCHELASTIC_RUN_ID": "abc"}
SRUN = {"SLURM_PROCID": "5", "SLURM_LOCALID": "1", "SLURM_NTASKS": "8", "SLURM_JOB_ID": "42"}
ONE_TASK = {"SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NTASKS": "1", "SLURM_JOB_ID": "43"}
ARRAY = {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "1"}
OURS = {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2", LAUNCHER_ENV: "1"}


@pytest.mark.parametrize("env, rank, local, world, launched, in_launch, shard", [
    ({}, 0, 0, 1, "none", False, Shard(0, 1, "single")),
    (TORCHRUN, 3, 1, 4, "torchrun", True, Shard(3, 4, "torchrun")),
    ({**TORCHRUN, **SRUN}, 3, 1, 4, "torchrun", True, Shard(3, 4, "torchrun")),  # torchrun inside a SLURM job
    (SRUN, 5, 1, 8, "slurm", True, Shard(5, 8, "slurm")),
    (ONE_TASK, 0, 0, 1, "slurm", False, Shard(0, 1, "slurm")),  # one task starts its own ranks
    ({**ONE_TASK, **ARRAY}, 0, 0, 1, "slurm", False, Shard(2, 3, "slurm+slurm_array")),
    ({**SRUN, **ARRAY, "SLURM_PROCID": "1", "SLURM_NTASKS": "2"}, 1, 1, 2, "slurm", True,
     Shard(5, 6, "slurm+slurm_array")),  # srun tasks nest inside the array task: task 2 of 3, rank 1 of 2
    ({**ONE_TASK, **ARRAY, **OURS}, 1, 1, 2, "ours", True, Shard(5, 6, "ours+slurm_array")),  # our ranks in it
    (ARRAY, 0, 0, 1, "none", False, Shard(2, 3, "slurm_array")),
], ids=["nothing", "torchrun", "torchrun-in-slurm", "srun-tasks", "one-task", "array", "array-in-srun",
        "ours-in-array", "bare-array"])
def test_one_reading_of_the_launch(env, rank, local, world, launched, in_launch, shard):
    topo = topology(env)
    assert (topo.rank, topo.local_rank, topo.world_size, topo.launched) == (rank, local, world, launched)
    assert topo.in_launch is in_launch
    assert topo.shard() == shard


def test_an_array_task_of_a_multirun_is_one_sweep_point(monkeypatch):
    """hydra-submitit gives each sweep point an array task id: that is a configuration, not a share."""
    for key, value in {**ONE_TASK, **ARRAY}.items():
        monkeypatch.setenv(key, value)
    with sweep_point_is_one_unit(multirun=True):
        assert topology().shard() == Shard(0, 1, "slurm")
        assert not any(k.startswith("SLURM_ARRAY_TASK_") for k in os.environ)  # nor do started ranks see them
    assert topology().shard() == Shard(2, 3, "slurm+slurm_array")  # restored
    with sweep_point_is_one_unit(multirun=False):  # a single run started as an array task: a share
        assert topology().shard() == Shard(2, 3, "slurm+slurm_array")


def test_launch_id_names_the_shared_run_directory():
    assert topology(TORCHRUN).launch_id == "abc" and topology({**TORCHRUN, **SRUN}).launch_id == "42"
    assert topology({"RANK": "0", "WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "none"}).launch_id is None
    assert shared_run_dir_overrides(["stage=sft"], {}) == []
    assert shared_run_dir_overrides(["stage=sft"], ONE_TASK) == []
    rank5 = shared_run_dir_overrides(["stage=sft"], SRUN)
    assert "launch-42_" in rank5[0] and rank5[1].endswith("/log_rank5.txt")
    assert len(shared_run_dir_overrides(["stage=sft"], {**SRUN, "SLURM_PROCID": "0"})) == 1
    assert shared_run_dir_overrides(["-m", "stage=sft"], SRUN) == []
    with pytest.raises(SystemExit, match="no job id"):
        shared_run_dir_overrides(["stage=sft"], {"RANK": "1", "WORLD_SIZE": "2"})
    with pytest.raises(SystemExit, match="not an integer"):
        shared_run_dir_overrides(["stage=sft"], {"RANK": "one", "WORLD_SIZE": "2"})


def test_non_contiguous_array_is_refused():
    with pytest.raises(ValueError, match="contiguous"):
        topology({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "2"}).shard()


def test_bad_values_are_refused():
    with pytest.raises(ValueError, match="not an integer"):
        topology({"RANK": "x", "WORLD_SIZE": "2"})
    with pytest.raises(ValueError, match="outside world size"):
        topology({"RANK": "2", "WORLD_SIZE": "2"})


@pytest.mark.parametrize("world", [1, 2, 3, 7])
def test_shards_tile_the_items(world):
    items = [f"id{i:03d}" for i in range(20)]
    shares = [take_shard(items, Shard(r, world, "t")) for r in range(world)]
    flat = [x for s in shares for x in s]
    assert sorted(flat) == items and len(flat) == len(set(flat))


def test_rendezvous_port_fixed_for_launchers_free_from_the_os_otherwise():
    launched, alone, one_task = topology({"RANK": "0", "WORLD_SIZE": "2"}), topology({}), topology(ONE_TASK)
    assert rendezvous_port(launched, 29511, {}) == 29511  # every rank of a torchrun/srun launch agrees on it
    assert rendezvous_port(topology(SRUN), 29511, {}) == 29511
    # Our own processes: not the configured port (below Linux's ephemeral range), even when it is free, so
    # two runs started together cannot both pick it (two one-task SLURM jobs on one node neither).
    for topo in (alone, one_task):
        port = rendezvous_port(topo, 29511, {})
        assert port != 29511
        with socket.socket() as s:  # a port the OS handed out, free at the time
            s.bind(("127.0.0.1", port))
    assert rendezvous_port(alone, 29511, {"MASTER_PORT": str(port)}) == port  # an explicit MASTER_PORT wins


def test_sweep_point_in_a_slurm_array_captions_its_whole_split(prepared, tmp_path):
    """The same rule end to end: a local `-m` caption sweep started as an array task captions every item."""
    import json

    from conftest import run_cli

    env = {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_ARRAY_TASK_MIN": "0",
           "SLURM_ARRAY_JOB_ID": "77"}
    proc = run_cli(["-m", "stage=caption", f"paths.root={prepared['outputs']}", f"hydra.sweep.dir={tmp_path}/sweep",
                    "generation.max_new_tokens=4", "generation.seed=1,2"], cwd=prepared["root"], env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    n_eval = len(list((prepared["data"] / "eval" / "metas").glob("*.label.json")))
    for job in ("0", "1"):
        index = json.loads((tmp_path / "sweep" / job / "captions" / "index.json").read_text())
        assert index["counts"]["done"] == index["counts"]["items"] == n_eval
