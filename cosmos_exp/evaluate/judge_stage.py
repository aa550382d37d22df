"""stage=judge: score a caption run (captions/<id>.json) against its ground truth.

Metrics (cfg.eval.metrics): llm_judge (per caption key, 1-5, cached and budgeted), local (exact match /
token F1 on the same scale, free), bleu (sacrebleu, corpus + per item), mcq (letter accuracy, parseable
rate, per category), lingoqa (Lingo-Judge classifier or LLM verdict). Writes scores/<id>.score.json and
summary.json (means with bootstrap CIs, counts, usage and cost, the caption run and its checkpoint).
A rerun is cheap: every paid judgement is in the SQLite cache.
"""

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from cosmos_exp.config import ConfigError
from cosmos_exp.evaluate.cache import JudgeCache, cache_key
from cosmos_exp.evaluate.captions import CaptionRun, caption_files, load_caption_run, parsed_caption, render_value
from cosmos_exp.evaluate.client import JudgeCall, JudgeOutcome, Usage, cost_usd, estimate_tokens
from cosmos_exp.evaluate.headline import describe
from cosmos_exp.repro.atomic import write_json_atomic
from cosmos_exp.evaluate.rubric import Rubric, load_rubric
from cosmos_exp.plan import Plan

log = logging.getLogger(__name__)

METRICS = ("llm_judge", "local", "bleu", "mcq", "lingoqa")
LLM_METRICS = ("llm_judge", "lingoqa")
# Key states that are not judged; the reasons are counted, never silently averaged away.
MISSING_IN_CAPTION, MISSING_IN_REFERENCE, UNPARSED = "missing_in_caption", "missing_in_reference", "unparsed_caption"


@dataclass
class Work:
    """Everything a judge run will do, computed without any request (shared by plan and run)."""

    run: CaptionRun
    keys: List[str]
    rubric: Optional[Rubric]
    lingo_rubric: Optional[Rubric]
    lingo_method: Optional[str]
    calls: List[JudgeCall] = field(default_factory=list)
    # (item id, metric, field) -> cache key of its judge call
    call_of: Dict[Tuple[str, str, str], str] = field(default_factory=dict)


def plan(cfg: Any) -> Plan:
    work = _prepare(cfg)
    p = Plan(stage="judge")
    p.add_input("caption run", str(work.run.path), len(work.run.items))
    if work.run.checkpoint:
        p.add_input("checkpoint (from the caption run)", work.run.checkpoint)
    p.outputs += ["scores/<id>.score.json", "summary.json"]
    if work.run.bad:
        p.notes.append(f"{len(work.run.bad)} unreadable caption files will be skipped and reported")
    tasks = Counter(rec["task"] for rec in work.run.items)
    p.notes.append(f"metrics {', '.join(cfg.eval.metrics)}; items by task {dict(tasks)}")
    if work.calls:
        jcfg = cfg.eval.judge
        unique = {c.key: c for c in work.calls}
        with JudgeCache(Path(jcfg.cache_path), readonly=True) as cache:
            hits = cache.get_many(unique)
        todo = [c for k, c in unique.items() if k not in hits]
        est_in = sum(estimate_tokens(c.messages) for c in todo)
        est = cost_usd(est_in, len(todo) * jcfg.est_output_tokens, jcfg)
        p.add_input("judge cache", str(jcfg.cache_path), len(hits))
        p.notes.append(f"judge {jcfg.model} at {jcfg.base_url}: {len(unique)} distinct judgements, {len(hits)} cached, "
                       f"{len(todo)} calls to make, estimated ${est:.4f} (~{est_in} input tokens)"
                       + (f", stopping at max_cost_usd=${jcfg.max_cost_usd}" if jcfg.max_cost_usd is not None else ""))
        if todo and not os.environ.get(jcfg.api_key_env):
            if not cfg.dry_run:
                raise _no_key(jcfg)
            p.notes.append(f"warning: ${jcfg.api_key_env} is not set; a real run would stop here")
    if work.lingo_method:
        p.notes.append(f"lingoqa scored with {work.lingo_method}")
    return p


def run(cfg: Any, run_dir: Path) -> Dict[str, Any]:
    from cosmos_exp.evaluate import scoring

    work = _prepare(cfg)
    run_dir = Path(run_dir)
    jcfg = cfg.eval.judge
    outcomes: Dict[str, JudgeOutcome] = {}
    usage = Usage()  # zeros when nothing needed judging (e.g. no caption parsed as JSON)
    if work.calls:
        from cosmos_exp.evaluate.client import judge_calls

        with JudgeCache(Path(jcfg.cache_path)) as cache:
            need = {c.key for c in work.calls} - set(cache.get_many({c.key for c in work.calls}))
            api_key = os.environ.get(jcfg.api_key_env, "")
            if need and not api_key:
                raise _no_key(jcfg)
            outcomes, usage = judge_calls(work.calls, jcfg, api_key, cache)
    lingo = None
    if work.lingo_method == "lingo_judge_classifier":
        from cosmos_exp.evaluate.lingoqa import LingoJudge

        lingo = LingoJudge(cfg.eval.lingo_judge_path)
    items = scoring.score_items(cfg, work, outcomes, lingo)
    for item in items:
        # No fsync per item (it dominated a cached re-score): a rerun rebuilds any lost file from the cache.
        write_json_atomic(run_dir / "scores" / f"{item['id']}.score.json", item, fsync=False)
    summary = scoring.summarise(cfg, work, items, usage)
    write_json_atomic(run_dir / "summary.json", summary)
    log.info("judge: %d items scored into %s", len(items), run_dir)
    log.info("judge: %s", describe(summary["metrics"], summary["bootstrap"]["confidence"]))
    return {"summary": str(run_dir / "summary.json"), "items": len(items), "captions_run": str(work.run.path),
            "checkpoint": work.run.checkpoint,
            "headline": {m: v.get("headline") for m, v in summary["metrics"].items()}}


