"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Union


def write_text_atomic(path: Union[str, Path], text: str, fsync: bool = True) -> None:
    """Temp file in the same folder, then rename. fsync=False keeps the all-or-nothing view for readers and
    a killed process but not power-loss durability: for outputs that are cheap to rebuild."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Union[str, Path], obj: Any, fsync: bool = True) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n", fsync=fsync)
