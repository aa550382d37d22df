"""Prompt texts stored as files next to this module, selected by name in the dataset config."""

from functools import lru_cache
from pathlib import Path
from typing import List

PROMPT_DIR = Path(__file__).parent / "prompts"


def available_prompts() -> List[str]:
    return sorted(p.stem for p in PROMPT_DIR.glob("*.txt"))


@lru_cache(maxsize=None)
def load_prompt(name: str) -> str:
    """The prompt text named `name` (file stem under cosmos_exp/data/prompts/), trailing newline dropped."""
    path = PROMPT_DIR / f"{name}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"no prompt named {name!r} at {path}; available: {', '.join(available_prompts())}")
    return path.read_text(encoding="utf-8").rstrip("\n")
