"""LingoQA scored as the official benchmark scores it, and an LLM-judge substitute under another name.

Metric `lingoqa` is the benchmark's Lingo-Judge classifier (a sequence classifier with one logit, loaded from a
local directory) applied by the benchmark's rules: the references and the prediction lower-cased and stripped
(not the question: the tokenizer is case-sensitive, so skipping this changes verdicts), the input
`{cls_token}\\nQuestion: {q}\\nAnswer: {reference}\\nStudent: {prediction}` with the tokenizer's own CLS token,
tokenised with truncation at 128 tokens; a prediction is correct when its best logit over the references is
above 0; the score is correct / questions.

Metric `lingoqa_llm` asks the LLM judge for a 0/1 verdict with the lingoqa rubric. It is a different metric, not
comparable with published LingoQA numbers, so it never carries the LingoQA name.
"""

from pathlib import Path
from typing import Any, List, Tuple

from cosmos_exp.infer.reasoning import final_answer

LINGO_CLASSIFIER, LINGO_LLM = "lingo_judge_classifier", "llm_judge"  # how each metric is scored (in its summary)
MAX_LENGTH = 128  # the benchmark's truncation


def preprocess(text: str) -> str:
    """The benchmark's preprocessing of references and predictions."""
    return text.lower().strip()


def classifier_text(cls_token: str, question: str, reference: str, prediction: str) -> str:
    """The classifier's input for one reference (reference and prediction already preprocessed)."""
    return f"{cls_token}\nQuestion: {question}\nAnswer: {reference}\nStudent: {prediction}"


class LingoJudge:
    """The classifier from a local Hugging Face directory (torch/transformers imported only here)."""

    def __init__(self, path: str) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if not (Path(path) / "config.json").is_file():
            raise FileNotFoundError(f"Lingo-Judge classifier not found: {path}/config.json is missing")
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        if not self.tokenizer.cls_token:
            raise ValueError(f"the tokenizer in {path} has no cls_token, which the LingoQA input starts with")
        self.model = AutoModelForSequenceClassification.from_pretrained(path).eval()

    def logit(self, question: str, reference: str, prediction: str) -> float:
        """The logit of one (reference, prediction) pair, both already preprocessed."""
        text = classifier_text(self.tokenizer.cls_token, question, reference, prediction)
        enc = self.tokenizer(text, return_tensors="pt", truncation=True, max_length=MAX_LENGTH)
        with self.torch.no_grad():
            logits = self.model(**enc).logits[0]
        # One output: the logit itself; two classes: log-odds of "correct" (index 1).
        return float(logits[0] if logits.numel() == 1 else logits[1] - logits[0])

    def judge(self, question: str, references: List[str], prediction: str) -> Tuple[bool, float]:
        """(correct, best logit): the maximum over the references counts."""
        pred = preprocess(prediction)
        best = max(self.logit(question, preprocess(r), pred) for r in references)
        return best > 0.0, best


def lingoqa_fields(rec: Any) -> Tuple[str, List[str], str]:
    """(question, reference answers, prediction) of one caption record of task lingoqa."""
    ref = rec.get("reference") or {}
    answers = ref.get("answers") if isinstance(ref, dict) else None
    if isinstance(answers, str):
        answers = [answers]
    # The dataset's question as written (meta.question): the record's `question` is the whole user turn, the
    # prompt's instruction included, which the benchmark's classifier never sees.
    meta = rec.get("meta") if isinstance(rec.get("meta"), dict) else {}
    question = meta.get("question") or (ref.get("question") if isinstance(ref, dict) else None) \
        or rec.get("question") or ""
    parsed = rec.get("parsed")
    prediction = parsed.get("answer") if isinstance(parsed, dict) and isinstance(parsed.get("answer"), str) else None
    # A reasoning model's answer without its <think> block (the <answer> block when there is one).
    return str(question), [str(a) for a in (answers or [])], (prediction or final_answer(rec.get("raw_text"))).strip()
