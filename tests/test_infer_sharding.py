import subprocess
import sys

import pytest

from cosmos_exp.infer.launch import ShardFailed, launch_workers
from cosmos_exp.infer.sharding import Shard, shard_from_env, take_shard


def test_single_process_default():
    assert shard_from_env({}) == Shard(0, 1, "single")


def test_torchrun_wins_over_slurm_procid():
    env = {"RANK": "3", "WORLD_SIZE": "4", "SLURM_PROCID": "0", "SLURM_NTASKS": "1"}
    assert shard_from_env(env) == Shard(3, 4, "torchrun")


def test_srun_tasks():
    assert shard_from_env({"SLURM_PROCID": "1", "SLURM_NTASKS": "2"}) == Shard(1, 2, "slurm")


def test_array_tasks_offset_by_min_and_combined_with_procs():
    env = {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "1",
           "SLURM_PROCID": "1", "SLURM_NTASKS": "2"}
    assert shard_from_env(env) == Shard(5, 6, "slurm+slurm_array")


def test_non_contiguous_array_is_refused():
    with pytest.raises(ValueError, match="contiguous"):
        shard_from_env({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "2"})


def test_bad_values_are_refused():
    with pytest.raises(ValueError, match="not an integer"):
        shard_from_env({"RANK": "x", "WORLD_SIZE": "2"})
    with pytest.raises(ValueError, match="outside world size"):
        shard_from_env({"RANK": "2", "WORLD_SIZE": "2"})


@pytest.mark.parametrize("world", [1, 2, 3, 7])
def test_shards_tile_the_items(world):
    items = [f"id{i:03d}" for i in range(20)]
    shares = [take_shard(items, Shard(r, world, "t")) for r in range(world)]
    flat = [x for s in shares for x in s]
    assert sorted(flat) == items and len(flat) == len(set(flat))


def _script(tmp_path, body):
    path = tmp_path / "worker.py"
    path.write_text(body)
    return [sys.executable, str(path)]


def test_launch_sets_ranks_and_succeeds(tmp_path):
    argv = _script(tmp_path, "import os, pathlib\n"
                   f"pathlib.Path({str(tmp_path)!r}, 'r' + os.environ['RANK'] + '_of_' + os.environ['WORLD_SIZE']).touch()\n")
    results = launch_workers(argv, 3, tmp_path / "logs", poll_s=0.05)
    assert [r.returncode for r in results] == [0, 0, 0]
    assert sorted(p.name for p in tmp_path.glob("r*_of_3")) == ["r0_of_3", "r1_of_3", "r2_of_3"]


def test_launch_propagates_the_failing_shards_error(tmp_path):
    argv = _script(tmp_path, "import os, sys\n"
                   "if os.environ['RANK'] == '1':\n"
                   "    raise RuntimeError('video shard exploded on item abc')\n"
                   "print('fine')\n")
    with pytest.raises(ShardFailed) as info:
        launch_workers(argv, 2, tmp_path / "logs", poll_s=0.05)
    message = str(info.value)
    assert "rank 1 exited with status 1" in message
    assert "video shard exploded on item abc" in message
    assert "rank 0" not in message


def test_sweep_point_in_a_slurm_array_captions_its_whole_split(prepared, tmp_path):
    """hydra-submitit gives each sweep point an array task id: that is a configuration, not a share."""
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
