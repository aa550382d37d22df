"""One meaning of batch size on every backend: `train.global_batch_size` is the number of samples per optimizer
step over all data-parallel ranks; `train.micro_batch_size` is the samples one rank puts through one forward pass.

The DeepSpeed loop takes them as they are (train_batch_size, train_micro_batch_size_per_gpu). cosmos-rl's
`train_batch_per_replica` is per data-parallel rank (each rank's DataLoader over a DistributedSampler), cut into
`mini_batch`-sized passes before one optimizer step, so it gets global / data-parallel ranks. Sizes that do not
divide are refused, never rounded: the same config trains the same amount per step on either backend.
"""

from dataclasses import dataclass

from cosmos_exp.config.errors import ConfigError
from cosmos_exp.config.schema import Config


@dataclass(frozen=True)
class BatchLayout:
    global_batch: int  # samples per optimizer step, all ranks together
    dp_ranks: int  # processes that see different samples
    micro_batch: int  # samples per forward pass on one rank
    per_rank: int  # samples per optimizer step on one rank (cosmos-rl's train_batch_per_replica)
    accumulation: int  # forward/backward passes per optimizer step on one rank

    def describe(self) -> str:
        return (f"{self.global_batch} samples per optimizer step = {self.dp_ranks} data-parallel rank(s) x "
                f"{self.micro_batch} per micro-batch x {self.accumulation} accumulation step(s)")


def split_batch(global_batch: int, dp_ranks: int, micro_batch: int, ranks_from: str = "the world size") -> BatchLayout:
    """The layout of `global_batch` over `dp_ranks` ranks in passes of `micro_batch`; a ConfigError naming the
    keys when it does not divide (`ranks_from` says where the rank count comes from)."""
    if micro_batch < 1:
        raise ConfigError("train.micro_batch_size", f"must be >= 1, got {micro_batch}")
    per_pass = micro_batch * dp_ranks
    if global_batch < 1 or global_batch % per_pass:
        lower = max(per_pass, global_batch // per_pass * per_pass)
        options = sorted({lower, lower + per_pass} if global_batch % per_pass else {per_pass})
        raise ConfigError("train.global_batch_size",
                          f"{global_batch} samples per optimizer step do not split evenly over {dp_ranks} "
                          f"data-parallel rank(s) ({ranks_from}) in micro-batches of train.micro_batch_size="
                          f"{micro_batch}: it must be a multiple of {per_pass}",
                          "e.g. " + " or ".join(f"train.global_batch_size={n}" for n in options) +
                          ", or change train.micro_batch_size")
    return BatchLayout(global_batch, dp_ranks, micro_batch, global_batch // dp_ranks, global_batch // per_pass)


def data_parallel_ranks(cfg: Config) -> int:
    """Processes that see different samples: every process on our loop; cosmos-rl's tensor-parallel groups
    share theirs, so its data-parallel ranks are world / tp_size (dp_shard_size x dp_replicate_size)."""
    p = cfg.parallelism
    world = int(p.nnodes) * int(p.nproc_per_node)
    return world // int(p.tp_size) if cfg.backend.name == "cosmos_rl" else world


def batch_layout(cfg: Config) -> BatchLayout:
    """This config's layout; a ConfigError naming the keys when the sizes do not divide."""
    ranks_from = "parallelism.nnodes x nproc_per_node" + (" / tp_size" if cfg.backend.name == "cosmos_rl" else "")
    return split_batch(int(cfg.train.global_batch_size), data_parallel_ranks(cfg), int(cfg.train.micro_batch_size),
                       ranks_from)
