"""Keep API keys and tokens out of run directories.

Two nets: config values under secret-looking names are redacted before they are written, and every
text file of a run directory is scrubbed of the values of secret-looking environment variables
(so a key that reached a log line or an override file is still caught).
"""

import os
import re
from pathlib import Path
from typing import Any, List, Mapping, Optional

REDACTED = "***REDACTED***"
# A name is secret when its last word is key/token/secret/password/credential(s):
# OPENAI_API_KEY, hf_token, wandb.api_key, db_password - but not max_tokens or api_key_env.
_SECRET_NAME = re.compile(r"(^|[_.\-])(api_?key|key|token|secret|password|passwd|credentials?)$", re.IGNORECASE)
_MIN_SECRET_LEN = 6  # shorter values would scrub innocent text
_TEXT_SUFFIXES = {".yaml", ".yml", ".json", ".txt", ".log", ".toml", ".md", ".csv", ".jsonl", ".out", ".err", ""}
_MAX_SCRUB_BYTES = 50 * 1024 * 1024


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def secret_values(environ: Optional[Mapping[str, str]] = None) -> List[str]:
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if is_secret_name(k) and len(v) >= _MIN_SECRET_LEN}
    return sorted(values, key=len, reverse=True)


def redact_text(text: str, secrets: Optional[List[str]] = None) -> str:
    for value in secret_values() if secrets is None else secrets:
        text = text.replace(value, REDACTED)
    return text


def redact_tree(obj: Any, secrets: Optional[List[str]] = None) -> Any:
    """Copy of a plain dict/list tree with secret-named keys and secret values replaced."""
    secrets = secret_values() if secrets is None else secrets
    if isinstance(obj, dict):
        return {k: (REDACTED if is_secret_name(str(k)) and obj[k] not in (None, "") else redact_tree(v, secrets))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact_tree(v, secrets) for v in obj]
    if isinstance(obj, str):
        return redact_text(obj, secrets)
    return obj


def scrub_dir(root: Path) -> List[Path]:
    """Replace secret env values in every text file under `root`; return the files changed."""
    secrets = secret_values()
    changed: List[Path] = []
    if not secrets:
        return changed
    for path in Path(root).rglob("*"):
        if not path.is_file() or path.is_symlink() or path.suffix not in _TEXT_SUFFIXES:
            continue
        if path.stat().st_size > _MAX_SCRUB_BYTES:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        clean = redact_text(text, secrets)
        if clean != text:
            tmp = path.with_name(path.name + ".scrub.tmp")
            tmp.write_text(clean, encoding="utf-8")
            os.replace(tmp, path)
            changed.append(path)
    return changed
