"""LingoQA scoring. The official benchmark uses the Lingo-Judge classifier (a DeBERTa sequence
classifier over "Question / Answer / Student" text; correct when the best logit over the reference
answers is above 0). It is loaded from a local directory when one is configured; otherwise the LLM
judge with the lingoqa rubric gives a 0/1 verdict. The summary records which one was used."""

from pathlib import Path
from typing import Any, List, Tuple

from cosmos_exp.infer.reasoning import final_answer

# How a run scored LingoQA (recorded in its summary): the classifier, or the LLM judge's verdict.
LINGO_CLASSIFIER, LINGO_LLM = "lingo_judge_classifier", "llm_judge"


def classifier_text(question: str, reference: str, prediction: str) -> str:
    return f"[CLS]\nQuestion: {question}\nAnswer: {reference}\nStudent: {prediction}"


class LingoJudge:
    """The classifier from a local Hugging Face directory (torch/transformers imported only here)."""

    def __init__(self, path: str) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if not (Path(path) / "config.json").is_file():
            raise FileNotFoundError(f"Lingo-Judge classifier not found: {path}/config.json is missing")
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForSequenceClassification.from_pretrained(path).eval()

    def logit(self, question: str, reference: str, prediction: str) -> float:
        enc = self.tokenizer(classifier_text(question, reference, prediction), return_tensors="pt", truncation=True)
        with self.torch.no_grad():
            logits = self.model(**enc).logits[0]
        # One output: the logit itself; two classes: log-odds of "correct" (index 1).
        return float(logits[0] if logits.numel() == 1 else logits[1] - logits[0])

    def judge(self, question: str, references: List[str], prediction: str) -> Tuple[bool, float]:
        best = max(self.logit(question, r, prediction) for r in references)
        return best > 0.0, best


def lingoqa_fields(rec: Any) -> Tuple[str, List[str], str]:
    """(question, reference answers, prediction) of one caption record of task lingoqa."""
    ref = rec.get("reference") or {}
    answers = ref.get("answers") if isinstance(ref, dict) else None
    if isinstance(answers, str):
        answers = [answers]
    question = rec.get("question") or (ref.get("question") if isinstance(ref, dict) else None) or ""
    parsed = rec.get("parsed")
    prediction = parsed.get("answer") if isinstance(parsed, dict) and isinstance(parsed.get("answer"), str) else None
    # A reasoning model's answer without its <think> block (the <answer> block when there is one).
    return str(question), [str(a) for a in (answers or [])], (prediction or final_answer(rec.get("raw_text"))).strip()
