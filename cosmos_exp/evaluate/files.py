"""Atomic JSON writes and tolerant reads for the judge's outputs."""

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, obj: Any, fsync: bool = True) -> None:
    """Write to a temp file in the same folder, fsync, rename: readers see the old file or the new one.

    fsync=False keeps the rename's all-or-nothing view for readers and a killed process, but not power-loss
    durability; it is for outputs that are cheap to regenerate (per-item scores rebuilt from the judge cache)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, ensure_ascii=False, default=str)
            f.write("\n")
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)
