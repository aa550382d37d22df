"""Supervised fine-tuning on DeepSpeed: the whole loop, readable top to bottom.

    train(cfg, run_dir, task=None) -> dict

runs in every rank process (started by stages/sft.py through runtime/, by torchrun, or as a SLURM task):
 1. join the process group (gloo on CPU, nccl on GPU), seed;
 2. data: what the task (cfg.task: captions or the trajectory model, train/task.py) reads: our processor,
    the train split, a few held-out batches for the validation loss;
 3. model: the task's module (the Hugging Face model, or the trajectory model with its stage's loss) with its
    frozen parameters, AdamW groups + schedule, wrapped in a DeepSpeed engine configured from `parallelism`;
 4. resume from the newest complete checkpoint (weights, optimizer, scheduler, RNG, data position);
 5. the loop: micro-batches -> forward/backward -> engine.step() at the accumulation boundary,
    metrics, validation loss every `eval_every`, a checkpoint every `save_every` or on SIGTERM/SIGUSR1/SIGUSR2
    (after which submitit, whose pre-timeout signal SIGUSR2 is, requeues the job: train/signals.py).
    One optimiser step is `_optimizer_step`; what it adds up, summed over the ranks, is a `StepSums`.
The task is the only thing that differs between captions and trajectories: data, module, what the loss is
averaged over, and the model files of a checkpoint.
"""

import logging
import random
import resource
import time
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from cosmos_exp.config.schema import Config
from cosmos_exp.config.train import training_seed
from cosmos_exp import rundir
from cosmos_exp.repro.atomic import write_json_atomic
from cosmos_exp.train import checkpoint as ckpt
from cosmos_exp.train import data as train_data
from cosmos_exp.runtime.rendezvous import export_torch_env, rendezvous_port
from cosmos_exp.runtime.topology import topology
from cosmos_exp.train.ds_config import deepspeed_config, grad_accumulation
from cosmos_exp.train.metrics import MetricsLogger
from cosmos_exp.train.optim import build_optimizer
from cosmos_exp.train.schedule import build_scheduler
from cosmos_exp.train.signals import StopRequest, TrainingInterrupted

log = logging.getLogger("cosmos_exp.train")


