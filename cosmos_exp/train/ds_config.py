"""The DeepSpeed engine configuration, derived from the `parallelism` and `train` config nodes."""

from typing import Any, Dict

from cosmos_exp.config.batch import split_batch
from cosmos_exp.config.train import TrainConfig
from cosmos_exp.config.parallel import ParallelismConfig


def grad_accumulation(train: TrainConfig, world_size: int) -> int:
    """Micro-batches per optimizer step on each rank (every rank of our loop is a data-parallel one)."""
    return split_batch(int(train.global_batch_size), world_size, int(train.micro_batch_size)).accumulation


def deepspeed_config(parallelism: ParallelismConfig, train: TrainConfig, world_size: int, on_gpu: bool) -> Dict[str, Any]:
    """ZeRO stage and offload from `parallelism`; batch sizes, accumulation and clipping from `train`.

    bf16 on GPU, fp32 on CPU (CPU bf16 is slow and would break the exact-resume guarantee).
    Our optimiser is a plain torch AdamW handed to DeepSpeed, hence the two "allow" switches.
    """
    zero: Dict[str, Any] = {"stage": int(parallelism.zero_stage)}
    if parallelism.zero_stage >= 1:
        zero.update(contiguous_gradients=True, overlap_comm=on_gpu)
    if parallelism.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": on_gpu}
    if parallelism.offload_param:
        zero["offload_param"] = {"device": "cpu", "pin_memory": on_gpu}
    if parallelism.zero_stage == 3:
        # Lets rank 0 gather the full weights for the Hugging Face part of each checkpoint.
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    return {
        "train_batch_size": int(train.global_batch_size),
        "train_micro_batch_size_per_gpu": int(train.micro_batch_size),
        "gradient_accumulation_steps": grad_accumulation(train, world_size),
        "gradient_clipping": float(train.grad_clip) if train.grad_clip else 0.0,
        "bf16": {"enabled": bool(on_gpu)},
        "fp16": {"enabled": False},
        "zero_optimization": zero,
        "zero_allow_untested_optimizer": True,
        "zero_force_ds_cpu_optimizer": False,
        "steps_per_print": 10**9,  # we log ourselves
        "wall_clock_breakdown": False,
    }
