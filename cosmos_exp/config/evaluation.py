"""Schema of the `eval` group: the LLM judge, local scorers and metrics."""

from dataclasses import dataclass, field
from typing import List, Optional


@dataclass
class JudgeConfig:
    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4.1-mini"
    # Name of the environment variable that holds the API key; the key itself never enters a config.
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.0
    seed: Optional[int] = 0
    # Reasoning models (gpt-5, o1/o3/o4...) reject any temperature but their default and `max_tokens`: they are
    # sent no temperature and max_tokens as `max_completion_tokens` (which then counts the hidden reasoning too:
    # give them room). None: decided by the model name; true/false: a proxy's name that does not say.
    reasoning: Optional[bool] = None
    max_tokens: int = 512
    timeout_s: float = 60.0
    # Requests in flight at most. With `adaptive`, a window that starts small and grows to it, and after the first
    # 429 a send rate that rides the server's rate limit (evaluate/pacing.py); false: always this many.
    concurrency: int = 16
    adaptive: bool = True
    max_retries: int = 6
    # Empty or score-less answers are asked again this many times in a run, then stored and recorded as failed.
    max_parse_retries: int = 1
    # A stored answer that did not parse is read again by the next run without a request; true asks again.
    retry_unparsed: bool = False
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    max_cost_usd: Optional[float] = None
    # Prices per million tokens, for the cost estimate.
    price_input_per_mtok: float = 0.4
    price_output_per_mtok: float = 1.6
    # Expected answer length, for the dry-run cost estimate (the budget check reserves max_tokens).
    est_output_tokens: int = 150
    # A name under cosmos_exp/evaluate/rubrics/ or a path to a rubric file; its hash is part of the cache key.
    rubric: str = "similarity_v1"
    lingoqa_rubric: str = "lingoqa_v1"
    cache_path: str = "${paths.cache_dir}/judge_cache.sqlite"


@dataclass
class EvalConfig:
    name: str = "caption"
    # Any of: llm_judge, local, bleu, mcq, lingoqa, lingoqa_llm (config/names.py).
    metrics: List[str] = field(default_factory=lambda: ["local", "bleu"])
    # Which text BLEU compares: a caption key's value (e.g. safety_analysis); "full_label": the values of every
    # scored key, one per line, without the key names (shared names would inflate it); "whole_caption": the
    # whole generated answer against the whole human label as JSON (the cookbook's comparison).
    bleu_reference: str = "safety_analysis"
    # "0-100" (sacrebleu) or "0-1" (sacrebleu / 100: Hugging Face evaluate, the cookbook's published numbers).
    bleu_scale: str = "0-100"
    # Caption keys to score; None: every key of the rubric (the 15 caption keys).
    caption_keys: Optional[List[str]] = None
    # Fail on the first unreadable caption file instead of skipping and reporting it.
    strict: bool = False
    bootstrap_samples: int = 2000
    confidence: float = 0.95
    seed: int = 0
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    # Local directory of the Lingo-Judge classifier, which metric lingoqa needs (lingoqa_llm is the LLM substitute).
    lingo_judge_path: Optional[str] = None
