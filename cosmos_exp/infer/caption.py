"""Caption generation, the core of stage=caption and stage=evaluate: one rank's share of a split answered with one
checkpoint, batched, resumable, every output written atomically.

`run_shard` writes `captions/<id>.json` per item, `captions_raw/<id>.txt` (the cookbook judge's layout) and
rebuilds `captions/index.json` from every rank's report; a rerun into the same captions root skips finished
items, and refuses one made with other weights or settings (`check_resumable`).
"""

import fcntl
import importlib.util
import json
import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

from omegaconf import OmegaConf

from cosmos_exp.config.schema import Config
from cosmos_exp import rundir
from cosmos_exp.config import ConfigError
from cosmos_exp.data.report import DataReport
from cosmos_exp.infer import records
from cosmos_exp.infer.checkpoint import CheckpointInfo
from cosmos_exp.infer.parse import NOT_APPLICABLE, parse_answer
from cosmos_exp.repro.atomic import write_json_atomic, write_text_atomic
from cosmos_exp.runtime.topology import Shard, take_shard

log = logging.getLogger("cosmos_exp.caption")

RAW_DIR = "captions_raw"


def check_engine_installed(cfg: Config) -> None:
    """The config's values are checked by config/validate; whether the chosen engine is installed is not a value."""
    if cfg.generation.engine == "vllm" and importlib.util.find_spec("vllm") is None:
        raise ConfigError("generation.engine", "vllm is not installed in this environment",
                          "pip install 'cosmos_exp[vllm]' on a CUDA machine, or generation.engine=transformers")


def generation_settings(cfg: Config) -> Dict[str, Any]:
    g = cfg.generation
    settings = {"engine": g.engine, "batch_size": g.batch_size, "max_new_tokens": g.max_new_tokens,
                "do_sample": g.do_sample, "repetition_penalty": g.repetition_penalty, "seed": g.seed}
    if g.do_sample:  # greedy ignores them; recording them would suggest otherwise
        settings.update(temperature=g.temperature, top_p=g.top_p)
    settings["vision"] = OmegaConf.to_container(cfg.dataset.vision, resolve=True)
    return settings


def eval_split(cfg: Config) -> str:
    return cfg.generation.split or cfg.dataset.eval_split


def resume_key(cfg: Config, checkpoint: str) -> Dict[str, Any]:
    """What must match for a rerun to reuse existing outputs (batch size may change; it only pads)."""
    settings = {k: v for k, v in generation_settings(cfg).items() if k != "batch_size"}
    return {"checkpoint": checkpoint, "dataset": cfg.dataset.name, "split": eval_split(cfg),
            "generation": settings}


def check_resumable(cfg: Config, root: Path, checkpoint: str) -> None:
    """Refuse to mix answers of different weights or settings in one captions/ directory."""
    if cfg.generation.force:
        return
    try:
        previous = rundir.read_json(rundir.captions_index(root))
    except (OSError, ValueError):
        return
    old = previous.get("resume_key")
    new = resume_key(cfg, checkpoint)
    if old is not None and old != new:
        changed = sorted(k for k in new if old.get(k) != new[k])
        raise ConfigError("generation.output_dir", f"{root}/captions holds answers made with other "
                          f"{', '.join(changed)} ({json.dumps({k: old.get(k) for k in changed})})",
                          "use a new output directory, or generation.force=true to regenerate every item")


def captions_root(cfg: Config, run_dir: Path) -> Path:
    """Where captions/ lives: the run directory, or generation.output_dir to resume / share one."""
    return Path(cfg.generation.output_dir).resolve() if cfg.generation.output_dir else Path(run_dir)


def _load_samples(cfg: Config) -> Tuple[List[Any], Dict[str, str]]:
    from cosmos_exp.data.datasets import build_dataset

    samples, report = build_dataset(cfg.dataset, eval_split(cfg))
    samples = sorted(samples, key=lambda s: s.id)
    seen = set()
    for s in samples:
        records.check_item_id(s.id)
        if s.id in seen:
            raise ValueError(f"dataset '{cfg.dataset.name}' split '{eval_split(cfg)}' has two items "
                             f"with id {s.id!r}; outputs are named by id")
        seen.add(s.id)
    if cfg.generation.max_items is not None:
        samples = samples[: cfg.generation.max_items]
    return samples, _data_report_skips(report)


