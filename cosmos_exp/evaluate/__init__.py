"""Judging and metrics.

stage=judge (stages/judge.py): a caption run -> scores/<id>.score.json + summary.json
    judging.py    what a run will do: rubrics, keys, the judge calls (no request)
    llm_judge  client.py (bounded async openai calls, retries, budget) + cache.py (SQLite) + rubric.py
    local      local.py (normalised exact match / token F1 on the 1-5 scale)
    bleu       bleu.py (sacrebleu corpus + sentence, signature, bootstrap over summed n-gram stats)
    mcq        mcq.py (answer-letter parser)
    lingoqa    lingoqa.py (the benchmark's Lingo-Judge classifier from a local directory, by its rules)
    lingoqa_llm  the LLM judge's 0/1 verdict with the lingoqa rubric (a substitute under its own name)
    scoring.py builds the per-item records and the summary; stats.py holds the bootstrap.
stage=compare (stages/compare.py): compare.py pairs two judge runs -> b - a differences with bootstrap CIs.
"""
