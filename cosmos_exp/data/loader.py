"""Training batches, decoded and preprocessed in worker processes ahead of the model.

The order is a pure function of (seed, step): epoch e visits the samples in permutation
default_rng([seed, e]) (or in list order with shuffle=False: a list laid out on purpose, data/blend.py);
global step s takes positions [s*B*W, (s+1)*B*W) of the endless sequence of epochs and rank r keeps its B of
them. So a run resumed with start_step=s (or load_state_dict) gets the
exact batches the uninterrupted run would have had. A sample whose video fails to decode is replaced by
the next sample in the order (logged), so batches keep their size.
"""

import logging
import os
from typing import Any, Dict, Iterator, List

import numpy as np

from cosmos_exp.config.data import VisionConfig

log = logging.getLogger(__name__)
MAX_REPLACEMENTS = 8


def step_positions(step: int, n: int, batch_size: int, rank: int, world_size: int) -> List[int]:
    start = (step * world_size + rank) * batch_size
    return list(range(start, start + batch_size))


class _Order:
    def __init__(self, n: int, seed: int, shuffle: bool = True) -> None:
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self._cache: Dict[int, np.ndarray] = {}

    def __getitem__(self, position: int) -> int:
        epoch, pos = divmod(position, self.n)
        if not self.shuffle:
            return pos
        if epoch not in self._cache:
            self._cache = {epoch: np.random.default_rng([self.seed, epoch]).permutation(self.n)}
        return int(self._cache[epoch][pos])


class _BatchDataset:
    """Map-style: item `step` is this rank's collated batch of that step (runs inside a worker)."""

    def __init__(self, samples: list, processor: Any, vision: VisionConfig, batch_size: int, seed: int, rank: int,
                 world_size: int, shuffle: bool = True) -> None:
        self.samples, self.processor, self.vision = samples, processor, vision
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size
        self.order = _Order(len(samples), seed, shuffle)
        self._epoch = None  # the epoch this process last encoded a sample of (for the clip cache's tally)

    def _tally_epoch(self, position: int) -> None:
        """Log how the clip cache served this process's share of an epoch, once the next epoch starts."""
        cache = getattr(self.processor, "clip_cache", None)
        epoch = position // len(self.samples)
        if cache is not None and epoch != self._epoch:
            if self._epoch is not None:
                log.info("clip cache, epoch %d in process %d: %d clips read from the cache, %d decoded",
                         self._epoch, os.getpid(), cache.hits, cache.misses)
            cache.hits = cache.misses = 0
            self._epoch = epoch

    def encode_position(self, position: int):
        from cosmos_exp.data.video import VideoError

        self._tally_epoch(position)
        for k in range(MAX_REPLACEMENTS):
            # replacements step a whole global batch forward so ranks never collide
            pos = position + k * self.batch_size * self.world_size * 7919
            sample = self.samples[self.order[pos]]
            try:
                return self.processor.encode(sample.conversation, self.vision)
            except (VideoError, ValueError) as exc:
                log.warning("skipping sample %s in training batch: %s", sample.id, exc)
        raise RuntimeError(f"{MAX_REPLACEMENTS} samples in a row failed to encode near position {position}")

    def __getitem__(self, step: int) -> dict:
        positions = step_positions(step, len(self.samples), self.batch_size, self.rank, self.world_size)
        return self.processor.collate([self.encode_position(p) for p in positions])

    def __len__(self) -> int:  # effectively endless; the training loop decides when to stop
        return 2**62


class _StepSampler:
    def __init__(self, start: int) -> None:
        self.start = start

    def __iter__(self):
        step = self.start
        while True:
            yield step
            step += 1


class TrainLoader:
    """Endless iterable of collated batches; `state_dict()` records the next step to deliver."""

    def __init__(self, dataset: _BatchDataset, num_workers: int, start_step: int = 0, prefetch: int = 2) -> None:
        self.dataset, self.num_workers, self.prefetch = dataset, num_workers, prefetch
        self.step = int(start_step)
        self._active = None

    def close(self) -> None:
        """Stop the worker processes of the running iteration, if any."""
        if self._active is not None:
            self._active.close()
            self._active = None

    def state_dict(self) -> dict:
        return {"step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])

    def __iter__(self) -> Iterator[dict]:
        self.close()
        self._active = self._batches()
        return self._active

    def _batches(self) -> Iterator[dict]:
        if self.num_workers <= 0:
            while True:
                batch = self.dataset[self.step]
                self.step += 1
                yield batch
        from torch.utils.data import DataLoader

        loader = DataLoader(
            self.dataset, batch_size=None, sampler=_StepSampler(self.step), num_workers=self.num_workers,
            prefetch_factor=self.prefetch, persistent_workers=False, multiprocessing_context="fork",
            worker_init_fn=_leave_stop_signals_to_the_trainer,
        )
        for batch in loader:
            self.step += 1
            yield batch


def _leave_stop_signals_to_the_trainer(worker_id: int) -> None:  # noqa: ARG001 (DataLoader's API)
    """SLURM signals every process of a job (scancel --signal, scontrol requeue, the pre-timeout signal), and
    torch's workers die on a SIGTERM not sent by their parent: the trainer then fails on its next batch instead
    of writing its checkpoint. The trainer decides when to stop; a worker ends when the loader closes, or within
    seconds of its parent's death (torch's watchdog)."""
    import signal

    from cosmos_exp.runtime.signals import REQUEUE_SIGNAL, STOP_SIGNALS

    for sig in STOP_SIGNALS + (REQUEUE_SIGNAL,):
        signal.signal(sig, signal.SIG_IGN)


def build_train_loader(samples: list, processor: Any, vision: VisionConfig, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                       num_workers: int = 2, start_step: int = 0, shuffle: bool = True) -> TrainLoader:
    if not samples:
        raise ValueError("no training samples (see the data report for what was skipped)")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world size {world_size}")
    ds = _BatchDataset(samples, processor, vision, batch_size, seed, rank, world_size, shuffle)
    return TrainLoader(ds, num_workers, start_step)
