"""A free per-key scorer for pre-screening checkpoints without an API: normalised exact match and
token F1, mapped onto the judge's 1-5 scale (exact match 5, otherwise 1 + 4 * F1)."""

import re
import unicodedata
from collections import Counter
from typing import Dict, List

_NON_WORD = re.compile(r"[^0-9a-z]+")


def normalise(text: str) -> str:
    # NFKC folds look-alike characters (the labels use non-breaking hyphens) before punctuation is dropped.
    text = unicodedata.normalize("NFKC", text).lower()
    return _NON_WORD.sub(" ", text).strip()


def tokens(text: str) -> List[str]:
    return normalise(text).split()


def token_f1(prediction: str, reference: str) -> float:
    p, r = tokens(prediction), tokens(reference)
    if not p and not r:
        return 1.0
    common = sum((Counter(p) & Counter(r)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def local_score(prediction: str, reference: str) -> Dict[str, float]:
    exact = normalise(prediction) == normalise(reference)
    f1 = 1.0 if exact else token_f1(prediction, reference)
    return {"exact": float(exact), "f1": f1, "score": 5.0 if exact else 1.0 + 4.0 * f1}
