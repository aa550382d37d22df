"""The training loop's view of the data package: samples, processor, batch streams, step counts."""

import math
from typing import Any, Dict, Iterator, List, Tuple

from cosmos_exp.config.train import TrainConfig, training_seed
from cosmos_exp.config.schema import Config


def load_processor(cfg: Config):
    from cosmos_exp.data.processor import load_processor as load

    return load(cfg.model, cfg.clip_cache)


def record_fingerprints(cfg: Config, run_dir: Any, videos: Dict[str, List[str]]) -> None:
    """data_fingerprints.json for the clips of each split (hashes shared with the clip cache's index)."""
    from cosmos_exp.data.content_hash import hashes_of
    from cosmos_exp.repro.data_fingerprint import write_fingerprints

    write_fingerprints(run_dir, videos, hashes_of(cfg.clip_cache))


def load_split(cfg: Config, split: str) -> Tuple[list, Any]:
    from cosmos_exp.data.datasets import build_dataset

    samples, report = build_dataset(cfg.dataset, split)
    if not samples:
        raise ValueError(f"dataset {cfg.dataset.name!r} split {split!r} has no usable samples "
                         f"(under {cfg.dataset.root}); see the data report")
    return samples, report


def training_order(cfg: Config, samples: list) -> list:
    """The training split in the order the backends read it: as drawn (each loader shuffles), or laid out in
    one-source blocks of a global batch (dataset.blend_batches=per_source, read unshuffled; data/blend.py)."""
    if cfg.dataset.blend_batches != "per_source":
        return samples
    from cosmos_exp.data.blend import arrange_by_source

    return arrange_by_source(samples, int(cfg.train.global_batch_size), int(cfg.dataset.blend_seed))


def order_note(cfg: Config) -> str:
    """How the training split is read, for the plans of both backends."""
    if cfg.dataset.blend_batches == "per_source":
        return (f"per-source batches: the training split laid out in blocks of {cfg.train.global_batch_size} items of "
                "one blend source (one optimizer step each), blocks in a seeded order, read in that order every "
                "epoch")
    return "training order: the drawn items shuffled every epoch"


def steps_per_epoch(num_samples: int, micro_batch: int, world_size: int, grad_accum: int) -> int:
    """Optimiser steps in one pass over the samples (every rank sees ceil(n / world) samples)."""
    per_rank = math.ceil(num_samples / world_size)
    micro_steps = math.ceil(per_rank / micro_batch)
    return max(1, micro_steps // grad_accum)


def total_steps(train: TrainConfig, num_samples: int, world_size: int, grad_accum: int) -> int:
    if train.max_steps is not None:
        return int(train.max_steps)
    return int(train.epochs) * steps_per_epoch(num_samples, train.micro_batch_size, world_size, grad_accum)


def train_stream(cfg: Config, samples: list, processor: Any, rank: int, world_size: int, start_micro_step: int) -> Any:
    """The data package's resumable loader, positioned after `start_micro_step` micro-batches of this rank."""
    from cosmos_exp.data.loader import build_train_loader

    return build_train_loader(samples, processor, cfg.dataset.vision, cfg.train.micro_batch_size,
                              training_seed(cfg.train, cfg.seed), rank, world_size, cfg.dataset.num_workers,
                              start_step=start_micro_step, shuffle=cfg.dataset.blend_batches != "per_source")


def eval_batches(cfg: Config, samples: list, processor: Any, rank: int, world_size: int) -> List[Dict[str, Any]]:
    """A fixed set of held-out batches, loaded once (no worker processes) and reused at every evaluation."""
    from cosmos_exp.data.loader import build_train_loader

    # The run's `seed`, not train.seed: every training seed is measured on the same held-out batches.
    loader = build_train_loader(samples, processor, cfg.dataset.vision, cfg.train.micro_batch_size, cfg.seed,
                                rank, world_size, 0, start_step=0)
    out: List[Dict[str, Any]] = []
    for batch in loader:
        out.append(batch)
        if len(out) >= cfg.train.eval_batches:
            break
    _close(loader)
    return out


def answer_tokens(batch: Dict[str, Any]) -> int:
    """Tokens the loss is computed on: labelled positions after the causal shift."""
    return int((batch["labels"][..., 1:] != -100).sum())


def _close(loader: Any) -> None:
    close = getattr(loader, "close", None)
    if callable(close):
        close()


def forever(loader: Any) -> Iterator[Dict[str, Any]]:
    """Iterate a loader that may be one epoch long; the data package's loader handles epochs itself
    when it is endless, otherwise we restart it (deterministic by seed, so the order is reproducible)."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("the training loader yielded no batches")
