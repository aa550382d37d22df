"""Percentile-bootstrap confidence intervals for means, paired differences and resampled statistics."""

from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np


def bootstrap_indices(n: int, samples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(samples, n))


def mean_ci(values: Sequence[float], samples: int = 2000, confidence: float = 0.95, seed: int = 0) -> Dict[str, Optional[float]]:
    """Mean of `values` with a percentile-bootstrap CI over items; None bounds when n < 2."""
    x = np.asarray([v for v in values if v is not None], dtype=float)
    if x.size == 0:
        return {"n": 0, "mean": None, "ci_low": None, "ci_high": None}
    if x.size == 1:
        return {"n": 1, "mean": float(x[0]), "ci_low": None, "ci_high": None}
    means = x[bootstrap_indices(x.size, samples, seed)].mean(axis=1)
    lo, hi = _percentiles(means, confidence)
    return {"n": int(x.size), "mean": float(x.mean()), "ci_low": lo, "ci_high": hi}


def paired_diff_ci(a: Sequence[float], b: Sequence[float], samples: int = 2000, confidence: float = 0.95,
                   seed: int = 0) -> Dict[str, Optional[float]]:
    """Mean of b - a over pairs where both exist, with a bootstrap CI and the share of resamples with b > a."""
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    out = mean_ci([y - x for x, y in pairs], samples, confidence, seed)
    out["mean_a"] = float(np.mean([x for x, _ in pairs])) if pairs else None
    out["mean_b"] = float(np.mean([y for _, y in pairs])) if pairs else None
    out["verdict"] = verdict(out["ci_low"], out["ci_high"])
    return out


def statistic_ci(n: int, statistic: Callable[[np.ndarray], float], samples: int = 2000,
                 confidence: float = 0.95, seed: int = 0) -> Tuple[Optional[float], Optional[float]]:
    """CI of any statistic of resampled item indices (e.g. corpus BLEU from summed n-gram counts)."""
    if n < 2:
        return None, None
    values = np.array([statistic(idx) for idx in bootstrap_indices(n, samples, seed)], dtype=float)
    return _percentiles(values, confidence)


def verdict(lo: Optional[float], hi: Optional[float]) -> str:
    if lo is None or hi is None:
        return "too few paired items"
    if lo > 0:
        return "b better"
    if hi < 0:
        return "a better"
    return "no significant difference"


def _percentiles(values: np.ndarray, confidence: float) -> Tuple[float, float]:
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return float(lo), float(hi)
