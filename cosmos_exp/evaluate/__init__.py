"""Judging and metrics.

stage=judge (stages/judge.py): a caption run -> scores/<id>.score.json + summary.json
    judging.py    what a run will do: rubrics, keys, the judge calls (no request)
    llm_judge  client.py (bounded async openai calls, retries, budget) + cache.py (SQLite) + rubric.py
    local      local.py (normalised exact match / token F1 on the 1-5 scale)
    bleu       bleu.py (sacrebleu corpus + sentence, signature, bootstrap over summed n-gram stats)
    mcq        mcq.py (answer-letter parser)
    lingoqa    lingoqa.py (local Lingo-Judge classifier, else the LLM verdict rubric)
    scoring.py builds the per-item records and the summary; stats.py holds the bootstrap.
stage=compare (stages/compare.py): compare.py pairs two judge runs -> b - a differences with bootstrap CIs.
"""
