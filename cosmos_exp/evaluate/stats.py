"""Percentile-bootstrap confidence intervals for means, ratios of means, paired differences and resampled
statistics."""

import functools
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np


_MAX_CACHED_COUNTS = 4_000_000  # samples x items of one cached count matrix (32 MB)


def bootstrap_indices(n: int, samples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(samples, n))


@functools.lru_cache(maxsize=2)
def _resample_counts(n: int, samples: int, seed: int) -> Optional[np.ndarray]:
    """How often each item is drawn in each resample (samples x n), from the same indices as
    bootstrap_indices: a summary takes many means over the same items (every key, the overall, the strict
    view), and one matrix product per mean is far cheaper than drawing and gathering each time."""
    if n * samples > _MAX_CACHED_COUNTS:
        return None
    rows = bootstrap_indices(n, samples, seed) + (np.arange(samples) * n)[:, None]
    counts = np.bincount(rows.ravel(), minlength=samples * n).reshape(samples, n).astype(float)
    counts.setflags(write=False)
    return counts


def resampled_means(x: np.ndarray, samples: int, seed: int) -> np.ndarray:
    counts = _resample_counts(x.size, samples, seed)
    if counts is None:
        return x[bootstrap_indices(x.size, samples, seed)].mean(axis=1)
    return counts @ x / x.size


def mean_ci(values: Sequence[float], samples: int = 2000, confidence: float = 0.95, seed: int = 0) -> Dict[str, Optional[float]]:
    """Mean of `values` with a percentile-bootstrap CI over items; None bounds when n < 2."""
    x = np.asarray([v for v in values if v is not None], dtype=float)
    if x.size == 0:
        return {"n": 0, "mean": None, "ci_low": None, "ci_high": None}
    if x.size == 1:
        return {"n": 1, "mean": float(x[0]), "ci_low": None, "ci_high": None}
    means = resampled_means(x, samples, seed)
    lo, hi = _percentiles(means, confidence)
    return {"n": int(x.size), "mean": float(x.mean()), "ci_low": lo, "ci_high": hi}


def grouped_mean_ci(values: Sequence[float], groups: Sequence[Any], samples: int = 2000, confidence: float = 0.95,
                    seed: int = 0) -> Dict[str, Any]:
    """Mean over items with a CI that resamples whole groups (the questions of one video are correlated: a
    bootstrap over questions gives too narrow an interval; lmms-eval uses clustered standard errors for such
    sets). Each resample's statistic is the same micro mean: the sum over the drawn groups' items over their count."""
    kept = [(v, g) for v, g in zip(values, groups) if v is not None]
    if not kept:
        return {"n": 0, "groups": 0, "mean": None, "ci_low": None, "ci_high": None}
    index: Dict[Any, int] = {}
    gid = np.asarray([index.setdefault(g, len(index)) for _, g in kept])
    sums = np.bincount(gid, weights=np.asarray([v for v, _ in kept], dtype=float))
    counts = np.bincount(gid).astype(float)
    out: Dict[str, Any] = {"n": len(kept), "groups": len(index), "mean": float(sums.sum() / counts.sum()),
                           "ci_low": None, "ci_high": None}
    if len(index) > 1:
        idx = bootstrap_indices(len(index), samples, seed)
        out["ci_low"], out["ci_high"] = _percentiles(sums[idx].sum(axis=1) / counts[idx].sum(axis=1), confidence)
    return out


def paired_diff_ci(a: Sequence[float], b: Sequence[float], samples: int = 2000, confidence: float = 0.95,
                   seed: int = 0, higher_is_better: Optional[bool] = True,
                   groups: Optional[Sequence[Any]] = None) -> Dict[str, Optional[float]]:
    """Mean of b - a over pairs where both exist, with a bootstrap CI and a verdict (see verdict()). With
    `groups` (one per pair, e.g. the video of each question) the CI resamples groups, the same ones for both
    sides (a paired bootstrap, Koehn 2004)."""
    rows = [(x, y, g) for x, y, g in zip(a, b, groups if groups is not None else [None] * len(a))
            if x is not None and y is not None]
    pairs = [(x, y) for x, y, _ in rows]
    if groups is not None:
        out = grouped_mean_ci([y - x for x, y in pairs], [g for _, _, g in rows], samples, confidence, seed)
    else:
        out = mean_ci([y - x for x, y in pairs], samples, confidence, seed)
    out["mean_a"] = float(np.mean([x for x, _ in pairs])) if pairs else None
    out["mean_b"] = float(np.mean([y for _, y in pairs])) if pairs else None
    out["verdict"] = verdict(out["ci_low"], out["ci_high"], higher_is_better)
    return out


