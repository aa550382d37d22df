"""The preprocessed-clip cache: a clip's sampled, resized uint8 frames, stored the first time they are made, so
later epochs, later runs and other stages (captioning, evaluation) read them instead of decoding and resizing.

Frames, not float patches: a quarter of the bytes, and patchify + normalise are cheap and exact on them.

Key: sha256 of the clip's content (data/content_hash.py), the vision settings (dataset.vision), the model family's
preprocessing (data/preprocess.VisionSpec) and PREPROCESS_VERSION, so a changed setting never reads a stale entry.

Layout under `clip_cache.dir`: `entries/<key[:2]>/<key>.clip` (a magic line, a JSON header with the shape,
sampled indices and clip metadata, then the raw frames) and `hashes/` (the content-hash index).

Writes go to a temp file beside the entry and are renamed into place, so a reader sees a whole entry or none, and
writers racing on one clip (ranks, loader workers) leave one entry: the last rename wins and every writer wrote
the same bytes. A writer killed mid-write leaves only its temp file, which the next sweep removes.

Size bound and eviction: every read refreshes the entry's modification time. A process sweeps the cache on its
first write and again after each further 5% of `max_gb` it has written; a sweep sums the entries' sizes and, when
the total is above max_gb, deletes the least recently read entries until the total is at most 90% of max_gb. A
sweep also deletes temp files of writers that are gone (a dead pid on this host, or older than an hour). Between
sweeps the cache can overshoot by 5% of max_gb per writing process.
"""

import hashlib
import json
import os
import socket
import struct
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, List, Optional, Union

import numpy as np

from cosmos_exp.data.content_hash import INDEX_DIR, ContentHashes

if TYPE_CHECKING:  # only a type: the cosmos-rl entry imports the data package without Hydra
    from cosmos_exp.config.data import ClipCacheConfig

# Bump when decoding, frame sampling or resizing changes the frames a clip gives, so old entries are never read.
PREPROCESS_VERSION = 1
MAGIC = b"cosmos_exp clip v1\n"
SUFFIX = ".clip"
TEMP_SUFFIX = ".tmp"
SWEEP_EVERY = 0.05  # of max_bytes written by this process
EVICT_TO = 0.9  # of max_bytes, after a sweep finds the cache over its bound
STALE_TEMP_SECONDS = 3600


@dataclass
class Clip:
    """One clip's frames as the model family sees them, before patchify and normalise."""

    frames: np.ndarray  # uint8 [T, h, w, 3]
    indices: List[int]  # the frames sampled from the video
    video_fps: float
    num_frames: int  # frames in the whole video


def from_config(c: "ClipCacheConfig") -> Optional["ClipCache"]:
    """The cache clip_cache names, or None when it is switched off."""
    return ClipCache(c.dir, int(c.max_gb * 1e9)) if c.enabled else None