def train(cfg: Config, run_dir: Path, task: Any = None) -> Dict[str, Any]:
    """`task` defaults to build_task(cfg); pass one to train on samples held in memory (tests, notebooks)."""
    import deepspeed
    import torch
    import torch.distributed as dist

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    stop = StopRequest().install()

    # 1. Processes and seeds. -------------------------------------------------------------------
    topo = topology()
    rank, world = topo.rank, topo.world_size
    on_gpu = torch.cuda.is_available()
    device = torch.device("cuda", topo.local_rank) if on_gpu else torch.device("cpu")
    if on_gpu:
        torch.cuda.set_device(device)
    port = rendezvous_port(topo, cfg.parallelism.master_port)
    export_torch_env(topo, port)
    # The shared-memory op would be compiled on first use (~67 s); gloo does not need it.
    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
    backend = cfg.parallelism.dist_backend if cfg.parallelism.dist_backend != "auto" else ("nccl" if on_gpu else "gloo")
    deepspeed.init_distributed(dist_backend=backend)
    _seed_everything(training_seed(cfg.train, cfg.seed))
    is_main = rank == 0
    if is_main:
        removed = ckpt.clean_temp_dirs(run_dir)
        if removed:
            log.warning("removed half-written checkpoints of an interrupted run: %s", removed)

    # 2. Data. ------------------------------------------------------------------------------------
    task = task if task is not None else build_task(cfg)
    data = task.load_data(rank, world)
    held_out = data.held_out
    accum = grad_accumulation(cfg.train, world)
    total = train_data.total_steps(cfg.train, len(data.train), world, accum)

    # 3. Model, optimiser, schedule, engine. -------------------------------------------------------
    model, frozen = task.build_model(on_gpu)
    optimizer = build_optimizer(model, cfg.train, fused=on_gpu)
    scheduler = build_scheduler(optimizer, cfg.train, total)
    ds_config = deepspeed_config(cfg.parallelism, cfg.train, world, on_gpu)
    engine, optimizer, _, scheduler = deepspeed.initialize(
        model=model, optimizer=optimizer, lr_scheduler=scheduler, config=ds_config)
    n_params = sum(p.numel() for p in model.parameters())
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    # 4. Resume. -----------------------------------------------------------------------------------
    start_step = 0
    resume_from = ckpt.resume_target(run_dir, cfg.train.resume, requeued=topo.restart_count > 0)
    if resume_from is not None:
        start_step = _load_checkpoint(engine, resume_from, rank, world)
    stream = task.train_stream(data, rank, world, start_step * accum)
    batches = train_data.forever(stream)

    logger = MetricsLogger(run_dir, list(cfg.train.loggers), total, start_step, cfg.train.wandb_project,
                           run_name=run_dir.name, config=_plain(cfg), enabled=is_main)
    if is_main:
        write_json_atomic(run_dir / rundir.DATA_REPORT, data.report.to_dict())
        if data.videos:
            train_data.record_fingerprints(cfg, run_dir, data.videos)
    logger.message(f"sft ({cfg.task.name}): {data.report.summary()}; "
                   f"{world} process(es), ZeRO-{cfg.parallelism.zero_stage}, grad accumulation {accum}, "
                   f"{total} steps, {n_trainable:,}/{n_params:,} trainable parameters"
                   + (f", {len(frozen)} frozen tensors" if frozen else "")
                   + (f"; resumed from {resume_from} at step {start_step}" if resume_from else ""))

    # 5. The loop. ---------------------------------------------------------------------------------
    last_saved: Optional[int] = start_step if resume_from is not None else None
    eval_loss: Optional[float] = None
    step = start_step
    engine.train()
    t_run = time.perf_counter()
    try:
        for step in range(start_step + 1, total + 1):
            t_step = time.perf_counter()
            lr = _current_lr(scheduler, cfg.train.lr)
            t_data = time.perf_counter()
            micro_batches = [next(batches) for _ in range(accum)]
            data_wait = time.perf_counter() - t_data
            sums, grad_norm = _optimizer_step(engine, micro_batches, task.loss_units, device, world,
                                              cfg.parallelism.zero_stage)
            sums.stop_requests = 1.0 if stop.requested else 0.0
            sums.requeue_requests = 1.0 if stop.requeue_requested else 0.0
            sums = sums.all_reduced(device)  # from here on: the whole global batch, every rank the same
            step_time = time.perf_counter() - t_step

            metrics = {
                "loss": sums.loss,
                "lr": lr,
                "grad_norm": grad_norm if grad_norm is not None else _grad_norm(engine),
                "tokens_per_s": sums.tokens / step_time,
                "samples_per_s": sums.samples / step_time,
                "step_time_s": step_time,
                "data_wait_s": data_wait,
                "memory_gb": _memory_gb(on_gpu),
                "elapsed_s": time.perf_counter() - t_run,  # since this process started its loop
                "epoch": step / max(1, train_data.steps_per_epoch(len(data.train), cfg.train.micro_batch_size,
                                                                  world, accum)),
            }
            if cfg.train.eval_every and held_out and (step % cfg.train.eval_every == 0 or step == total):
                eval_loss = _validation_loss(engine, held_out, task.loss_units, device)
                metrics["eval_loss"] = eval_loss
            if step % cfg.train.log_every == 0 or step == total or "eval_loss" in metrics:
                logger.log(step, metrics)

            stop_now = sums.stop_requests > 0  # any rank: they all save this step, then all stop
            if step % cfg.train.save_every == 0 or step == total or stop_now:
                path = _save_checkpoint(engine, task, run_dir, step, rank, cfg, stream)
                last_saved = step
                logger.message(f"checkpoint: {path}")
            if stop_now:
                logger.message(f"stop signal {stop.name or 'on another rank'}: checkpoint at step {step} written")
                if sums.requeue_requests > 0:  # any rank: task 0 is the one whose submitit handler requeues
                    stop.requeue_after_checkpoint()
                raise TrainingInterrupted(f"stopped by {stop.name or 'signal'} after step {step}; "
                                          f"resume with train.resume=auto in {run_dir}")
    finally:
        logger.close()
        stop.restore()
        train_data._close(stream)

    result = {
        "steps": total,
        "start_step": start_step,
        "world_size": world,
        "zero_stage": int(cfg.parallelism.zero_stage),
        "final_loss": metrics["loss"] if total > start_step else None,
        "final_eval_loss": eval_loss,
        "last_checkpoint": str(rundir.step_dir(run_dir, last_saved)) if last_saved else None,
        "train_samples": len(data.train),
        "task": cfg.task.name,
        "trainable_parameters": n_trainable,
    }
    if is_main:
        write_json_atomic(run_dir / rundir.TRAIN_RESULT, result)
    dist.barrier()
    return result


