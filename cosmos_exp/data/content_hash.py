"""Content hashes of clips, each file read once: a hash is reused while the file's path, size and modification
time are unchanged (a frame folder: its frame files' names, sizes and times).

The clip cache keys its entries by them and run.json's data fingerprints list them. Records live one small JSON
file per path under `index_dir` (written atomically, so any number of processes can share the index); with no
index_dir the hashes are remembered in this process only.
"""

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple, Union

from cosmos_exp.repro.atomic import write_text_atomic

if TYPE_CHECKING:
    from cosmos_exp.config.data import ClipCacheConfig

CHUNK = 1 << 20
INDEX_DIR = "hashes"  # under clip_cache.dir


def _signature(path: str) -> List:
    if os.path.isdir(path):
        from cosmos_exp.data.video import frame_files

        return [[f.name, st.st_size, st.st_mtime_ns] for f in frame_files(path) for st in [f.stat()]]
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def _hash_content(path: str) -> str:
    h = hashlib.sha256()
    if os.path.isdir(path):
        from cosmos_exp.data.video import frame_files

        files = frame_files(path)
        for f in files:  # names too: the same frames in another order are another clip
            h.update(f.name.encode("utf-8") + b"\0")
            _update_from_file(h, os.fspath(f))
    else:
        _update_from_file(h, path)
    return h.hexdigest()


def _update_from_file(h, path: str) -> None:
    with open(path, "rb") as f:
        while True:
            block = f.read(CHUNK)
            if not block:
                return
            h.update(block)


class ContentHashes:
    """sha256 of clip files and frame folders; picklable (loader workers carry it)."""

    def __init__(self, index_dir: Optional[Union[str, Path]] = None) -> None:
        self.index_dir = None if index_dir is None else os.fspath(index_dir)
        self._memo: Dict[str, Tuple[List, str]] = {}

    def _record_path(self, path: str) -> str:
        return os.path.join(self.index_dir, hashlib.sha1(path.encode("utf-8")).hexdigest() + ".json")

    def of(self, path: Union[str, Path]) -> str:
        """The content hash of `path` (an OSError if it cannot be read)."""
        path = os.path.abspath(os.fspath(path))
        sig = _signature(path)
        memo = self._memo.get(path)
        if memo is not None and memo[0] == sig:
            return memo[1]
        digest = self._from_index(path, sig)
        if digest is None:
            digest = _hash_content(path)
            if _signature(path) != sig:  # changed while we read it: hash what is there now
                return self.of(path)
            if self.index_dir is not None:
                record = {"path": path, "signature": sig, "sha256": digest}
                write_text_atomic(self._record_path(path), json.dumps(record) + "\n", fsync=False)
        self._memo[path] = (sig, digest)
        return digest

    def _from_index(self, path: str, sig: List) -> Optional[str]:
        if self.index_dir is None:
            return None
        try:
            with open(self._record_path(path), encoding="utf-8") as f:
                record = json.load(f)
        except (OSError, ValueError):
            return None
        if record.get("path") == path and record.get("signature") == sig:
            return record.get("sha256")
        return None


def hashes_of(c: "ClipCacheConfig") -> ContentHashes:
    """The clip cache's hash index when the cache is on (the hashes its keys use); else this process's memory."""
    return ContentHashes(os.path.join(c.dir, INDEX_DIR) if c.enabled else None)
