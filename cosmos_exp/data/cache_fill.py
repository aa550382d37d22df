"""stage=prepare clip_cache.fill=true: decode every clip of the dataset's splits into the clip cache ahead of
training, so a SLURM job can prepare on CPU nodes and train on GPU nodes.

Parallel (one process per core, each single-threaded), resumable (a clip already cached is skipped; a killed fill
leaves whole entries only), with a progress bar on stderr. It measures what stage=sft's plan reports
(data/feed.py): the median CPU seconds to decode + resize a clip and to read a cached one, per split.
"""

import logging
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Dict, List, Optional, Tuple

from cosmos_exp.config.schema import Config
from cosmos_exp.repro.atomic import write_json_atomic

log = logging.getLogger(__name__)
TIMED_READS = 8  # cached reads timed per split for the cost record

_WORKER: Dict[str, Any] = {}  # the processor and settings, inherited by forked workers


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _fill_one(video: str) -> Tuple[str, Optional[float], Optional[str]]:
    """(video, seconds spent decoding + resizing or None when it was cached, error)."""
    from cosmos_exp.data.video import VideoError

    processor, vision = _WORKER["processor"], _WORKER["vision"]
    cache = processor.clip_cache
    try:
        key = cache.key_of(video, vision, processor.spec)
        if cache.contains(key):
            return video, None, None
        start = time.process_time()
        clip = processor.make_clip(video, vision)
        seconds = time.process_time() - start
        cache.put(key, clip)
        return video, seconds, None
    except (VideoError, ValueError, OSError) as exc:
        return video, None, str(exc)


def _timed_cached_read(processor: Any, video: str, vision: Any) -> float:
    start = time.process_time()
    processor.encode_video(video, vision)  # what a training read costs: the entry, patchify and normalise
    return time.process_time() - start


def fill_cache(cfg: Config, splits: List[str]) -> Dict[str, Any]:
    """Fill the cache with the clips of `splits`; returns per-split counts and costs (also written for the plan)."""
    import multiprocessing

    from tqdm import tqdm

    from cosmos_exp.data.datasets import build_dataset
    from cosmos_exp.data.feed import cores_available, cost_record_path, read_cost_record
    from cosmos_exp.data.processor import load_processor

    processor = load_processor(cfg.model, cfg.clip_cache)
    if processor.clip_cache is None:
        raise ValueError("clip_cache.fill=true needs the cache on (clip_cache.enabled=true)")
    vision = cfg.dataset.vision
    _WORKER.update(processor=processor, vision=vision)
    workers = cfg.clip_cache.fill_workers or cores_available()[0]
    result: Dict[str, Any] = {}
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker) as pool:
        for split in splits:
            samples, _ = build_dataset(cfg.dataset, split)
            videos = sorted({s.video for s in samples})
            fresh: List[float] = []
            failed: Dict[str, str] = {}
            futures = [pool.submit(_fill_one, v) for v in videos]
            for future in tqdm(as_completed(futures), total=len(futures), desc=f"clip cache {split}", unit="clip",
                               mininterval=2.0):
                video, seconds, error = future.result()
                if error is not None:
                    failed[video] = error
                elif seconds is not None:
                    fresh.append(seconds)
            done = [v for v in videos if v not in failed]
            reads = [_timed_cached_read(processor, v, vision) for v in done[:TIMED_READS]]
            record = {"split": split, "clips": len(videos), "cached": len(done), "decoded_now": len(fresh),
                      "failed": failed, "fresh_s": statistics.median(fresh) if fresh else None,
                      "cached_read_s": statistics.median(reads) if reads else None, "workers": workers}
            previous = read_cost_record(cfg, split)
            if record["fresh_s"] is None and previous:  # a resumed fill keeps the first one's decode figure
                record["fresh_s"] = previous.get("fresh_s")
            write_json_atomic(cost_record_path(cfg, split), record)
            log.info("clip cache %s: %d of %d clips cached (%d decoded now, %d failed); %s s to decode + resize, "
                     "%s s to read a cached one (median CPU seconds)", split, len(done), len(videos), len(fresh),
                     len(failed), _fmt(record["fresh_s"]), _fmt(record["cached_read_s"]))
            result[split] = record
    return result


def _fmt(seconds: Optional[float]) -> str:
    return "?" if seconds is None else f"{seconds:.3f}"
