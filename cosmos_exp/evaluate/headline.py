"""Each metric's headline number with its confidence interval, read from a judge run's summary.json.

One place that knows where summarise() (evaluate/scoring.py) keeps each headline's n and CI: the judge stage
prints them, the sweep report tabulates and ranks them.
"""

from typing import Any, Dict, List, Optional

# metric -> the block of its summary holding the headline's n, ci_low and ci_high.
CI_FIELD = {"llm_judge": "overall", "local": "overall", "bleu": "corpus", "mcq": "accuracy", "lingoqa": "accuracy",
            "lingoqa_llm": "accuracy", "trajectory": "min_ade"}  # the headline source's minADE (evaluate/trajectory.summarise), metres
# Headlines where smaller is better (displacement errors); every other headline is a score or an accuracy.
LOWER_IS_BETTER = ("trajectory",)
SCALED = ("bleu",)  # metrics whose number comes on more than one scale: the scale is printed with it


def best_of(metric: str, values: List[float]) -> float:
    """The best headline value among `values` for this metric's direction."""
    return min(values) if metric in LOWER_IS_BETTER else max(values)


def headline_ci(metric: str, summary: Dict[str, Any]) -> Dict[str, Any]:
    """The metric's headline with its CI bounds, item count and scale (None where the summary has none)."""
    block = summary.get(CI_FIELD.get(metric, ""), {}) or {}
    return {"headline": summary.get("headline"), "ci_low": block.get("ci_low"), "ci_high": block.get("ci_high"),
            "n": block.get("n"), "scale": scale_of(metric, summary)}


def scale_of(metric: str, summary: Dict[str, Any]) -> Optional[str]:
    """The scale a number of this metric is on, where one metric has two (BLEU: 0-100 or 0-1); None otherwise.
    A BLEU summary written before the scale was a setting was on sacrebleu's 0-100."""
    if metric not in SCALED:
        return None
    return str(summary.get("scale") or "0-100").split(" ")[0]


def label(metric: str, scale: Optional[str]) -> str:
    """The metric's name with its scale where it has one: `bleu (0-100)`."""
    return f"{metric} ({scale})" if scale else metric


def describe(metrics: Dict[str, Dict[str, Any]], confidence: float = 0.95) -> str:
    """One line for people: `local 3.92 [3.67, 4.19] n=9; bleu (0-100) 31.76 [8.31, 53.19] n=16` (95% CIs)."""
    parts = []
    for metric, summary in metrics.items():
        h = headline_ci(metric, summary)
        name = label(metric, h["scale"])
        if h["headline"] is None:
            parts.append(f"{name} - (no item scored)")
            continue
        ci = f" [{h['ci_low']:.4g}, {h['ci_high']:.4g}]" if h["ci_low"] is not None and h["ci_high"] is not None else ""
        n = f" n={h['n']}" if h["n"] is not None else ""
        parts.append(f"{name} {h['headline']:.4g}{ci}{n}")
    return "; ".join(parts) + f" ({round(100 * confidence)}% CIs in brackets)"


def headlines(summary: Dict[str, Any]) -> Dict[str, Any]:
    """metric -> its headline number, from a whole summary.json (what a judge or evaluate run returns)."""
    return {m: v.get("headline") for m, v in (summary.get("metrics") or {}).items() if isinstance(v, dict)}
