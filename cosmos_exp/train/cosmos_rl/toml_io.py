"""A small TOML writer for the documents we render (tables, strings, numbers, booleans, arrays of them).

Python reads TOML (tomllib) but has no writer in the standard library; what cosmos-rl's TOML needs is
small enough to write here rather than add a dependency. TOML has no null: None values are left out,
so cosmos-rl's default applies.
"""

import json
import math
import re
from typing import Any, Dict, List

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _string(key)


def _string(text: str) -> str:
    # JSON's escapes (\" \\ \n \t \uXXXX ...) are all valid in TOML basic strings; DEL must be escaped too.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value} cannot be written to TOML for cosmos-rl")
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (list, tuple)):
        items = [v for v in value if v is not None]
        if any(isinstance(v, dict) for v in items):
            raise ValueError(f"{where}: arrays of tables are not supported")
        return "[" + ", ".join(_value(v, f"{where}[{i}]") for i, v in enumerate(items)) + "]"
    raise ValueError(f"{where}: cannot write a {type(value).__name__} to TOML")


def dumps(doc: Dict[str, Any]) -> str:
    lines: List[str] = []
    _table(doc, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _table(table: Dict[str, Any], path: List[str], lines: List[str]) -> None:
    leaves = [(k, v) for k, v in table.items() if not isinstance(v, dict) and v is not None]
    subs = [(k, v) for k, v in table.items() if isinstance(v, dict)]
    if path and (leaves or not subs):
        lines.append("")
        lines.append("[" + ".".join(_key(p) for p in path) + "]")
    for key, value in leaves:
        lines.append(f"{_key(key)} = {_value(value, '.'.join(path + [key]))}")
    for key, value in subs:
        _table(value, path + [key], lines)


def round_trip(doc: Dict[str, Any]) -> Dict[str, Any]:
    """`doc` as cosmos-rl will read it: written, then parsed (tomllib, Python >= 3.11; else `doc` as is)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        return doc
    return tomllib.loads(dumps(doc))
