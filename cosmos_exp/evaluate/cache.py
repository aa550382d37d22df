"""Persistent judge cache (SQLite): a judged (endpoint, model, rubric hash, temperature, key, human answer, model
answer) is never paid for twice, and an edited rubric changes the key so stale scores are never reused. The
endpoint is part of the key: two servers that serve the same model name are different judges.

Every answer the judge gave is stored: a scored one with its score, one that did not parse with a NULL score,
so a rerun reads it again (a newer parser may read it) without paying, unless asked to retry it. Failures
without an answer (HTTP errors, timeouts, the budget) are not stored and are retried by the next run."""

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Optional

_SCHEMA = """CREATE TABLE IF NOT EXISTS judgements (
    key TEXT PRIMARY KEY, model TEXT, rubric TEXT, score REAL, text TEXT,
    input_tokens INTEGER, output_tokens INTEGER, created REAL)"""
_COMMIT_EVERY = 32  # a crash loses at most this many paid answers; per-row commits cost more than calls at speed


_ENCODE = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps(..., ensure_ascii=False) builds one per call


def key_maker(endpoint: str, model: str, rubric_sha: str, temperature: Optional[float]) -> Callable[[str, str, str], str]:
    """cache_key with the judge's settings fixed: the digest of the settings is taken once and copied per key
    (a run makes 15 keys per caption)."""
    judge = _ENCODE([endpoint.rstrip("/"), model, rubric_sha, None if temperature is None else float(temperature)])
    prefix = hashlib.sha256(judge.encode("utf-8"))

    def key(field: str, human: str, answer: str) -> str:
        h = prefix.copy()
        h.update(_ENCODE([field, human, answer]).encode("utf-8"))
        return h.hexdigest()

    return key


def cache_key(endpoint: str, model: str, rubric_sha: str, temperature: Optional[float], field: str, human: str,
              answer: str) -> str:
    """`temperature` None: the model's default (a reasoning model is sent none)."""
    return key_maker(endpoint, model, rubric_sha, temperature)(field, human, answer)


class JudgeCache:
    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._pending = 0
        self._db: Optional[sqlite3.Connection] = None
        if readonly:
            if self.path.is_file():  # a dry run must not create the file
                self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self._db.commit()

    def get_many(self, keys: Iterable[str]) -> Dict[str, Dict[str, Any]]:
        keys = list(dict.fromkeys(keys))
        out: Dict[str, Dict[str, Any]] = {}
        if self._db is None or not keys:
            return out
        try:
            for start in range(0, len(keys), 500):  # SQLite's bound-parameter limit
                chunk = keys[start:start + 500]
                rows = self._db.execute(
                    "SELECT key, score, text, input_tokens, output_tokens FROM judgements WHERE key IN (%s)"
                    % ",".join("?" * len(chunk)), chunk)
                for k, score, text, tin, tout in rows:
                    out[k] = {"score": score, "text": text, "input_tokens": tin, "output_tokens": tout}
        except sqlite3.OperationalError as e:
            if "no such table" not in str(e):
                raise
        return out

    def put(self, key: str, model: str, rubric: str, score: Optional[float], text: str, input_tokens: int,
            output_tokens: int) -> None:
        """Store one judge answer; score None: the answer did not parse."""
        assert self._db is not None, "cache opened read-only"
        self._db.execute("INSERT OR REPLACE INTO judgements VALUES (?,?,?,?,?,?,?,?)",
                         (key, model, rubric, score, text, input_tokens, output_tokens, time.time()))
        self._pending += 1
        if self._pending >= _COMMIT_EVERY:
            self.flush()

    def set_score(self, key: str, score: float) -> None:
        """A stored answer that did not parse then, read now: keep its score (a no-op on a read-only cache)."""
        if self._db is not None and not self.readonly:
            self._db.execute("UPDATE judgements SET score = ? WHERE key = ?", (score, key))
            self._pending += 1

    def flush(self) -> None:
        if self._db is not None and self._pending:
            self._db.commit()
            self._pending = 0

    def close(self) -> None:
        if self._db is not None:
            self.flush()
            self._db.close()
            self._db = None

    def __enter__(self) -> "JudgeCache":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
