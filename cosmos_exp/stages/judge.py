"""stage=judge: score a caption run (captions/<id>.json) against its ground truth.

Metrics (cfg.eval.metrics): llm_judge (per caption key, 1-5, cached and budgeted), local (exact match /
token F1 on the same scale, free), bleu (sacrebleu, corpus + per item), mcq (letter accuracy, parseable
rate, per category), lingoqa (the benchmark's Lingo-Judge classifier), lingoqa_llm (an LLM verdict, a
substitute under its own name). Writes scores/<id>.score.json and
summary.json (means with bootstrap CIs, counts, usage and cost, the caption run and its checkpoint).
A rerun is cheap: every paid judgement is in the SQLite cache.
"""

import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any, Dict

from cosmos_exp import rundir
from cosmos_exp.config import Config, ConfigError
from cosmos_exp.evaluate.cache import JudgeCache
from cosmos_exp.evaluate.captions import load_caption_run
from cosmos_exp.evaluate.client import (JudgeOutcome, Usage, cached_outcomes, cost_usd, estimate_tokens,
                                        is_reasoning_model)
from cosmos_exp.evaluate.headline import describe, headlines
from cosmos_exp.evaluate.judging import Work, build_work, missing_key_error
from cosmos_exp.plan import Plan
from cosmos_exp.repro.atomic import write_json_atomic

log = logging.getLogger(__name__)


def plan(cfg: Config) -> Plan:
    work = _prepare(cfg)
    p = Plan(stage="judge")
    p.add_input("caption run", str(work.run.path), len(work.run.items))
    if work.run.checkpoint:
        p.add_input("checkpoint (from the caption run)", work.run.checkpoint)
    p.outputs += [f"{rundir.SCORES_DIR}/<id>{rundir.SCORE_SUFFIX}", rundir.SUMMARY_JSON]
    if work.run.bad:
        p.notes.append(f"{len(work.run.bad)} unreadable caption files will be skipped and reported")
    tasks = Counter(rec["task"] for rec in work.run.items)
    p.notes.append(f"metrics {', '.join(cfg.eval.metrics)}; items by task {dict(tasks)}")
    if work.calls:
        jcfg = cfg.eval.judge
        unique = {c.key: c for c in work.calls}
        seen = Usage()
        with JudgeCache(Path(jcfg.cache_path), readonly=True) as cache:
            hits = cached_outcomes(unique, cache, bool(jcfg.retry_unparsed), seen)
        todo = [c for k, c in unique.items() if k not in hits]
        est_in = sum(estimate_tokens(c.messages) for c in todo)
        est = cost_usd(est_in, len(todo) * jcfg.est_output_tokens, jcfg)
        p.add_input("judge cache", str(jcfg.cache_path), len(hits))
        if is_reasoning_model(jcfg):
            p.notes.append(f"judge {jcfg.model} is a reasoning model: no temperature sent, max_completion_tokens="
                           f"{jcfg.max_tokens} (its hidden reasoning counts against it)")
        p.notes.append(f"judge {jcfg.model} at {jcfg.base_url}: {len(unique)} distinct judgements, {len(hits)} cached"
                       + (f" ({seen.cached_unparsed} of them answers that do not parse: failed, no request)"
                          if seen.cached_unparsed else "") + f", "
                       f"{len(todo)} calls to make, estimated ${est:.4f} (~{est_in} input tokens)"
                       + (f", stopping at max_cost_usd=${jcfg.max_cost_usd}" if jcfg.max_cost_usd is not None else ""))
        if todo and not os.environ.get(jcfg.api_key_env):
            if not cfg.dry_run:
                raise missing_key_error(jcfg)
            p.notes.append(f"warning: ${jcfg.api_key_env} is not set; a real run would stop here")
    if "lingoqa" in cfg.eval.metrics:
        p.notes.append(f"lingoqa scored with the Lingo-Judge classifier at {cfg.eval.lingo_judge_path}")
    if "lingoqa_llm" in cfg.eval.metrics:
        p.notes.append("lingoqa_llm scored with the LLM judge (a substitute, not the LingoQA metric)")
    return p


def run(cfg: Config, run_dir: Path) -> Dict[str, Any]:
    from cosmos_exp.evaluate import scoring

    work = _prepare(cfg)
    run_dir = Path(run_dir)
    jcfg = cfg.eval.judge
    outcomes: Dict[str, JudgeOutcome] = {}
    usage = Usage()  # zeros when nothing needed judging (e.g. no caption parsed as JSON)
    if work.calls:
        from cosmos_exp.evaluate.client import judge_calls

        with JudgeCache(Path(jcfg.cache_path)) as cache:
            unique = {c.key: c for c in work.calls}
            need = set(unique) - set(cached_outcomes(unique, cache, bool(jcfg.retry_unparsed), Usage()))
            api_key = os.environ.get(jcfg.api_key_env, "")
            if need and not api_key:
                raise missing_key_error(jcfg)
            outcomes, usage = judge_calls(work.calls, jcfg, api_key, cache)
    lingo = None
    if "lingoqa" in cfg.eval.metrics and any(rec["task"] == "lingoqa" for rec in work.run.items):
        from cosmos_exp.evaluate.lingoqa import LingoJudge

        lingo = LingoJudge(cfg.eval.lingo_judge_path)
    items = scoring.score_items(cfg, work, outcomes, lingo)
    for item in items:
        # No fsync per item (it dominated a cached re-score): a rerun rebuilds any lost file from the cache. One
        # line each: json's indenting encoder is pure Python and took a third of a cached re-score.
        write_json_atomic(rundir.score_path(run_dir, item["id"]), item, fsync=False, indent=None)
    summary = scoring.summarise(cfg, work, items, usage)
    write_json_atomic(run_dir / rundir.SUMMARY_JSON, summary)
    log.info("judge: %d items scored into %s", len(items), run_dir)
    log.info("judge: %s", describe(summary["metrics"], summary["bootstrap"]["confidence"]))
    return {"summary": str(run_dir / rundir.SUMMARY_JSON), "items": len(items), "captions_run": str(work.run.path),
            "checkpoint": work.run.checkpoint,
            "headline": headlines(summary)}



def _prepare(cfg: Config) -> Work:
    """The caption run (its files checked here; the config's rules were checked by config/validate) and the work."""
    cap_dir = Path(str(cfg.captions))
    if not rundir.caption_files(cap_dir):
        raise ConfigError("captions", f"{rundir.captions_dir(cap_dir)}/ holds no <id>.json caption files",
                          "point at a finished stage=caption run")
    try:
        run = load_caption_run(cap_dir, strict=bool(cfg.eval.strict))
    except ValueError as e:
        raise ConfigError("captions", str(e), "fix or remove the file, or set eval.strict=false to skip it") from e
    if not run.items:
        raise ConfigError("captions", f"none of the caption files in {rundir.captions_dir(cap_dir)}/ could be read",
                          "see the files")
    return build_work(cfg.eval, run)
