"""Find the JSON object in a model's answer: fenced (```json ... ```) or bare, first `{` to its matching `}`,
after a reasoning model's `<think>` block is removed (a `<answer>` block, when present, is the answer)."""

import json
import re
from typing import Any, Optional, Tuple

from cosmos_exp.infer.reasoning import final_answer

OK = "ok"
NO_JSON = "no_json"
INVALID_JSON = "invalid_json"
NOT_APPLICABLE = "not_applicable"

_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\r?\n?(.*?)```", re.DOTALL)


def _matching_brace(text: str, start: int) -> Optional[int]:
    """Index of the `}` closing the `{` at `start`, skipping braces inside JSON strings; None if unclosed."""
    depth = 0
    in_string = False
    escaped = False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
    return None


def _first_object(text: str) -> Tuple[Optional[Any], str]:
    start = text.find("{")
    if start < 0:
        return None, NO_JSON
    end = _matching_brace(text, start)
    if end is None:  # unclosed: typically an answer cut by max_new_tokens
        return None, INVALID_JSON
    try:
        value = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None, INVALID_JSON
    return value, OK


def parse_answer(text: str) -> Tuple[Optional[Any], str]:
    """Return (object, status) with status one of ok / no_json / invalid_json.

    A fenced block wins over bare text (models often explain before or after the block); inside either,
    the object runs from the first `{` to its matching `}`, so trailing prose or a second object is ignored.
    """
    text = final_answer(text)
    for block in _FENCE.findall(text):
        value, status = _first_object(block)
        if status != NO_JSON:
            return value, status
    return _first_object(text)


def unfenced(text: str) -> str:
    """The answer without a code fence wrapped around all of it (```json ... ```)."""
    m = _FENCE.fullmatch(text.strip())
    return (m.group(1) if m else text).strip()
