"""What a reasoning model answered, without its reasoning: `<think>...</think>` removed and the `<answer>` block
taken when there is one, before anything parses the text (caption JSON, MCQ letters, LingoQA answers, judge
inputs). lmms-eval strips reasoning tags before it extracts an answer; the Cosmos-Reason benchmark reads the
answer inside `<answer>`; a letter or a `{` inside the reasoning is a draft, not the answer.
"""

import re
from typing import Optional

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_OPEN, _CLOSE = re.compile(r"<think>", re.IGNORECASE), re.compile(r"</think>", re.IGNORECASE)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)


def strip_reasoning(text: Optional[str]) -> str:
    """The text with every reasoning block removed.

    Chat templates that open `<think>` in the prompt leave only the closing tag in the output: everything before
    the last `</think>` is reasoning. An unclosed `<think>` means the answer was cut off inside the reasoning
    (max_new_tokens): nothing after it is an answer."""
    if not text:
        return ""
    text = _THINK.sub("", text)
    closes = list(_CLOSE.finditer(text))
    if closes:
        text = text[closes[-1].end():]
    opened = _OPEN.search(text)
    if opened:
        text = text[:opened.start()]
    return text.strip()


def answer_block(text: str) -> Optional[str]:
    """The content of the first `<answer>...</answer>` block, stripped; None when there is none."""
    m = _ANSWER.search(text)
    return m.group(1).strip() if m else None


def final_answer(text: Optional[str]) -> str:
    """The answer a reasoning model gave: the `<answer>` block outside the reasoning, else the whole rest."""
    rest = strip_reasoning(text)
    block = answer_block(rest)
    return rest if block is None else block
