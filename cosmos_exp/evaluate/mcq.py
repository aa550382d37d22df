"""Multiple-choice answers: pull one option letter out of free model text.

First the text is NFKC-normalised (a full-width `Ｂ` is `B`) and a reasoning model's `<think>` block removed;
when an `<answer>` block remains, only its content is read (the Cosmos-Reason benchmark's rule). Order of
evidence: a JSON {"answer": ...}; the `<answer>` block; "answer/option/choice is X"; a bare letter token;
finally the text of exactly one option. Two different letters with equal evidence is ambiguous and counts
as unparseable (wrong), never as a guess.
"""

import re
import unicodedata
from typing import Dict, Iterable, Optional, Tuple

from cosmos_exp.evaluate.local import normalise
from cosmos_exp.infer.reasoning import answer_block, strip_reasoning

DEFAULT_LETTERS = "ABCD"


def parse_choice(text: Optional[str], options: Optional[Dict[str, str]] = None,
                 parsed: Optional[dict] = None) -> Tuple[Optional[str], str]:
    """(letter or None, how): how is json | tag | phrase | letter | option_text | multiple | none."""
    letters = "".join(sorted(k.upper() for k in options)) if options else DEFAULT_LETTERS
    if isinstance(parsed, dict):
        for key in ("answer", "choice", "option"):
            if isinstance(parsed.get(key), str):
                got = _single(_letters_in(_nfkc(parsed[key]), letters, strict_case=False))
                if got:
                    return got, "json"
    text = strip_reasoning(_nfkc(text or ""))
    block = answer_block(text)
    if block is not None:
        letter, how = _parse_text(block, letters, options)
        return letter, ("tag" if letter else how)
    if not text:
        return None, "none"
    return _parse_text(text, letters, options)


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def _parse_text(text: str, letters: str, options: Optional[Dict[str, str]]) -> Tuple[Optional[str], str]:
    if not text:
        return None, "none"
    up, low = re.escape(letters), re.escape(letters.lower())
    # A lower-case letter after "answer is" must end the phrase ("answer is b."), or "answer is a car" would count.
    tail = rf"(?:([{up}])\)?(?=$|[\s.,;:!)\]])|([{low}])\)?(?=$|[.,;:!)\]]))"
    for how, pattern in (
        ("phrase", rf"\b(?i:answer)\b(?:\s+(?i:is))?\s*[:\-]?\s*(?:(?i:option)\s+)?\(?{tail}"),
        ("phrase", rf"\b(?i:option|choice)\b(?:\s+(?i:is))?\s*[:\-]?\s*\(?{tail}"),
    ):
        found = {"".join(m if isinstance(m, tuple) else (m,)).upper() for m in re.findall(pattern, text)}
        if len(found) == 1:
            return found.pop(), how
        if len(found) > 1:
            return None, "multiple"
    found = _letters_in(text, letters, strict_case=True)
    if len(found) == 1:
        return found.pop(), "letter"
    if len(found) > 1:
        return None, "multiple"
    if options:
        norm = normalise(text)
        hits = {k.upper() for k, v in options.items() if normalise(str(v)) and normalise(str(v)) in norm}
        if len(hits) == 1:
            return hits.pop(), "option_text"
        if len(hits) > 1:
            return None, "multiple"
    return None, "none"


def _letters_in(text: str, letters: str, strict_case: bool) -> set:
    """Standalone option letters. Upper case anywhere (except the article 'A word'); a lower-case letter
    only when it is the whole answer or is bracketed/punctuated like a choice ('b)', '(c)', 'd.')."""
    found = set()
    stripped = text.strip()
    if re.fullmatch(r"\(?[A-Za-z]\)?[.):]?", stripped) and stripped.strip("().:").upper() in letters:
        return {stripped.strip("().:").upper()}
    for m in re.finditer(rf"(?<![A-Za-z0-9'])\(?([{re.escape(letters)}])\)?(?![A-Za-z0-9'])", text):
        letter = m.group(1)
        if letter == "A" and re.match(r" [a-z]", text[m.end():]) and not re.match(r" (or|and|nor)\b", text[m.end():]) \
                and not m.group(0).startswith("("):
            continue  # "A car turns left" - the article, not option A
        found.add(letter)
    if not strict_case:
        found |= {m.upper() for m in re.findall(rf"\(([{re.escape(letters.lower())}])\)", text)}
    else:
        found |= {m.group(1).upper() for m in re.finditer(rf"(?<![A-Za-z])\(?([{re.escape(letters.lower())}])[).](?=\s|$)", text)}
    return found


def _single(found: Iterable[str]) -> Optional[str]:
    found = set(found)
    return found.pop() if len(found) == 1 else None
