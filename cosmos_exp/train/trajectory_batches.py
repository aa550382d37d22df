"""A trajectory run's micro-batches: items of a split -> the model's features -> collated batches, in the caption
loader's order (cosmos_exp/data/loader.py: a pure function of seed and step, so a resumed run gets the exact
batches the uninterrupted run had) and through its resumable TrainLoader.

Stage 1 and co-training append the discrete future tokens after the prefix's <|traj_future_start|>, labelled
(cosmos_exp/trajectory/future_tokens.py), and record each prefix's length so co-training can hide them from the
expert; stage 2 keeps the prefix alone.
"""

from typing import Any, Callable, Dict, List, Sequence

from cosmos_exp.config.task import TrajectoryTaskConfig
from cosmos_exp.data.loader import TrainLoader, _Order, step_positions

IGNORE_INDEX = -100
Encode = Callable[[Any, Any], Dict[str, Any]]  # (processor, item) -> encode_trajectory_sample's features


def with_future_tokens(features: Dict[str, Any], offset: int, cfg: TrajectoryTaskConfig,
                       max_length: int) -> Dict[str, Any]:
    """`features` with the 2 T future tokens of its actions appended and labelled (the prefix unlabelled)."""
    import torch

    from cosmos_exp.trajectory.future_tokens import future_token_ids

    prefix = features["input_ids"]
    future = future_token_ids(features["actions"], cfg.action_space, offset).to(prefix.dtype)
    n = prefix.shape[0] + future.shape[0]
    if n > max_length:
        raise ValueError(f"trajectory sample: prefix ({prefix.shape[0]} tokens) + future tokens ({future.shape[0]}) "
                         f"exceed model_max_length={max_length}; use fewer pixels, cameras or frames")
    out = dict(features)
    out["input_ids"] = torch.cat([prefix, future])
    out["attention_mask"] = torch.ones(n, dtype=features["attention_mask"].dtype)
    out["mm_token_type_ids"] = torch.cat([features["mm_token_type_ids"], torch.zeros_like(future)])
    out["labels"] = torch.cat([torch.full_like(prefix, IGNORE_INDEX), future])
    out["prefix_length"] = torch.tensor(prefix.shape[0])
    return out


class TrajectoryBatches:
    """Map-style: item `step` is this rank's collated micro-batch of that step (may run in a loader worker)."""

    def __init__(self, items: Sequence[Any], encode: Encode, processor: Any, cfg: TrajectoryTaskConfig,
                 batch_size: int, seed: int, rank: int, world_size: int) -> None:
        from cosmos_exp.trajectory.future_tokens import future_token_offset

        if not items:
            raise ValueError("no trajectory items to train on")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.items, self.encode, self.processor, self.cfg = items, encode, processor, cfg
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size
        self.order = _Order(len(items), seed)
        self.with_future = cfg.stage in ("stage1", "cotrain")
        self.offset = future_token_offset(processor.tokenizer, cfg.action_space) if self.with_future else 0
        self.memo: Dict[int, Dict[str, Any]] = {}  # item index -> features, up to cfg.sample_memory_mib
        self.memo_bytes = 0

    def features(self, item: Any) -> Dict[str, Any]:
        f = self.encode(self.processor, item)
        if "actions" not in f:
            raise ValueError("a trajectory training item has no future (its features lack `actions`)")
        if self.with_future:
            f = with_future_tokens(f, self.offset, self.cfg, self.processor.model_max_length)
        return f

    def remembered(self, index: int) -> Dict[str, Any]:
        """Features of item `index`, from memory when there (the encoding is deterministic; collate copies)."""
        if index in self.memo:
            return self.memo[index]
        f = self.features(self.items[index])
        size = sum(v.numel() * v.element_size() for v in f.values() if hasattr(v, "element_size"))
        if self.memo_bytes + size <= self.cfg.sample_memory_mib * 2**20:
            self.memo[index] = f
            self.memo_bytes += size
        return f

    def __getitem__(self, step: int) -> Dict[str, Any]:
        import torch

        from cosmos_exp.data.trajectory_sample import collate_trajectory

        positions = step_positions(step, len(self.items), self.batch_size, self.rank, self.world_size)
        features = [self.remembered(self.order[p]) for p in positions]
        batch = collate_trajectory(self.processor, features)
        if self.with_future:
            batch["prefix_length"] = torch.stack([f["prefix_length"] for f in features])
        return batch

    def __len__(self) -> int:  # endless, as the caption loader's; the loop decides when to stop
        return 2**62


def trajectory_loader(items: Sequence[Any], encode: Encode, processor: Any, cfg: TrajectoryTaskConfig,
                      batch_size: int, seed: int, rank: int, world_size: int, num_workers: int,
                      start_step: int = 0) -> TrainLoader:
    batches = TrajectoryBatches(items, encode, processor, cfg, batch_size, seed, rank, world_size)
    return TrainLoader(batches, num_workers, start_step)


def first_batches(loader: TrainLoader, n: int) -> List[Dict[str, Any]]:
    """The loader's first n batches (fixed held-out batches), read in this process."""
    return [loader.dataset[step] for step in range(n)]
