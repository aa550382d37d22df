"""Tolerant reads for the judge's inputs; writes go through cosmos_exp.repro.atomic."""

import json
from pathlib import Path
from typing import Any


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)
