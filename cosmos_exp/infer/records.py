"""The caption run's files: `captions/<id>.json` per item, shard reports, and `captions/index.json`.

Every file is written whole to a temporary name and renamed into place, so a killed run leaves either
a complete output or none; a rerun treats an item as done exactly when its output file parses.
"""

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

from cosmos_exp.rundir import SHARDS_DIR, caption_path

# Ids become file names; the cookbook's judge takes the id as the name before the first dot.
_SAFE_ID = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_\-]*$")


def check_item_id(item_id: str) -> None:
    """Ids are file names: letters, digits, '_' and '-' only (a '.' would cut the cookbook judge's id)."""
    if not _SAFE_ID.match(item_id):
        raise ValueError(f"item id {item_id!r} cannot be a file name (allowed: letters, digits, '_', '-')")


def is_done(path: Path) -> bool:
    """An output counts as done when it is a complete record (it always is, unless edited by hand)."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and "raw_text" in record


def remove_stale_temps(captions_dir: Path, item_ids: Iterable[str]) -> int:
    """Delete temporary files a killed writer left for these items (only the owning rank calls this,
    so no live writer's file is touched); they are never read as outputs anyway."""
    removed = 0
    for item_id in item_ids:
        for tmp in Path(captions_dir).glob(f".{item_id}.json.*.tmp"):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def prompt_hash(conversation: List[Dict[str, Any]]) -> str:
    """Hash of what the model is asked, without which video: equal prompts give equal hashes across items.

    Vision settings (frames, pixels) stay in, since they change what the model sees.
    """
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if not (k == "video" and isinstance(v, str))}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    canonical = json.dumps(strip(conversation), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def question_text(conversation: List[Dict[str, Any]]) -> Optional[str]:
    """The user turn's text (the question for mcq / lingoqa; the caption instruction otherwise)."""
    for turn in conversation:
        if turn.get("role") != "user":
            continue
        content = turn.get("content")
        if isinstance(content, str):
            return content
        texts = [part.get("text", "") for part in content or [] if isinstance(part, dict) and part.get("type") == "text"]
        return "\n".join(texts) if texts else None
    return None


def build_record(
    *,
    item_id: str,
    task: str,
    video: str,
    raw_text: str,
    parsed: Any,
    parse_status: str,
    reference: Any,
    question: Optional[str],
    prompt_hash_value: str,
    generation: Dict[str, Any],
    checkpoint: str,
    model_type: str,
    num_generated_tokens: Optional[int] = None,
    meta: Optional[Dict[str, Any]] = None,
    shard: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    return {
        "id": item_id,
        "task": task,
        "video": video,
        "raw_text": raw_text,
        "parsed": parsed,
        "parse_status": parse_status,
        "reference": reference,
        "question": question,
        "prompt_hash": prompt_hash_value,
        "generation": generation,
        "checkpoint": checkpoint,
        "model_type": model_type,
        "num_generated_tokens": num_generated_tokens,
        "meta": meta or {},
        "shard": shard,  # which rank wrote it: audits that no item was done twice
    }


def shard_report_path(captions_dir: Path, rank: int) -> Path:
    return Path(captions_dir) / SHARDS_DIR / f"rank_{rank:05d}.json"


def read_shard_reports(captions_dir: Path) -> List[Dict[str, Any]]:
    reports = []
    for path in sorted((Path(captions_dir) / SHARDS_DIR).glob("rank_*.json")):
        try:
            reports.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue  # a report being replaced right now: the rank that writes it rebuilds the index after
    return reports


def build_index(
    captions_dir: Path,
    item_ids: Iterable[str],
    reports: List[Dict[str, Any]],
    header: Dict[str, Any],
    world_size: int,
) -> Dict[str, Any]:
    """Merge the shard reports of the current world size with what is on disk now (reports of an
    earlier run with another world size are left out; those of the same size are overwritten by it)."""
    reports = [r for r in reports if r.get("world_size") == world_size]
    ids = list(item_ids)
    done = [i for i in ids if is_done(caption_path(captions_dir, i))]
    failed: Dict[str, str] = {}
    generated = skipped_existing = 0
    seconds = tokens = 0.0
    parse_counts: Dict[str, int] = {}
    for report in reports:
        generated += report.get("generated", 0)
        skipped_existing += report.get("skipped_existing", 0)
        seconds = max(seconds, report.get("generate_seconds", 0.0))  # ranks run side by side
        tokens += report.get("generated_tokens", 0)
        failed.update(report.get("failed", {}))
        for status, n in report.get("parse_status", {}).items():
            parse_counts[status] = parse_counts.get(status, 0) + n
    done_set = set(done)
    failed = {k: v for k, v in sorted(failed.items()) if k not in done_set}
    return {
        **header,
        "counts": {
            "items": len(ids),
            "done": len(done),
            "missing": len(ids) - len(done),
            "generated_this_run": generated,
            "skipped_existing": skipped_existing,
            "failed": len(failed),
        },
        "failed": failed,
        "parse_status_this_run": parse_counts,
        "throughput": {
            "generate_seconds": round(seconds, 3),
            "videos_per_s": round(generated / seconds, 4) if seconds > 0 else None,
            "generated_tokens_per_s": round(tokens / seconds, 2) if seconds > 0 else None,
        },
        "shards": [
            {k: r.get(k) for k in ("rank", "world_size", "source", "assigned", "generated", "status", "error")}
            for r in reports
        ],
    }
