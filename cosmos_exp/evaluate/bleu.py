"""BLEU with sacrebleu: corpus score, per-item sentence scores, the signature, and a bootstrap CI that
resamples items and recomputes corpus BLEU from their summed n-gram statistics.

Two scales, and the number always travels with its scale: "0-100" is sacrebleu's, "0-1" is sacrebleu / 100
(Hugging Face `evaluate`'s BLEU, and the scale of the cookbook's published 0.113 -> 0.125)."""

from typing import Any, Dict, List, Sequence

import numpy as np

from cosmos_exp.evaluate.stats import statistic_ci

FACTOR = {"0-100": 1.0, "0-1": 0.01}  # eval.bleu_scale -> multiplier of sacrebleu's score


def _bleu(effective_order: bool = False):
    from sacrebleu.metrics import BLEU

    return BLEU(effective_order=effective_order)


def segment_stats(hypotheses: Sequence[str], references: Sequence[str]) -> List[List[int]]:
    """Per item: [hyp_len, ref_len, correct_1..4, total_1..4], exactly what sacrebleu sums for a corpus."""
    stats = _bleu()._extract_corpus_statistics(list(hypotheses), [list(references)])
    return [[int(v) for v in s] for s in stats]


def score_from_stats(stats: np.ndarray, scale: str = "0-100") -> float:
    return float(_bleu()._compute_score_from_stats(np.asarray(stats).sum(axis=0).tolist()).score) * FACTOR[scale]


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str], samples: int = 0, confidence: float = 0.95,
                seed: int = 0, scale: str = "0-100") -> Dict[str, Any]:
    bleu = _bleu()
    result = bleu.corpus_score(list(hypotheses), [list(references)])
    out: Dict[str, Any] = {"score": float(result.score) * FACTOR[scale], "scale": scale,
                           "signature": str(bleu.get_signature()), "n": len(hypotheses), "ci_low": None, "ci_high": None}
    if samples and len(hypotheses) > 1:
        stats = np.asarray(segment_stats(hypotheses, references))
        out["ci_low"], out["ci_high"] = statistic_ci(len(stats), lambda idx: score_from_stats(stats[idx], scale),
                                                     samples, confidence, seed)
    return out


def sentence_bleu(hypothesis: str, reference: str, scale: str = "0-100") -> float:
    # effective_order: a short sentence without 4-gram matches is not scored 0 outright (sacrebleu's advice).
    return float(_bleu(effective_order=True).sentence_score(hypothesis, [reference]).score) * FACTOR[scale]