def prompt_turns(conversation: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The conversation without its assistant turn: datasets carry the training target, which the model
    must not see (and which must not enter the prompt hash)."""
    return [turn for turn in conversation if turn.get("role") != "assistant"]


def _data_report_skips(report: DataReport) -> Dict[str, str]:
    """Items the data package skipped, {file: reason}."""
    return {file: reason for file, reason in report.skipped}


@contextmanager
def _index_lock(captions_dir: Path) -> Iterator[None]:
    """Ranks finish in any order; each rebuilds index.json from all shard reports under this lock."""
    with open(captions_dir / ".index.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _update_index(captions_dir: Path, ids: List[str], header: Dict[str, Any], world_size: int) -> Dict[str, Any]:
    with _index_lock(captions_dir):
        index = records.build_index(captions_dir, ids, records.read_shard_reports(captions_dir), header, world_size)
        write_json_atomic(captions_dir / rundir.CAPTIONS_INDEX, index)
    return index


class _ShardReport:
    """This rank's progress, rewritten after every batch so a killed run's index still tells the truth."""

    def __init__(self, captions_dir: Path, shard: Shard, assigned: int, skipped_existing: int) -> None:
        self.path = records.shard_report_path(captions_dir, shard.rank)
        self.data: Dict[str, Any] = {
            "rank": shard.rank, "world_size": shard.world_size, "source": shard.source,
            "assigned": assigned, "skipped_existing": skipped_existing, "generated": 0,
            "generated_tokens": 0, "generate_seconds": 0.0, "failed": {}, "parse_status": {},
            "status": "running", "error": None, "host": os.uname().nodename, "pid": os.getpid(),
        }

    def save(self) -> None:
        write_json_atomic(self.path, self.data)


def run_shard(cfg: Config, root: Path, shard: Shard, info: CheckpointInfo) -> Dict[str, Any]:
    """Answer this rank's share of the split; returns the counts of index.json."""
    captions_dir = rundir.captions_dir(root)
    captions_dir.mkdir(parents=True, exist_ok=True)
    check_resumable(cfg, root, info.path)
    samples, dataset_skips = _load_samples(cfg)
    if shard.rank == 0:  # beside the captions: in the run directory unless generation.output_dir moves them
        from cosmos_exp.data.content_hash import hashes_of
        from cosmos_exp.repro.data_fingerprint import write_fingerprints

        write_fingerprints(root, {eval_split(cfg): [s.video for s in samples]}, hashes_of(cfg.clip_cache))
    ids = [s.id for s in samples]
    mine = take_shard(samples, shard)
    records.remove_stale_temps(captions_dir, [s.id for s in mine])
    force = cfg.generation.force
    pending = [s for s in mine if force or not records.is_done(rundir.caption_path(captions_dir, s.id))]
    header = {
        "checkpoint": info.path, "model_type": info.model_type,
        "dataset": {"name": cfg.dataset.name, "kind": cfg.dataset.kind, "root": str(cfg.dataset.root),
                    "split": eval_split(cfg)},
        "generation": generation_settings(cfg),
        "dataset_skipped": dataset_skips,
        "resume_key": resume_key(cfg, info.path),
    }
    report = _ShardReport(captions_dir, shard, assigned=len(mine), skipped_existing=len(mine) - len(pending))
    report.save()
    log.info("rank %d/%d: %d items assigned, %d already done, %d to generate",
             shard.rank, shard.world_size, len(mine), len(mine) - len(pending), len(pending))
    try:
        if pending:
            _generate_all(cfg, info, pending, captions_dir, root, report, header)
        report.data["status"] = "ok"
    except BaseException as exc:
        report.data.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        report.save()
        index = _update_index(captions_dir, ids, header, shard.world_size)
    return {"captions_dir": str(captions_dir), "checkpoint": info.path, **index["counts"]}


def _make_engine(cfg: Config, info: CheckpointInfo) -> Any:
    """The engine generation.engine names; each is imported only when chosen (vllm needs CUDA)."""
    g, m = cfg.generation, cfg.model
    if g.engine == "vllm":
        from cosmos_exp.infer.engine_vllm import VLLMEngine

        return VLLMEngine(info.path, g, cfg.dataset.vision, dtype=m.dtype, model_max_length=m.model_max_length)
    from cosmos_exp.data.clip_cache import from_config
    from cosmos_exp.infer.engine_hf import HFEngine

    engine = HFEngine(info.path, g, cfg.dataset.vision, dtype=m.dtype, attn_implementation=m.attn_implementation,
                      model_max_length=m.model_max_length)
    engine.processor.clip_cache = from_config(cfg.clip_cache)  # vLLM decodes its clips itself
    return engine


def _generate_all(cfg: Config, info: CheckpointInfo, pending: List[Any], captions_dir: Path, root: Path,
                  report: _ShardReport, header: Dict[str, Any]) -> None:
    g = cfg.generation
    strict = bool(cfg.dataset.strict)
    engine = _make_engine(cfg, info)
    settings = {**header["generation"], **engine.settings()}
    header["generation"] = settings

    def fail(sample: Any, reason: str) -> None:
        log.warning("item %s (%s) failed: %s", sample.id, sample.video, reason)
        report.data["failed"][sample.id] = f"{sample.video}: {reason}"

    batches = [pending[i : i + g.batch_size] for i in range(0, len(pending), g.batch_size)]
    # Decoding and preprocessing of the next batch overlap the current batch's generate (threads: the
    # decoders and torch kernels release the GIL); results are consumed in order, so outputs are unchanged.
    with ThreadPoolExecutor(max_workers=min(4, g.batch_size), thread_name_prefix="prepare") as pool:
        def submit(batch: List[Any]) -> List[Tuple[Any, Future]]:
            return [(s, pool.submit(engine.prepare, prompt_turns(s.conversation))) for s in batch]

        started = time.perf_counter()  # throughput counts decoding + preprocessing + generate, not loading
        upcoming = submit(batches[0])
        for number in range(len(batches)):
            current = upcoming
            if number + 1 < len(batches):
                upcoming = submit(batches[number + 1])
            ready = _collect_prepared(current, strict, fail)
            if not ready:
                continue
            outputs = _generate_batch(engine, ready, strict, fail)
            for (sample, _), out in zip(ready, outputs):
                if out is None:
                    continue
                _write_output(cfg, info, sample, out, settings, captions_dir, root, report)
            report.data["generate_seconds"] = time.perf_counter() - started
            report.save()
            done, seconds = report.data["generated"], report.data["generate_seconds"]
            log.info("rank %d: %d/%d generated, %d failed, %.2f videos/s", report.data["rank"], done, len(pending),
                     len(report.data["failed"]), done / seconds if seconds else 0.0)


def _collect_prepared(prepared: List[Tuple[Any, Future]], strict: bool, fail: Any) -> List[Tuple[Any, Any]]:
    """Encoded items of one batch; a bad video or an over-long item is skipped and reported."""
    ready = []
    for sample, future in prepared:
        try:
            ready.append((sample, future.result()))
        except Exception as exc:
            if strict:
                raise RuntimeError(f"item {sample.id} ({sample.video}): {exc}") from exc
            fail(sample, f"{type(exc).__name__}: {exc}")
    return ready


def _generate_batch(engine: Any, ready: List[Tuple[Any, Any]], strict: bool, fail: Any) -> List[Any]:
    """One batched call; if it raises (say out of memory), each item alone, so one bad item costs only itself."""
    try:
        return engine.generate([f for _, f in ready], [s.id for s, _ in ready])
    except Exception as exc:
        if strict or len(ready) == 1:
            if strict:
                raise
            fail(ready[0][0], f"generation failed: {type(exc).__name__}: {exc}")
            return [None]
        log.warning("batch of %d failed (%s); retrying its items one by one", len(ready), exc)
    outputs = []
    for sample, features in ready:
        try:
            outputs.append(engine.generate([features], [sample.id])[0])
        except Exception as exc:
            fail(sample, f"generation failed: {type(exc).__name__}: {exc}")
            outputs.append(None)
    return outputs


def _write_output(cfg: Config, info: CheckpointInfo, sample: Any, out: Any, settings: Dict[str, Any],
                  captions_dir: Path, root: Path, report: _ShardReport) -> None:
    conversation = prompt_turns(sample.conversation)
    if sample.task == "caption":
        parsed, status = parse_answer(out.text)
    else:  # mcq letters and free-form QA answers are read by the evaluator
        parsed, status = None, NOT_APPLICABLE
    record = records.build_record(
        item_id=sample.id, task=sample.task, video=sample.video, raw_text=out.text, parsed=parsed,
        parse_status=status, reference=sample.reference, question=records.question_text(conversation),
        prompt_hash_value=records.prompt_hash(conversation), generation=settings,
        checkpoint=info.path, model_type=info.model_type, num_generated_tokens=out.num_tokens,
        meta=dict(sample.meta or {}),
        shard={"rank": report.data["rank"], "world_size": report.data["world_size"]},
    )
    if cfg.generation.cookbook_raw:  # written first: an item is done only once its record exists
        write_text_atomic(root / RAW_DIR / f"{sample.id}.txt", out.text)
    write_json_atomic(rundir.caption_path(captions_dir, sample.id), record)
    report.data["generated"] += 1
    report.data["generated_tokens"] += out.num_tokens
    counts = report.data["parse_status"]
    counts[status] = counts.get(status, 0) + 1
