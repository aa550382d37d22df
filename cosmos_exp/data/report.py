"""What reading a split found: items found and used, and every item skipped with its file and reason (strict
mode raises DataError at the first instead). Every reader of data/ fills one; stages write it to data_report.json.
A blend's report also holds one report per source (`sources`), and counts theirs in its totals."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from cosmos_exp.config.errors import DataError


@dataclass
class DataReport:
    dataset: str
    split: str
    found: int = 0
    used: int = 0
    skipped: List[Tuple[str, str]] = field(default_factory=list)  # (file, reason)
    sources: Dict[str, "DataReport"] = field(default_factory=dict)

    def skip(self, path, reason: str, kind: str, strict: bool) -> None:
        if strict:
            raise DataError(f"{path}: {reason} (dataset.strict=true stops at the first bad item)")
        self.skipped.append((str(path), f"{kind}: {reason}"))

    def add_source(self, name: str, sub: "DataReport") -> None:
        """A blend source's report, read on its own: kept by name and counted in this one."""
        self.sources[name] = sub
        self.found += sub.found
        self.used += sub.used
        self.skipped += sub.skipped

    def drop(self, path, reason: str, kind: str, strict: bool = False, source: Optional[str] = None) -> None:
        """An item counted as used that is left out after all (e.g. too long to train), in its source's report too."""
        self.skip(path, reason, kind, strict)
        self.used -= 1
        if source in self.sources:
            self.sources[source].skipped.append(self.skipped[-1])
            self.sources[source].used -= 1

    @property
    def counts(self) -> Dict[str, int]:
        return dict(Counter(reason.split(":", 1)[0] for _, reason in self.skipped))

    def to_dict(self) -> dict:
        out = {"dataset": self.dataset, "split": self.split, "found": self.found, "used": self.used,
               "skipped": len(self.skipped), "skipped_by_kind": self.counts,
               "skipped_items": [{"file": f, "reason": r} for f, r in self.skipped]}
        if self.sources:
            out["sources"] = {name: sub.to_dict() for name, sub in self.sources.items()}
        return out

    def summary(self) -> str:
        text = f"{self.dataset}/{self.split}: {self.used} of {self.found} items used, {len(self.skipped)} skipped"
        if self.skipped:
            text += " (" + ", ".join(f"{k}: {n}" for k, n in sorted(self.counts.items())) + ")"
        if self.sources:
            text += "; by source: " + ", ".join(f"{name} {sub.used} of {sub.found}" for name, sub in self.sources.items())
        return text