# -- one optimiser step ----------------------------------------------------------------------------


@dataclass
class StepSums:
    """What one optimiser step adds up on a rank; all_reduced() sums each field over the ranks."""

    loss_sum: float = 0.0  # per-token loss x answer tokens, over the micro-batches
    answer_tokens: float = 0.0  # the tokens the loss is computed on (the task's loss_units)
    tokens: float = 0.0  # every (unpadded) token: throughput
    samples: float = 0.0
    stop_requests: float = 0.0  # ranks that received a stop signal
    requeue_requests: float = 0.0  # ranks that received submitit's pre-timeout signal (SIGUSR2)

    @property
    def loss(self) -> float:
        """The mean over the answer tokens (of the global batch, once all-reduced)."""
        return self.loss_sum / max(self.answer_tokens, 1.0)

    def all_reduced(self, device: Any) -> "StepSums":
        import torch

        return StepSums(*_all_reduce_sum(torch.tensor(astuple(self), dtype=torch.float64), device).tolist())


def _optimizer_step(engine: Any, micro_batches: List[Dict[str, Any]], loss_units: Callable[[Dict[str, Any]], int],
                    device: Any, world: int, zero_stage: int) -> Tuple[StepSums, Optional[float]]:
    """Forward and backward over this rank's micro-batches of one step; DeepSpeed updates the weights at the
    last one (the accumulation boundary). `loss_units(batch)`: what the batch's mean loss is over (answer
    tokens). Returns this rank's sums and, under ZeRO-0, the gradient norm."""
    import torch

    accum = len(micro_batches)
    sums, grad_norm = StepSums(), None
    # Every answer token of the global batch weighs the same, however the answers fall into
    # micro-batches and ranks (Hugging Face's mean per micro-batch would over-weight short answers).
    answer_tokens = [loss_units(b) for b in micro_batches]
    global_tokens = float(_all_reduce_sum(torch.tensor([float(sum(answer_tokens))], dtype=torch.float64),
                                          device)[0])
    for batch, n_answer in zip(micro_batches, answer_tokens):
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        mean_loss = engine(**batch).loss
        if n_answer == 0:  # nothing to learn here (the mean is NaN); keep the accumulation count
            mean_loss = mean_loss.nan_to_num(0.0) * 0.0
        # DeepSpeed divides by `accum` and averages over ranks; undo both so the sum is over tokens.
        engine.backward(mean_loss * (n_answer * accum * world / max(global_tokens, 1.0)))
        if zero_stage == 0 and engine.is_gradient_accumulation_boundary():
            grad_norm = _local_grad_norm(engine.module)  # ZeRO-0 does not record it
        engine.step()  # updates weights only at the accumulation boundary
        sums.loss_sum += mean_loss.item() * n_answer
        sums.answer_tokens += float(n_answer)
        sums.tokens += float(batch["attention_mask"].sum())
        sums.samples += float(batch["input_ids"].shape[0])
    return sums, grad_norm


# -- helpers used above, in the order they appear ---------------------------------------------------


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_task(cfg: Config) -> Any:
    """What cfg.task trains (train/task.py): the one place the loop branches on it."""
    if cfg.task.kind == "trajectory":
        from cosmos_exp.train.trajectory_task import TrajectoryTask

        return TrajectoryTask(cfg)
    from cosmos_exp.train.caption_task import CaptionTask

    return CaptionTask(cfg)


def _plain(cfg: Config) -> Dict[str, Any]:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)


def _all_reduce_sum(t: Any, device: Any) -> Any:
    import torch.distributed as dist

    moved = t.to(device)
    dist.all_reduce(moved, op=dist.ReduceOp.SUM)
    return moved.cpu()


def _current_lr(scheduler: Any, base_lr: float) -> float:
    """The lr of an unscaled (scale 1.0) group for the coming optimiser step."""
    if scheduler is None:
        return float(base_lr)
    return float(base_lr) * scheduler.get_last_lr()[0] / scheduler.base_lrs[0]


