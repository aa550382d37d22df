"""Schema of the `parallelism` group: how many processes and how the model state is sharded."""

from dataclasses import dataclass


@dataclass
class ParallelismConfig:
    name: str = "single"
    nnodes: int = 1
    nproc_per_node: int = 1
    # DeepSpeed ZeRO stage 0..3 (0 = plain data parallel).
    zero_stage: int = 0
    offload_optimizer: bool = False
    offload_param: bool = False
    # auto: nccl when CUDA is available, gloo otherwise.
    dist_backend: str = "auto"
    # cosmos-rl's policy mesh (its tp_size default of 2 is overridden on purpose).
    tp_size: int = 1
    dp_shard_size: int = -1  # -1: all ranks of the replica
    # Rendezvous port for ranks started by torchrun / srun (all must agree on it). Processes that cosmos-exp
    # starts itself take a free port from the OS instead, so concurrent runs on one host do not collide.
    master_port: int = 29511
