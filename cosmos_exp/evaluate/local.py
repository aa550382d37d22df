"""A free per-key scorer for pre-screening checkpoints without an API: normalised exact match and
token F1, mapped onto the judge's 1-5 scale (exact match 5, otherwise 1 + 4 * F1)."""

import unicodedata
from collections import Counter
from typing import Dict, List


def normalise(text: str) -> str:
    """NFKC (look-alike characters: the labels use non-breaking hyphens; full-width letters), case folded, and
    everything but letters, digits and combining marks of ANY script turned into spaces: an answer in Cyrillic,
    Greek, Devanagari or Chinese keeps its words instead of normalising to nothing."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join("".join(ch if unicodedata.category(ch)[0] in "LNM" else " " for ch in text).split())


def tokens(text: str) -> List[str]:
    return normalise(text).split()


def _plain(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold().strip()


def token_f1(prediction: str, reference: str) -> float:
    p, r = tokens(prediction), tokens(reference)
    if not p and not r:
        return float(_plain(prediction) == _plain(reference))
    common = sum((Counter(p) & Counter(r)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def local_score(prediction: str, reference: str) -> Dict[str, float]:
    p, r = normalise(prediction), normalise(reference)
    # Two answers of punctuation only ("-" vs "?") normalise alike to nothing: compare what was written then.
    exact = p == r if p or r else _plain(prediction) == _plain(reference)
    f1 = 1.0 if exact else token_f1(prediction, reference)
    return {"exact": float(exact), "f1": f1, "score": 5.0 if exact else 1.0 + 4.0 * f1}
