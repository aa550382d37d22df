"""Reading a caption run directory (the INFER stage's output contract).

`<run>/captions/<id>.json` per item plus `captions/index.json`; hidden files (temp files, `.shards/`)
are not items. A caption file that does not parse is reported and skipped (or raises when strict).
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from cosmos_exp import rundir
from cosmos_exp.infer.parse import parse_answer

_REQUIRED = ("id", "task", "raw_text", "reference")
_REASONING = re.compile(r"</think>|<answer>", re.IGNORECASE)


@dataclass
class CaptionRun:
    path: Path
    items: List[Dict[str, Any]]
    bad: List[Dict[str, str]] = field(default_factory=list)  # {"file", "reason"}
    index: Optional[Dict[str, Any]] = None
    checkpoint: Optional[str] = None


def load_caption_run(run_dir: Path, strict: bool = False) -> CaptionRun:
    run_dir = Path(run_dir).resolve()
    items, bad = [], []
    for p in rundir.caption_files(run_dir):
        try:
            rec = rundir.read_json(p)
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
            missing = [k for k in _REQUIRED if k not in rec]
            if missing:
                raise ValueError(f"missing fields {missing}")
            rec["_file"] = str(p)
            items.append(rec)
        except (OSError, ValueError) as e:  # json.JSONDecodeError is a ValueError
            if strict:
                raise ValueError(f"bad caption file {p}: {e}") from e
            bad.append({"file": str(p), "reason": str(e)})
    index = rundir.read_json_optional(rundir.captions_index(run_dir))
    return CaptionRun(path=run_dir, items=items, bad=bad, index=index, checkpoint=find_checkpoint(run_dir, index, items))


def find_checkpoint(run_dir: Path, index: Optional[Dict[str, Any]], items: List[Dict[str, Any]]) -> Optional[str]:
    """The weights behind the captions: index.json, else run.json, else the caption records."""
    if index and index.get("checkpoint"):
        return str(index["checkpoint"])
    run_json = rundir.read_run_json(run_dir)
    for holder in (run_json.get("result") or {}, run_json):
        if isinstance(holder, dict) and holder.get("checkpoint"):
            return str(holder["checkpoint"])
    for rec in items:
        if rec.get("checkpoint"):
            return str(rec["checkpoint"])
    return None


def render_value(value: Any) -> str:
    """One caption value as judge-readable text: lists joined, null as '(none)'."""
    if value is None:
        return "(none)"
    if isinstance(value, (list, tuple)):
        return "; ".join(render_value(v) for v in value) if value else "(none)"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value).strip()


def parsed_caption(rec: Dict[str, Any]) -> Tuple[Optional[Dict[str, Any]], str]:
    """The caption's JSON object and parse status. The INFER stage already parsed it; a reasoning model's text
    is parsed again here, so a record written before reasoning blocks were removed (or by another tool) is scored
    on its answer, not on a draft object inside `<think>`."""
    raw = rec.get("raw_text")
    if isinstance(raw, str) and _REASONING.search(raw):
        parsed, status = parse_answer(raw)
        return (parsed if isinstance(parsed, dict) else None), status
    parsed = rec.get("parsed")
    status = rec.get("parse_status") or ("ok" if isinstance(parsed, dict) else "no_json")
    return (parsed if isinstance(parsed, dict) else None), status