def _no_key(jcfg: Any) -> ConfigError:
    return ConfigError("eval.judge.api_key_env", f"environment variable ${jcfg.api_key_env} is not set",
                       "export the API key there (any non-empty value for a local server); keys never go in configs")


def _prepare(cfg: Any) -> Work:
    metrics = list(cfg.eval.metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ConfigError("eval.metrics", f"unknown or empty metrics {unknown or metrics}", f"choose from {list(METRICS)}")
    if not cfg.captions:
        raise ConfigError("captions", "no caption run given", "pass captions=<caption run directory>")
    cap_dir = Path(str(cfg.captions))
    if not cap_dir.is_dir():
        raise ConfigError("captions", f"{cap_dir} is not a directory", "pass the caption run's directory")
    if not caption_files(cap_dir):
        raise ConfigError("captions", f"{cap_dir}/captions/ holds no <id>.json caption files",
                          "point at a finished stage=caption run")
    try:
        run = load_caption_run(cap_dir, strict=bool(cfg.eval.strict))
    except ValueError as e:
        raise ConfigError("captions", str(e), "fix or remove the file, or set eval.strict=false to skip it") from e
    if not run.items:
        raise ConfigError("captions", f"none of the caption files in {cap_dir}/captions/ could be read", "see the files")
    jcfg = cfg.eval.judge
    rubric = lingo_rubric = lingo_method = None
    if "llm_judge" in metrics or "local" in metrics or "bleu" in metrics:
        rubric = _rubric(jcfg.rubric, "eval.judge.rubric")
    if "lingoqa" in metrics:
        if cfg.eval.lingo_judge_path:
            if not (Path(cfg.eval.lingo_judge_path) / "config.json").is_file():
                raise ConfigError("eval.lingo_judge_path", f"{cfg.eval.lingo_judge_path}/config.json not found",
                                  "point at a local Lingo-Judge directory, or set it to null for the LLM variant")
            lingo_method = "lingo_judge_classifier"
        else:
            lingo_method = "llm_judge"
            lingo_rubric = _rubric(jcfg.lingoqa_rubric, "eval.judge.lingoqa_rubric")
    keys = list(cfg.eval.caption_keys) if cfg.eval.caption_keys else list(rubric.keys) if rubric else []
    if rubric is not None and "llm_judge" in metrics:
        unknown_keys = [k for k in keys if k not in rubric.keys]
        if unknown_keys:
            raise ConfigError("eval.caption_keys", f"keys {unknown_keys} have no description in rubric {rubric.name}",
                              f"choose from {list(rubric.keys)}")
    work = Work(run=run, keys=keys, rubric=rubric, lingo_rubric=lingo_rubric, lingo_method=lingo_method)
    _add_calls(cfg, work, metrics)
    return work


def _rubric(name: str, key: str) -> Rubric:
    try:
        return load_rubric(name)
    except (FileNotFoundError, ValueError) as e:
        raise ConfigError(key, str(e), "name a file under cosmos_exp/evaluate/rubrics/ or give a path") from e


def _add_calls(cfg: Any, work: Work, metrics: List[str]) -> None:
    jcfg = cfg.eval.judge
    model, temperature = str(jcfg.model), float(jcfg.temperature)  # hoisted: DictConfig access is slow per call
    for rec in work.run.items:
        if rec["task"] == "caption" and "llm_judge" in metrics:
            for key, human, answer in caption_pairs(rec, work.keys):
                ck = cache_key(model, work.rubric.sha256, temperature, key, human, answer)
                msgs = work.rubric.messages(key=key, description=work.rubric.keys[key], human_answer=human,
                                            model_answer=answer)
                work.calls.append(JudgeCall(ck, msgs, work.rubric))
                work.call_of[(rec["id"], "llm_judge", key)] = ck
        elif rec["task"] == "lingoqa" and work.lingo_method == "llm_judge":
            from cosmos_exp.evaluate.lingoqa import lingoqa_fields

            question, refs, pred = lingoqa_fields(rec)
            if not refs:
                continue
            references = "\n".join(f"- {r}" for r in refs)
            ck = cache_key(model, work.lingo_rubric.sha256, temperature, "lingoqa",
                           question + "\n" + references, pred)
            msgs = work.lingo_rubric.messages(question=question, references=references, prediction=pred)
            work.calls.append(JudgeCall(ck, msgs, work.lingo_rubric))
            work.call_of[(rec["id"], "lingoqa", "answer")] = ck


def key_states(rec: Dict[str, Any], keys: List[str]) -> Dict[str, str]:
    """For each key: 'present' or why it cannot be scored."""
    parsed, _ = parsed_caption(rec)
    ref = rec.get("reference") if isinstance(rec.get("reference"), dict) else {}
    out = {}
    for k in keys:
        if k not in ref:
            out[k] = MISSING_IN_REFERENCE
        elif parsed is None:
            out[k] = UNPARSED
        elif k not in parsed:
            out[k] = MISSING_IN_CAPTION
        else:
            out[k] = "present"
    return out


def caption_pairs(rec: Dict[str, Any], keys: List[str]) -> List[Tuple[str, str, str]]:
    """(key, human answer, model answer) for every key present on both sides."""
    parsed, _ = parsed_caption(rec)
    states = key_states(rec, keys)
    return [(k, render_value(rec["reference"][k]), render_value(parsed[k])) for k in keys if states[k] == "present"]
