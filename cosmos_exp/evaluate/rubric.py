"""Judge rubrics: versioned prompt files under rubrics/, their hash, and the score-tag parser.

A rubric file has sections started by `== name ==` lines: `meta`, `system` (may be empty), `user` (a str.format
template) and, for caption rubrics, `keys` (one `key: what it records` per line, or the question asked about it).
The meta section says how the answer is read and how values are shown, so a protocol lives in one file:
  score_min / score_max  the scale; a score off it does not parse
  score_tag              the tag around the score: `score` reads <score>N</score>, `answer` <answer>N</answer>
  score_pick             `last` (the judge's final word) or `first` (the cookbook judge's rule)
  values                 how caption values are shown: `render` (lists joined, null as "(none)") or
                         `python_str` (Python's str(), as a `%s` format prints them)
The sha256 of the whole file goes into every cache key, so editing a rubric never reuses old scores.
"""

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Union

RUBRIC_DIR = Path(__file__).parent / "rubrics"
_SECTION = re.compile(r"^== *([a-z_]+) *== *$", re.MULTILINE)
PICKS, VALUE_FORMATS = ("last", "first"), ("render", "python_str")


@dataclass
class Rubric:
    name: str
    path: Path
    sha256: str
    system: str
    user: str
    score_min: int
    score_max: int
    keys: Dict[str, str] = field(default_factory=dict)  # caption key -> what it records (or the question)
    score_tag: str = "score"
    score_pick: str = "last"
    values: str = "render"

    @property
    def version(self) -> str:
        return f"{self.name}@{self.sha256[:12]}"

    @property
    def tag_example(self) -> str:
        return f"<{self.score_tag}>N</{self.score_tag}>"

    def messages(self, **fields: str) -> List[Dict[str, str]]:
        user = {"role": "user", "content": self.user.format(**fields)}
        return [{"role": "system", "content": self.system}, user] if self.system else [user]

    def parse_score(self, text: Optional[str]) -> Optional[int]:
        """The score in the rubric's tag (the last or the first one, as the rubric says), or None if there is no
        tag or its number is off the scale."""
        if not text:
            return None
        found = re.findall(rf"<{self.score_tag}>\s*(-?\d+(?:\.\d+)?)\s*</{self.score_tag}>", text, re.IGNORECASE)
        if not found:
            return None
        value = float(found[-1] if self.score_pick == "last" else found[0])
        if value != int(value) or not self.score_min <= value <= self.score_max:
            return None
        return int(value)


def rubric_path(name_or_path: str) -> Path:
    """A bare name means rubrics/<name>.txt in this package; anything with a suffix is a file path."""
    p = Path(name_or_path)
    if p.suffix:
        return p
    return RUBRIC_DIR / f"{name_or_path}.txt"


def load_rubric(name_or_path: Union[str, Path]) -> Rubric:
    path = rubric_path(str(name_or_path))
    if not path.is_file():
        available = sorted(p.stem for p in RUBRIC_DIR.glob("*.txt"))
        raise FileNotFoundError(f"rubric {str(name_or_path)!r} not found at {path} (available: {available})")
    raw = path.read_bytes()
    text = raw.decode("utf-8")
    sections: Dict[str, str] = {}
    marks = list(_SECTION.finditer(text))
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        sections[m.group(1)] = text[m.end():end].strip("\n")
    for required in ("meta", "user"):
        if required not in sections:
            raise ValueError(f"rubric {path}: missing section '== {required} =='")
    meta = _parse_pairs(sections["meta"])
    keys = _parse_pairs(sections.get("keys", ""))
    tag, pick, values = meta.get("score_tag", "score"), meta.get("score_pick", "last"), meta.get("values", "render")
    if not re.fullmatch(r"[a-z_]+", tag) or pick not in PICKS or values not in VALUE_FORMATS:
        raise ValueError(f"rubric {path}: meta score_tag must be a lower-case word, score_pick one of {PICKS}, "
                         f"values one of {VALUE_FORMATS} (got {tag!r}, {pick!r}, {values!r})")
    return Rubric(
        name=path.stem,
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
        system=sections.get("system", "").strip(),
        user=sections["user"].strip(),
        score_min=int(meta.get("score_min", 1)),
        score_max=int(meta.get("score_max", 5)),
        keys=keys,
        score_tag=tag,
        score_pick=pick,
        values=values,
    )


def _parse_pairs(body: str) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for line in body.splitlines():
        if line.strip() and ":" in line:
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out
