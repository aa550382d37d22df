"""Data fingerprints: the content hash of every clip a run read, so a number walks back to the exact data.

`data_fingerprints.json` in the run directory lists them per split ({split: {"digest", "clips": {path: sha256}}});
run.json's "data" holds each split's digest and clip count. A split's digest is the sha256 of its clips' sorted
content hashes, so the same clips moved to another folder keep their digest and any changed byte changes it.
"""

import hashlib
from pathlib import Path
from typing import Any, Dict, Iterable, Optional

from cosmos_exp import rundir
from cosmos_exp.repro.atomic import write_json_atomic


def split_fingerprint(videos: Iterable[str], hashes: Any) -> Dict[str, Any]:
    """{"digest", "clips": {path: sha256}} of one split; `hashes` is a data.content_hash.ContentHashes."""
    clips = {str(v): hashes.of(v) for v in sorted(set(str(v) for v in videos))}
    digest = hashlib.sha256("\n".join(sorted(clips.values())).encode("ascii")).hexdigest()
    return {"digest": digest, "clips": clips}


def write_fingerprints(run_dir: Path, videos: Dict[str, Iterable[str]], hashes: Any) -> None:
    write_json_atomic(Path(run_dir) / rundir.DATA_FINGERPRINTS,
                      {split: split_fingerprint(v, hashes) for split, v in videos.items()})


def fingerprint_summary(run_dir: Path) -> Optional[Dict[str, Any]]:
    """What run.json records: each split's digest and clip count, and where the list is (None: no list)."""
    data = rundir.read_json_optional(Path(run_dir) / rundir.DATA_FINGERPRINTS)
    if not data:
        return None
    return {split: {"digest": d["digest"], "clips": len(d["clips"]), "list": rundir.DATA_FINGERPRINTS}
            for split, d in data.items()}
