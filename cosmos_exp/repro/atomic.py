"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional, Union


def write_text_atomic(path: Union[str, Path], text: str, fsync: bool = True) -> None:
    """Temp file in the same folder, then rename. fsync=False keeps the all-or-nothing view for readers and
    a killed process but not power-loss durability: for outputs that are cheap to rebuild."""
    path = os.fspath(path)  # plain strings: pathlib's parsing showed up when writing files by the thousand
    parent, name = os.path.split(path)
    parent = parent or "."
    os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json_atomic(path: Union[str, Path], obj: Any, fsync: bool = True, indent: Optional[int] = 2) -> None:
    """indent=None writes one line with json's C encoder, several times faster than the indenting one: for
    files written by the thousand (per-item score records)."""
    write_text_atomic(path, json.dumps(obj, indent=indent, ensure_ascii=False, default=str) + "\n", fsync=fsync)


@contextlib.contextmanager
def atomic_directory(path: Union[str, Path]) -> Iterator[Path]:
    """Yield a fresh temp directory beside `path`; when the block succeeds it replaces `path` (an old one is
    removed first), so `path` is complete or absent. On failure the temp directory is removed."""
    out = Path(path).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp", dir=out.parent))
    try:
        os.chmod(tmp, 0o755)
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
