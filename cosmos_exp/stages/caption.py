"""stage=caption: answer every item of a dataset split with one checkpoint, batched and resumable.

    cosmos-exp stage=caption model.path=<checkpoint or HF dir> dataset=<eval set>

The generation is infer/caption.py's. parallelism.nproc_per_node > 1 starts one rank per device
(runtime/launcher.py, each running cosmos_exp/worker.py); under torchrun or SLURM each process answers its own
share (runtime/topology.py). A rerun into the same directory (generation.output_dir=<earlier run>) skips
finished items.
"""

import json
import logging
from pathlib import Path
from typing import Any, Dict

from cosmos_exp import rundir
from cosmos_exp.config import Config, ConfigError
from cosmos_exp.data.datasets import count_items
from cosmos_exp.infer.caption import (RAW_DIR, captions_root, check_engine_installed, check_resumable, eval_split,
                                      generation_settings, run_shard)
from cosmos_exp.infer.checkpoint import inspect_checkpoint
from cosmos_exp.plan import Plan
from cosmos_exp.runtime.launcher import RUN_TO_END, RanksFailed
from cosmos_exp.runtime.topology import sweep_point_is_one_unit, topology
from cosmos_exp.worker import start_ranks, worker_argv

log = logging.getLogger("cosmos_exp.caption")


def plan(cfg: Config) -> Plan:
    check_engine_installed(cfg)
    info = inspect_checkpoint(cfg.model.path)
    split = eval_split(cfg)
    count, where = count_items(cfg.dataset, split), f"{cfg.dataset.root}/{split}"
    if count == 0:
        raise ConfigError("generation.split", f"dataset '{cfg.dataset.name}' has no items in split '{split}' "
                          f"(looked in {where})", "check dataset.root and generation.split")
    if count is not None and cfg.generation.max_items is not None:
        count = min(count, cfg.generation.max_items)
    if cfg.generation.output_dir:
        check_resumable(cfg, Path(cfg.generation.output_dir), info.path)
    p = Plan(stage="caption")
    p.add_input(f"checkpoint (model_type={info.model_type}, {info.num_weight_files} weight files)", info.path)
    p.add_input(f"items of dataset '{cfg.dataset.name}' split '{split}' (kind {cfg.dataset.kind})", where, count)
    out = cfg.generation.output_dir or "."
    p.outputs += [f"{out}/captions/<id>.json", f"{out}/captions/index.json"]
    if cfg.generation.cookbook_raw:
        p.outputs.append(f"{out}/{RAW_DIR}/<id>.txt")
    nproc = cfg.parallelism.nproc_per_node
    try:
        topo = topology()
        shard = topo.shard()
    except ValueError as exc:
        raise ConfigError("parallelism.nproc_per_node", str(exc)) from None
    if nproc > 1 and not topo.in_launch:
        p.commands.append(worker_argv(Path("<run_dir>"), "caption"))
        p.notes.append(f"{nproc} worker processes (RANK 0..{nproc - 1}), one device each")
    if shard.world_size > 1:
        p.notes.append(f"this process is rank {shard.rank} of {shard.world_size} ({shard.source})")
    p.notes.append("generation: " + json.dumps(generation_settings(cfg), sort_keys=True))
    p.notes.append("existing outputs are " + ("regenerated (force=true)" if cfg.generation.force else "skipped"))
    if cfg.generation.engine == "vllm":
        p.notes.append("vllm engine: needs the vllm package and a CUDA device (untested in CI)")
    return p


def run(cfg: Config, run_dir: Path) -> Dict[str, Any]:
    check_engine_installed(cfg)
    info = inspect_checkpoint(cfg.model.path)
    root = captions_root(cfg, Path(run_dir))
    nproc = cfg.parallelism.nproc_per_node
    with sweep_point_is_one_unit():
        topo = topology()  # a one-task SLURM array job starts its own ranks too: their shares nest in its task's
        if nproc > 1 and not topo.in_launch:
            return _run_workers(Path(run_dir), root, nproc)
        return run_shard(cfg, root, topo.shard(), info)


def _run_workers(run_dir: Path, root: Path, nproc: int) -> Dict[str, Any]:
    """One rank per device, each reading the run directory's resolved.yaml; all run to their end."""
    try:
        start_ranks(run_dir, "caption", nproc, *([] if root == run_dir else [str(root)]),
                    policy=RUN_TO_END, one_device_each=True)
    except RanksFailed:
        log.error("caption shards failed; finished items are kept, a rerun does the rest")
        raise
    index = rundir.read_json(rundir.captions_index(root))
    return {"captions_dir": str(rundir.captions_dir(root)), "checkpoint": index["checkpoint"], **index["counts"]}


