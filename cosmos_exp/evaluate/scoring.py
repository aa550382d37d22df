"""Per-item score records and the run summary of stage=judge (pure functions over prepared work)."""

import hashlib
import json
from collections import Counter, defaultdict
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from cosmos_exp.config.schema import Config
from cosmos_exp.data.labels import caption_target
from cosmos_exp.evaluate import bleu as bleu_mod
from cosmos_exp.evaluate.captions import parsed_caption, render_value
from cosmos_exp.evaluate.client import is_reasoning_model, sent_temperature
from cosmos_exp.evaluate.judging import MISSING_IN_CAPTION, UNPARSED, Work, key_states, value_format
from cosmos_exp.evaluate.lingoqa import LINGO_CLASSIFIER, LINGO_LLM, MAX_LENGTH, lingoqa_fields
from cosmos_exp.evaluate.local import local_score
from cosmos_exp.evaluate.mcq import parse_choice
from cosmos_exp.evaluate.stats import grouped_mean_ci, mean_ci
from cosmos_exp.infer.parse import unfenced
from cosmos_exp.infer.reasoning import final_answer

_MAX_LISTED_FAILURES = 100
WHOLE_CAPTION = "whole_caption"  # eval.bleu_reference: the cookbook's whole-caption comparison


def score_items(cfg: Config, work: Work, outcomes: Dict[str, Any], lingo: Any = None) -> List[Dict[str, Any]]:
    metrics = list(cfg.eval.metrics)
    items = []
    for rec in work.run.items:
        item: Dict[str, Any] = {"id": rec["id"], "task": rec["task"], "caption_file": rec["_file"],
                                "caption_sha256": _sha(rec), "metrics": {}}
        if rec["task"] == "caption":
            if "llm_judge" in metrics:
                item["metrics"]["llm_judge"] = _llm_keys(rec, work, outcomes)
            if "local" in metrics:
                item["metrics"]["local"] = _local_keys(rec, work)
            if "bleu" in metrics:
                item["metrics"]["bleu"] = _bleu_item(rec, work, cfg.eval.bleu_reference, cfg.eval.bleu_scale)
        elif rec["task"] == "mcq" and "mcq" in metrics:
            item["metrics"]["mcq"] = _mcq_item(rec)
        elif rec["task"] == "lingoqa":
            if "lingoqa" in metrics:
                item["metrics"]["lingoqa"] = _lingoqa_item(rec, lingo)
            if "lingoqa_llm" in metrics:
                item["metrics"]["lingoqa_llm"] = _lingoqa_llm_item(rec, work, outcomes)
        items.append(item)
    return items


def _score_keys(rec, work: Work, score_present: Callable[[str, Dict[str, Any]], Dict[str, Any]]) -> Dict[str, Any]:
    """Per caption key: keys missing on either side (or an unparsed caption) are recorded as such, not scored."""
    parsed, _ = parsed_caption(rec)
    keys = {k: ({"status": state, "score": None} if state != "present" else score_present(k, parsed))
            for k, state in key_states(rec, work.keys, parsed).items()}
    return _key_record(keys)


def _llm_keys(rec, work: Work, outcomes) -> Dict[str, Any]:
    fmt = value_format(work.rubric)  # the values as the judge saw them

    def judged(k: str, parsed: Dict[str, Any]) -> Dict[str, Any]:
        out = outcomes.get(work.call_of[(rec["id"], "llm_judge", k)])
        human, answer = work.shown.get((rec["id"], k)) or (fmt(rec["reference"][k]), fmt(parsed[k]))
        entry = {"status": "scored" if out and out.status == "scored" else "failed",
                 "score": out.score if out else None, "human_answer": human, "model_answer": answer,
                 "judge_text": out.text if out else None, "cached": bool(out and out.cached),
                 "attempts": out.attempts if out else 0}
        if entry["status"] == "failed":
            entry["error"] = out.error if out else "no judge outcome"
        return entry

    return _score_keys(rec, work, judged)


def _local_keys(rec, work: Work) -> Dict[str, Any]:
    def local(k: str, parsed: Dict[str, Any]) -> Dict[str, Any]:
        return {"status": "scored", **local_score(render_value(parsed[k]), render_value(rec["reference"][k]))}

    return _score_keys(rec, work, local)


