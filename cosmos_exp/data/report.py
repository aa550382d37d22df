"""What reading a split found: items found and used, and every item skipped with its file and reason (strict
mode raises DataError at the first instead). Every reader of data/ fills one; stages write it to data_report.json."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

from cosmos_exp.config.errors import DataError


@dataclass
class DataReport:
    dataset: str
    split: str
    found: int = 0
    used: int = 0
    skipped: List[Tuple[str, str]] = field(default_factory=list)  # (file, reason)

    def skip(self, path, reason: str, kind: str, strict: bool) -> None:
        if strict:
            raise DataError(f"{path}: {reason} (dataset.strict=true stops at the first bad item)")
        self.skipped.append((str(path), f"{kind}: {reason}"))

    @property
    def counts(self) -> Dict[str, int]:
        return dict(Counter(reason.split(":", 1)[0] for _, reason in self.skipped))

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "split": self.split, "found": self.found, "used": self.used,
                "skipped": len(self.skipped), "skipped_by_kind": self.counts,
                "skipped_items": [{"file": f, "reason": r} for f, r in self.skipped]}

    def summary(self) -> str:
        text = f"{self.dataset}/{self.split}: {self.used} of {self.found} items used, {len(self.skipped)} skipped"
        if self.skipped:
            text += " (" + ", ".join(f"{k}: {n}" for k, n in sorted(self.counts.items())) + ")"
        return text
