"""stage=sft backend=deepspeed: plan (cheap, no torch) and run (launch ranks or train in-process)."""

from pathlib import Path
from typing import Any, Dict


from cosmos_exp.config.schema import Config
from cosmos_exp.config import ConfigError
from cosmos_exp.config.batch import batch_layout
from cosmos_exp.plan import Plan
from cosmos_exp import rundir
from cosmos_exp.runtime.launcher import FAIL_FAST, LaunchInterrupted, RanksFailed
from cosmos_exp.runtime.rendezvous import lone_process, rendezvous_port
from cosmos_exp.runtime.topology import topology
from cosmos_exp.worker import EXIT_INTERRUPTED, start_ranks, worker_argv
from cosmos_exp.train.checkpoint import retention_note
from cosmos_exp.train.data import order_note
from cosmos_exp.train.signals import TrainingInterrupted


def _world(cfg: Config) -> int:
    return int(cfg.parallelism.nnodes * cfg.parallelism.nproc_per_node)


def _count(cfg: Config, split: str) -> int:
    """The data package's cheap item count (no decoding; driving clips too)."""
    from cosmos_exp.data.datasets import count_items

    return count_items(cfg.dataset, split)


def plan(cfg: Config) -> Plan:
    p = Plan(stage="sft")
    world = _world(cfg)
    in_launch = topology().in_launch
    if cfg.parallelism.nnodes > 1 and not in_launch:
        raise ConfigError("parallelism.nnodes", f"nnodes={cfg.parallelism.nnodes} needs an external launcher",
                          "start one task per GPU with srun (hydra/launcher=slurm) or torchrun on every node")
    if cfg.task.kind == "trajectory":
        from cosmos_exp.train.trajectory_task import check_checkpoint

        check_checkpoint(cfg)
        p.notes.append(f"task {cfg.task.name}: trajectory {cfg.task.trajectory.stage} (cosmos_exp/train/trajectory_task.py)")
    n_train = _count(cfg, cfg.dataset.train_split)
    if n_train == 0:
        raise ConfigError("dataset.root", f"no training items under {cfg.dataset.root}/{cfg.dataset.train_split}",
                          "generate or point at a dataset with items")
    p.add_input("model", str(cfg.model.path))
    p.add_input(f"train items ({cfg.dataset.train_split})", str(cfg.dataset.root), n_train)
    if cfg.train.eval_every:
        p.add_input(f"held-out items ({cfg.dataset.eval_split})", str(cfg.dataset.root), _count(cfg, cfg.dataset.eval_split))
    batch = batch_layout(cfg)
    accum = batch.accumulation
    if cfg.train.max_steps is not None:
        total = int(cfg.train.max_steps)
    elif n_train is not None:
        from cosmos_exp.train.data import total_steps

        total = total_steps(cfg.train, n_train, world, accum)
    else:
        total = None
    if total is not None:
        steps = sorted({s for s in range(cfg.train.save_every, total + 1, cfg.train.save_every)} | {total})
        t = cfg.train
        exports = steps if t.keep_last_exports is None else steps[-t.keep_last_exports:]
        states = steps if t.keep_last_states is None else steps[-t.keep_last_states:]
        kept = sorted(set(exports) | set(states))
        p.outputs += [f"{rundir.CHECKPOINTS_DIR}/step_{s}/" + ("" if s in states else " (export only)") for s in kept]
    p.notes.append(retention_note(cfg.train))
    p.outputs += [f"{rundir.CHECKPOINTS_DIR}/{rundir.LATEST}", rundir.METRICS_JSONL, rundir.TRAIN_RESULT]
    if in_launch:
        p.notes.append("inside a launcher: this process is one rank and trains in place")
    elif world > 1:
        p.commands += [worker_argv(Path("<run_dir>"), "sft")] * world
        p.notes.append(f"{world} worker processes (RANK 0..{world - 1}, MASTER_PORT={cfg.parallelism.master_port})")
    p.notes.append(batch.describe())
    p.notes.append(order_note(cfg))
    if cfg.task.kind != "trajectory":  # trajectory samples are a few still images, not decoded clips
        from cosmos_exp.data.feed import data_feed_note

        p.notes.append(data_feed_note(cfg, batch.global_batch))
    p.notes.append(f"{world} process(es), ZeRO-{cfg.parallelism.zero_stage}, "
                   f"{total if total is not None else '?'} optimiser steps, resume={cfg.train.resume}")
    return p


def run(cfg: Config, run_dir: Path) -> Dict[str, Any]:
    """One rank of a launch trains in place, so does a lone process; otherwise start the ranks on this node."""
    run_dir = Path(run_dir)
    world = _world(cfg)
    topo = topology()
    if topo.in_launch or world == 1:
        from cosmos_exp.train.deepspeed_loop import train

        if topo.in_launch:
            return train(cfg, run_dir)
        with lone_process():
            return train(cfg, run_dir)
    port = rendezvous_port(topo, cfg.parallelism.master_port)  # not a rank of a launch: a free port of the OS's
    try:
        start_ranks(run_dir, "sft", world, policy=FAIL_FAST, console_rank0=True, master_port=port)
    except LaunchInterrupted as err:
        raise TrainingInterrupted(str(err)) from None
    except RanksFailed as err:
        if any(r.returncode == EXIT_INTERRUPTED for r in err.failed):  # a rank stopped by a signal sent to it
            raise TrainingInterrupted(str(err)) from None
        raise
    return rundir.read_json(run_dir / rundir.TRAIN_RESULT)

