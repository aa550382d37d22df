"""The 15-key caption schema and reading label files in the cookbook's format."""

import json
from pathlib import Path
from typing import Dict, Tuple

CAPTION_KEYS: Tuple[str, ...] = (
    "weather",
    "lighting",
    "road_conditions",
    "traffic_light",
    "traffic_sign",
    "additional_traffic_rules",
    "road_type",
    "junction_type",
    "lane_type",
    "additional_map_rules",
    "interactive_expanded_metaaction",
    "safety_analysis",
    "driving_difficulty",
    "rule_violation",
    "interesting_scenario",
)


class LabelError(ValueError):
    """A label file that cannot be used; the message names the file."""


def read_label(path: Path, keys: Tuple[str, ...] = CAPTION_KEYS) -> Dict:
    """The caption keys of a label file (the 15 of the cookbook schema, or a blend source's own), in that order;
    extra keys (critical_object, ...) dropped.

    Values are kept exactly as stored (strings "True"/"False", nulls, lists, multi-line text).
    """
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise LabelError(f"{path}: not UTF-8 text ({exc})") from None
    except json.JSONDecodeError as exc:
        raise LabelError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise LabelError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    missing = [k for k in keys if k not in raw]
    if missing:
        raise LabelError(f"{path}: missing caption keys {missing}")
    return {k: raw[k] for k in keys}


def caption_target(label: Dict, target_format: str = "json") -> str:
    """The assistant's answer for the caption task (dataset.target_format):
    json         the object as indented JSON, non-ASCII kept (ours);
    fenced_json  the Reason 1 cookbook's (avha_sft.py): indent 2 with non-ASCII as \\u escapes, inside a
                 ```json fenced block. Both parse the same (infer/parse.py reads fenced and bare JSON)."""
    if target_format == "fenced_json":
        return "```json\n" + json.dumps(label, indent=2) + "\n```"
    if target_format == "json":
        return json.dumps(label, ensure_ascii=False, indent=2)
    raise ValueError(f"unknown caption target format {target_format!r}")