def cache_key(content_hash: str, vision, spec) -> str:
    """sha256 over everything the frames depend on. `vision` is a VisionConfig (every field: backend too, since
    decoders may differ), `spec` the VisionSpec."""
    fields = {k: getattr(vision, k) for k in ("backend", "nframes", "fps", "min_frames", "max_frames",
                                               "min_pixels", "max_pixels", "total_pixels")}
    blob = json.dumps({"content": content_hash, "vision": fields, "spec": asdict(spec),
                       "version": PREPROCESS_VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ClipCache:
    """A cache directory shared by every process that uses it; picklable (loader workers carry it)."""

    def __init__(self, root: Union[str, Path], max_bytes: int) -> None:
        self.root = os.fspath(root)
        self.max_bytes = int(max_bytes)
        self.entries = os.path.join(self.root, "entries")
        self.hashes = ContentHashes(os.path.join(self.root, INDEX_DIR))
        self._written: Optional[int] = None  # bytes written since this process's last sweep (None: no sweep yet)
        self._pid = os.getpid()
        self.hits = self.misses = 0  # this process's reads, for logs

    def path_of(self, key: str) -> str:
        return os.path.join(self.entries, key[:2], key + SUFFIX)

    def key_of(self, video: Union[str, Path], vision, spec) -> str:
        return cache_key(self.hashes.of(video), vision, spec)

    def get_or_make(self, video: Union[str, Path], vision, spec, make: Callable[[], Clip]) -> Clip:
        """The cached clip, or `make()`'s, stored for next time. A clip whose file cannot be hashed is made and
        not stored (make() then names the problem)."""
        try:
            key = self.key_of(video, vision, spec)
        except OSError:
            return make()
        clip = self.get(key)
        if clip is None:
            clip = make()
            self.put(key, clip)
            self.misses += 1
        else:
            self.hits += 1
        return clip

    def get(self, key: str) -> Optional[Clip]:
        path = self.path_of(key)
        try:
            with open(path, "rb") as f:
                clip = _read_entry(f, os.fstat(f.fileno()).st_size)
        except (OSError, ValueError):
            return None  # absent, evicted meanwhile, or not ours: make it again
        try:
            os.utime(path)  # the eviction order: least recently read first
        except OSError:
            pass
        return clip

    def contains(self, key: str) -> bool:
        return os.path.isfile(self.path_of(key))

    def put(self, key: str, clip: Clip) -> None:
        path = self.path_of(key)
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{key}.{_host()}.{os.getpid()}.", suffix=TEMP_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as f:
                _write_entry(f, clip)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        if self._pid != os.getpid():  # a forked loader worker: its own count
            self._pid, self._written = os.getpid(), None
        size = os.path.getsize(path)
        if self._written is None or self._written + size >= SWEEP_EVERY * self.max_bytes:
            self.sweep()
        else:
            self._written += size

    def sweep(self) -> dict:
        """Remove dead writers' temp files and, over the bound, the least recently read entries (module doc)."""
        self._written = 0
        entries, total, removed_temps = [], 0, 0
        now = time.time()
        for sub in _listdir(self.entries):
            folder = os.path.join(self.entries, sub)
            for e in _scandir(folder):
                try:
                    st = e.stat()
                except OSError:
                    continue
                if e.name.endswith(TEMP_SUFFIX):
                    if _writer_gone(e.name, now - st.st_mtime):
                        removed_temps += _unlink(e.path)
                elif e.name.endswith(SUFFIX):
                    entries.append((st.st_mtime, st.st_size, e.path))
                    total += st.st_size
        evicted = 0
        if total > self.max_bytes:
            for _, size, path in sorted(entries):
                if total <= EVICT_TO * self.max_bytes:
                    break
                if _unlink(path):
                    total -= size
                    evicted += 1
        return {"entries": len(entries) - evicted, "bytes": total, "evicted": evicted, "removed_temps": removed_temps}


def _write_entry(f, clip: Clip) -> None:
    frames = np.ascontiguousarray(clip.frames)
    header = json.dumps({"shape": list(frames.shape), "indices": [int(i) for i in clip.indices],
                         "video_fps": float(clip.video_fps), "num_frames": int(clip.num_frames)}).encode("utf-8")
    f.write(MAGIC + struct.pack("<Q", len(header)) + header)
    f.write(memoryview(frames).cast("B"))


def _read_entry(f, size: int) -> Clip:
    if f.read(len(MAGIC)) != MAGIC:
        raise ValueError("not a clip entry")
    (n,) = struct.unpack("<Q", f.read(8))
    header = json.loads(f.read(n))
    shape = tuple(header["shape"])
    frames = np.empty(shape, dtype=np.uint8)
    if size != len(MAGIC) + 8 + n + frames.nbytes or f.readinto(memoryview(frames).cast("B")) != frames.nbytes:
        raise ValueError("truncated clip entry")
    return Clip(frames, header["indices"], header["video_fps"], header["num_frames"])


def _host() -> str:
    return socket.gethostname().replace(".", "_")


def _writer_gone(name: str, age: float) -> bool:
    """Whether the writer of temp file `name` (.<key>.<host>.<pid>.<random>.tmp) has stopped."""
    if age > STALE_TEMP_SECONDS:
        return True
    parts = name.split(".")
    if len(parts) < 5 or parts[2] != _host():
        return False
    try:
        os.kill(int(parts[3]), 0)
    except ProcessLookupError:
        return True
    except (ValueError, PermissionError):
        return False
    return False


def _listdir(path: str) -> List[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _scandir(path: str):
    try:
        return list(os.scandir(path))
    except OSError:
        return []


def _unlink(path: str) -> bool:
    try:
        os.unlink(path)
        return True
    except OSError:
        return False