def ratio_ci(num: Sequence[float], den: Sequence[float], samples: int = 2000, confidence: float = 0.95,
             seed: int = 0) -> Dict[str, Optional[float]]:
    """sum(num) / sum(den) over items where both exist (a ratio of means), with a CI that resamples items and
    recomputes the ratio; a mean of per-item ratios would weigh small denominators far too much."""
    n, d = _complete(num, den)
    value = _ratio(n, d)
    lo, hi = statistic_ci(n.size, lambda idx: _ratio(n[idx], d[idx]), samples, confidence, seed) if value is not None \
        else (None, None)
    return {"n": int(n.size), "value": value, "ci_low": lo, "ci_high": hi}


def paired_ratio_diff_ci(num_a: Sequence[float], den_a: Sequence[float], num_b: Sequence[float],
                         den_b: Sequence[float], samples: int = 2000, confidence: float = 0.95, seed: int = 0,
                         higher_is_better: Optional[bool] = None) -> Dict[str, Optional[float]]:
    """Ratio of means of b minus that of a over items where all four exist, resampling the same items for both;
    laid out like paired_diff_ci (mean = the difference, mean_a / mean_b = the two ratios)."""
    na, da, nb, db = _complete(num_a, den_a, num_b, den_b)
    ra, rb = _ratio(na, da), _ratio(nb, db)
    if ra is None or rb is None:
        return {"n": int(na.size), "mean": None, "ci_low": None, "ci_high": None, "mean_a": ra, "mean_b": rb,
                "verdict": verdict(None, None)}
    lo, hi = statistic_ci(na.size, lambda idx: _ratio(nb[idx], db[idx]) - _ratio(na[idx], da[idx]), samples,
                          confidence, seed)
    return {"n": int(na.size), "mean": rb - ra, "ci_low": lo, "ci_high": hi, "mean_a": ra, "mean_b": rb,
            "verdict": verdict(lo, hi, higher_is_better)}


def _complete(*columns: Sequence[Optional[float]]) -> Tuple[np.ndarray, ...]:
    rows = [r for r in zip(*columns) if all(v is not None for v in r)]
    return tuple(np.asarray([r[i] for r in rows], dtype=float) for i in range(len(columns)))


def _ratio(num: np.ndarray, den: np.ndarray) -> Optional[float]:
    total = float(den.sum())
    return float(num.sum()) / total if num.size and total != 0 else None


def statistic_ci(n: int, statistic: Callable[[np.ndarray], float], samples: int = 2000,
                 confidence: float = 0.95, seed: int = 0) -> Tuple[Optional[float], Optional[float]]:
    """CI of any statistic of resampled item indices (e.g. corpus BLEU from summed n-gram counts)."""
    if n < 2:
        return None, None
    values = np.array([statistic(idx) for idx in bootstrap_indices(n, samples, seed)], dtype=float)
    return _percentiles(values, confidence)


def verdict(lo: Optional[float], hi: Optional[float], higher_is_better: Optional[bool] = True) -> str:
    """From the CI of b - a: which side is better (for an error, lower is), or for a quantity with no better
    direction (a signed error, a ratio whose ideal is 1) which is higher."""
    if lo is None or hi is None:
        return "too few paired items"
    if lo <= 0 <= hi:
        return "no significant difference"
    b_higher = lo > 0
    if higher_is_better is None:
        return "b higher" if b_higher else "b lower"
    return "b better" if b_higher == higher_is_better else "a better"


def _percentiles(values: np.ndarray, confidence: float) -> Tuple[float, float]:
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return float(lo), float(hi)