def _local_grad_norm(module: Any) -> Optional[float]:
    """Gradient norm before clipping, when gradients live on the parameters (ZeRO-0, full replicas)."""
    import torch

    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return None
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads])))


def _grad_norm(engine: Any) -> float:
    norm = engine.get_global_grad_norm()
    if norm is None:
        return float("nan")
    return float(norm.item() if hasattr(norm, "item") else norm)


def _memory_gb(on_gpu: bool) -> float:
    if on_gpu:
        import torch

        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def _validation_loss(engine: Any, batches: List[Dict[str, Any]], loss_units: Callable[[Dict[str, Any]], int],
                     device: Any) -> float:
    """Held-out loss per answer token over the fixed eval batches of all ranks."""
    import torch

    engine.eval()
    loss_sum, answer_tokens = 0.0, 0.0
    with torch.no_grad():
        for batch in batches:
            n_answer = loss_units(batch)
            if n_answer:
                batch = {k: v.to(device) for k, v in batch.items()}
                loss_sum += engine(**batch).loss.item() * n_answer
                answer_tokens += n_answer
    engine.train()
    loss_sum, answer_tokens = _all_reduce_sum(torch.tensor([loss_sum, answer_tokens], dtype=torch.float64),
                                              device).tolist()
    return loss_sum / max(answer_tokens, 1.0)


def _rng_state() -> Dict[str, Any]:
    import numpy as np
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(state: Dict[str, Any]) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _save_checkpoint(engine: Any, task: Any, run_dir: Path, step: int, rank: int, cfg: Config,
                     stream: Any) -> Path:
    """Every rank writes its part into .tmp_step_N; rank 0 adds the task's model files and publishes step_N."""
    import shutil

    import torch
    import torch.distributed as dist

    tmp = rundir.temp_step_dir(run_dir, step)
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    dist.barrier()
    # DeepSpeed state: optimizer partitions, scheduler, its own module copy (collective).
    engine.save_checkpoint(str(tmp), tag=ckpt.STATE_DIR, client_state={"step": step}, save_latest=False)
    loader_state = stream.state_dict() if hasattr(stream, "state_dict") else None
    torch.save({"step": step, "rng": _rng_state(), "loader": loader_state}, tmp / ckpt.state_file(rank))
    # The model's files (Hugging Face, + action_expert/ for trajectories): under ZeRO-3 the full weights are
    # gathered to rank 0 (collective).
    full_state = engine._zero3_consolidated_16bit_state_dict() if cfg.parallelism.zero_stage == 3 else None
    if rank == 0:
        task.write_model(engine.module, tmp, full_state)
    dist.barrier()
    final = rundir.step_dir(run_dir, step)
    if rank == 0:
        ckpt.publish(run_dir, step, {"world_size": dist.get_world_size(), "zero_stage": cfg.parallelism.zero_stage,
                                     "model_family": cfg.model.family, "source_model": str(cfg.model.path),
                                     "task": cfg.task.name})
        pruned = ckpt.apply_retention(run_dir, cfg.train.keep_last_states, cfg.train.keep_last_exports)
        if pruned["states"] or pruned["checkpoints"]:
            log.info("retention: training states pruned from %s, checkpoints removed: %s",
                     pruned["states"] or "none", pruned["checkpoints"] or "none")
    dist.barrier()
    return final


def _load_checkpoint(engine: Any, path: Path, rank: int, world: int) -> int:
    """Restore weights, optimizer, scheduler (DeepSpeed) and this rank's RNG; returns the step."""
    import torch

    info = rundir.read_checkpoint_info(path)
    if info.get("world_size") not in (None, world):
        raise ValueError(f"{path} was written by {info['world_size']} processes; resume with the same "
                         f"parallelism (this run has WORLD_SIZE={world})")
    loaded, client = engine.load_checkpoint(str(path), tag=ckpt.STATE_DIR, load_optimizer_states=True,
                                            load_lr_scheduler_states=True)
    if loaded is None:
        raise FileNotFoundError(f"{path}/{ckpt.STATE_DIR}: DeepSpeed found no state to resume from")
    state = torch.load(path / ckpt.state_file(rank), weights_only=False)
    _set_rng_state(state["rng"])
    return int(state["step"])