def _key_record(keys: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    scored = [v["score"] for v in keys.values() if v["status"] == "scored"]
    # The strict view: keys the model failed to produce (or a caption that is not JSON) score the minimum, 1.
    strict = scored + [1.0 for v in keys.values() if v["status"] in (MISSING_IN_CAPTION, UNPARSED)]
    return {"value": float(np.mean(scored)) if scored else None,
            "value_missing_as_min": float(np.mean(strict)) if strict else None,
            "keys": keys}


def _reference_text(obj: Any, which: str, keys: List[str]) -> Optional[str]:
    if not isinstance(obj, dict):
        return None
    if which == "full_label":  # values only: key names shared by every caption would inflate BLEU
        return "\n".join(render_value(obj[k]) for k in keys if k in obj)
    return render_value(obj[which]) if which in obj else None


def _bleu_item(rec, work: Work, which: str, scale: str) -> Dict[str, Any]:
    if which == WHOLE_CAPTION:
        return _whole_caption_bleu(rec, scale)
    ref = _reference_text(rec.get("reference"), which, work.keys)
    if ref is None:
        return {"value": None, "status": "missing_in_reference"}
    parsed, _ = parsed_caption(rec)
    hyp = _reference_text(parsed, which, work.keys) if parsed is not None else None
    status = "ok" if hyp is not None else (UNPARSED if parsed is None else MISSING_IN_CAPTION)
    hyp = hyp or ""  # an unusable caption is an empty hypothesis, not a skipped item
    return _bleu_record(hyp, ref, status, scale)


def _whole_caption_bleu(rec, scale: str) -> Dict[str, Any]:
    """The cookbook's comparison: the whole generated caption (reasoning and a code fence around it removed)
    against the whole human caption, the label as the training target writes it (JSON, schema order)."""
    ref = rec.get("reference")
    if not isinstance(ref, dict) or not ref:
        return {"value": None, "status": "missing_in_reference"}
    return _bleu_record(unfenced(final_answer(rec.get("raw_text"))), caption_target(ref), "ok", scale)


def _bleu_record(hyp: str, ref: str, status: str, scale: str) -> Dict[str, Any]:
    return {"value": bleu_mod.sentence_bleu(hyp, ref, scale), "status": status, "hypothesis": hyp, "reference": ref,
            "stats": bleu_mod.segment_stats([hyp], [ref])[0]}


def _mcq_item(rec) -> Dict[str, Any]:
    ref = rec.get("reference") or {}
    options = ref.get("options") if isinstance(ref.get("options"), dict) else None
    pred, how = parse_choice(rec.get("raw_text"), options, rec.get("parsed"))
    answer = str(ref.get("answer", "")).strip().upper() or None
    return {"value": float(pred is not None and pred == answer), "pred": pred, "answer": answer, "parse": how,
            "parseable": pred is not None, "category": ref.get("category"), "video": rec.get("video")}


def _lingoqa_item(rec, lingo) -> Dict[str, Any]:
    question, refs, pred = lingoqa_fields(rec)
    if not refs:
        return {"value": None, "status": "missing_in_reference", "method": LINGO_CLASSIFIER}
    correct, best = lingo.judge(question, refs, pred)
    return {"value": float(correct), "status": "scored", "method": LINGO_CLASSIFIER, "best_logit": best,
            "prediction": pred}


def _lingoqa_llm_item(rec, work: Work, outcomes) -> Dict[str, Any]:
    _, refs, pred = lingoqa_fields(rec)
    if not refs:
        return {"value": None, "status": "missing_in_reference", "method": LINGO_LLM}
    out = outcomes.get(work.call_of[(rec["id"], "lingoqa_llm", "answer")])
    if out is None or out.status != "scored":
        return {"value": None, "status": "failed", "method": LINGO_LLM, "prediction": pred,
                "error": out.error if out else "no judge outcome"}
    return {"value": float(out.score), "status": "scored", "method": LINGO_LLM, "prediction": pred,
            "judge_text": out.text, "cached": out.cached}


def summarise(cfg: Config, work: Work, items: List[Dict[str, Any]], usage: Any) -> Dict[str, Any]:
    from omegaconf import OmegaConf

    ev = cfg.eval
    boot = dict(samples=int(ev.bootstrap_samples), confidence=float(ev.confidence), seed=int(ev.seed))
    metrics: Dict[str, Any] = {}
    by_metric = defaultdict(list)
    for it in items:
        for m, rec in it["metrics"].items():
            by_metric[m].append((it["id"], rec))
    for m in ("llm_judge", "local"):
        if m in by_metric:
            metrics[m] = _summarise_keys(by_metric[m], work.keys, boot)
    if "llm_judge" in metrics:
        metrics["llm_judge"]["judge"] = _judge_record(cfg, work.rubric)
        metrics["llm_judge"]["usage"] = usage.as_dict() if usage is not None else None
    if "bleu" in by_metric:
        metrics["bleu"] = _summarise_bleu(by_metric["bleu"], ev.bleu_reference, ev.bleu_scale, boot)
    if "mcq" in by_metric:
        metrics["mcq"] = _summarise_mcq(by_metric["mcq"], boot)
    if "lingoqa" in by_metric:
        metrics["lingoqa"] = _summarise_lingoqa(by_metric["lingoqa"], cfg, boot)
    if "lingoqa_llm" in by_metric:
        metrics["lingoqa_llm"] = _summarise_lingoqa_llm(by_metric["lingoqa_llm"], work, cfg, boot)
        metrics["lingoqa_llm"]["usage"] = usage.as_dict() if usage is not None else None
    for m in ev.metrics:
        metrics.setdefault(m, {"headline": None, "note": "no items of a task this metric applies to"})
    index = work.run.index or {}
    return {
        "stage": "judge",
        "captions_run": str(work.run.path),
        "checkpoint": work.run.checkpoint,
        "caption_index": {k: index[k] for k in ("counts", "dataset", "checkpoint", "done", "skipped", "failed")
                          if k in index},
        "items": len(items),
        "tasks": dict(Counter(it["task"] for it in items)),
        "bad_caption_files": work.run.bad,
        "bootstrap": boot,
        "metrics": metrics,
        "eval_config": OmegaConf.to_container(ev, resolve=True),
    }


def _judge_record(cfg: Config, rubric: Any) -> Dict[str, Any]:
    j = cfg.eval.judge
    reasoning = is_reasoning_model(j)
    return {"model": j.model, "base_url": j.base_url, "temperature": sent_temperature(j), "seed": j.seed,
            "reasoning_model": reasoning, ("max_completion_tokens" if reasoning else "max_tokens"): j.max_tokens,
            "rubric": rubric.name, "rubric_sha256": rubric.sha256,
            "score_tag": rubric.tag_example, "score_pick": rubric.score_pick}


def _summarise_keys(entries, keys: List[str], boot) -> Dict[str, Any]:
    per_key = {}
    counts: Counter = Counter()
    failures = []
    for k in keys:
        vals = [rec["keys"][k]["score"] for _, rec in entries if rec["keys"][k]["status"] == "scored"]
        st = Counter(rec["keys"][k]["status"] for _, rec in entries)
        counts.update(st)
        per_key[k] = {**mean_ci(vals, **boot), **{s: st.get(s, 0) for s in
                      ("scored", "failed", "missing_in_caption", "missing_in_reference", UNPARSED)}}
        for item_id, rec in entries:
            e = rec["keys"][k]
            if e["status"] == "failed" and len(failures) < _MAX_LISTED_FAILURES:
                failures.append({"id": item_id, "key": k, "error": e.get("error")})
    cached = sum(1 for _, rec in entries for e in rec["keys"].values() if e.get("cached"))
    overall = mean_ci([rec["value"] for _, rec in entries], **boot)
    strict = mean_ci([rec["value_missing_as_min"] for _, rec in entries], **boot)
    return {"headline": overall["mean"], "overall": overall, "overall_missing_as_min": strict, "per_key": per_key,
            "counts": {"items": len(entries), "items_with_score": overall["n"], "judged": counts.get("scored", 0),
                       "failed": counts.get("failed", 0), "missing_in_caption": counts.get("missing_in_caption", 0),
                       "missing_in_reference": counts.get("missing_in_reference", 0),
                       "unparsed_caption": counts.get(UNPARSED, 0), "cached": cached},
            "failures": failures,
            "note": "overall = mean over items of the item's mean over scored keys; "
                    "overall_missing_as_min scores keys missing from the caption (or an unparsable caption) as 1"}


def _summarise_bleu(entries, which: str, scale: str, boot) -> Dict[str, Any]:
    usable = [rec for _, rec in entries if rec["value"] is not None]
    hyps = [r["hypothesis"] for r in usable]
    refs = [r["reference"] for r in usable]
    corpus = bleu_mod.corpus_bleu(hyps, refs, **boot, scale=scale) if usable else {"score": None}
    return {"headline": corpus.get("score"), "corpus": corpus, "reference_text": which, "scale": scale,
            "scale_note": "sacrebleu's score" if scale == "0-100" else "sacrebleu's score / 100 (Hugging Face evaluate)",
            "sentence_mean": mean_ci([r["value"] for r in usable], **boot),
            "counts": dict(Counter(rec["status"] for _, rec in entries))}


def _summarise_mcq(entries, boot) -> Dict[str, Any]:
    recs = [r for _, r in entries]
    videos = mcq_groups(entries)
    acc = grouped_mean_ci([r["value"] for r in recs], videos, **boot)  # micro accuracy, videos resampled
    by_video: Dict[Any, List[float]] = defaultdict(list)
    for r, v in zip(recs, videos):
        by_video[v].append(r["value"])
    per_video = mean_ci([float(np.mean(vals)) for vals in by_video.values()], **boot)
    parseable = [r for r in recs if r["parseable"]]
    per_cat: Dict[str, Any] = {}
    for cat in sorted({str(r["category"]) for r in recs}):
        vals = [r["value"] for r in recs if str(r["category"]) == cat]
        per_cat[cat] = {"n": len(vals), "accuracy": float(np.mean(vals))}
    return {"headline": acc["mean"], "accuracy": acc,
            "mean_per_video_accuracy": {**per_video, "videos": per_video["n"]},
            "parseable_rate": len(parseable) / len(recs) if recs else None,
            "accuracy_on_parseable": float(np.mean([r["value"] for r in parseable])) if parseable else None,
            "per_category": per_cat, "parse": dict(Counter(r["parse"] for r in recs)),
            "note": "headline = micro accuracy over questions (unparseable answers count as wrong); its CI "
                    "resamples videos, whose questions are correlated; mean_per_video_accuracy averages each "
                    "video's accuracy (the cookbook reports it too)"}


def mcq_groups(entries) -> List[Any]:
    """The video of each MCQ record (the bootstrap's unit); a record without one is its own group."""
    return [r.get("video") or f"item:{item_id}" for item_id, r in entries]


def _summarise_lingoqa(entries, cfg: Config, boot) -> Dict[str, Any]:
    recs = [r for _, r in entries]
    acc = mean_ci([r["value"] for r in recs], **boot)
    return {"headline": acc["mean"], "accuracy": acc, "method": LINGO_CLASSIFIER,
            "correct": int(sum(r["value"] or 0 for r in recs)), "questions": acc["n"],
            "counts": dict(Counter(r["status"] for r in recs)), "classifier_path": str(cfg.eval.lingo_judge_path),
            "note": f"the benchmark's rules: references and prediction lower-cased and stripped, the tokenizer's "
                    f"CLS token, max_length={MAX_LENGTH}, best logit over the references > 0; "
                    f"score = correct / questions"}


def _summarise_lingoqa_llm(entries, work: Work, cfg: Config, boot) -> Dict[str, Any]:
    recs = [r for _, r in entries]
    acc = mean_ci([r["value"] for r in recs], **boot)
    return {"headline": acc["mean"], "accuracy": acc, "method": LINGO_LLM,
            "counts": dict(Counter(r["status"] for r in recs)), "judge": _judge_record(cfg, work.lingo_rubric),
            "note": "an LLM judge's 0/1 verdict with the lingoqa rubric: a substitute for the Lingo-Judge "
                    "classifier, not the LingoQA metric and not comparable with published LingoQA numbers"}


def _sha(rec: Dict[str, Any]) -> str:
    blob = json.dumps({k: v for k, v in rec.items() if k != "_file"}, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
