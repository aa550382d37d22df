"""What a judge run will do, computed from a caption run without any request: the rubrics, the keys, the
judge calls (shared by stage=judge and stage=evaluate, and by the scoring of their outcomes)."""

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from cosmos_exp.config import ConfigError
from cosmos_exp.config.evaluation import EvalConfig, JudgeConfig
from cosmos_exp.config.names import CAPTION_METRICS
from cosmos_exp.evaluate.cache import cache_key, key_maker
from cosmos_exp.evaluate.captions import CaptionRun, parsed_caption, render_value
from cosmos_exp.evaluate.client import JudgeCall, sent_temperature
from cosmos_exp.evaluate.lingoqa import lingoqa_fields
from cosmos_exp.evaluate.rubric import Rubric, load_rubric

# Key states that are not judged; the reasons are counted, never silently averaged away.
MISSING_IN_CAPTION, MISSING_IN_REFERENCE, UNPARSED = "missing_in_caption", "missing_in_reference", "unparsed_caption"


@dataclass
class Work:
    """Everything a judge run will do, computed without any request (shared by plan and run)."""

    run: CaptionRun
    keys: List[str]
    rubric: Optional[Rubric]
    lingo_rubric: Optional[Rubric]  # metric lingoqa_llm's
    calls: List[JudgeCall] = field(default_factory=list)
    # (item id, metric, field) -> cache key of its judge call
    call_of: Dict[Tuple[str, str, str], str] = field(default_factory=dict)
    # (item id, caption key) -> (human answer, model answer) as the judge was shown them
    shown: Dict[Tuple[str, str], Tuple[str, str]] = field(default_factory=dict)


def missing_key_error(jcfg: JudgeConfig) -> ConfigError:
    return ConfigError("eval.judge.api_key_env", f"environment variable ${jcfg.api_key_env} is not set",
                       "export the API key there (any non-empty value for a local server); keys never go in configs")


def needs_llm(e: EvalConfig) -> bool:
    """Whether the chosen metrics may call the LLM judge."""
    return "llm_judge" in e.metrics or "lingoqa_llm" in e.metrics


def check_api_key(e: EvalConfig) -> None:
    """The judge's key is in the environment whenever a metric may call it (what plan() can know before
    the cache is read; stage=judge repeats the check with the calls the cache does not hold)."""
    if needs_llm(e) and not os.environ.get(e.judge.api_key_env):
        raise missing_key_error(e.judge)


@dataclass
class Rubrics:
    caption: Optional[Rubric]
    lingoqa: Optional[Rubric]  # metric lingoqa_llm's


def load_rubrics(e: EvalConfig) -> Rubrics:
    """The rubric files the chosen metrics read, each failure a ConfigError naming its key."""
    caption = lingo = None
    if set(CAPTION_METRICS) & set(e.metrics):
        caption = _rubric(e.judge.rubric, "eval.judge.rubric")
    if "lingoqa_llm" in e.metrics:
        lingo = _rubric(e.judge.lingoqa_rubric, "eval.judge.lingoqa_rubric")
    return Rubrics(caption, lingo)


def build_work(e: EvalConfig, run: CaptionRun) -> Work:
    """Keys to score and every judge call the caption run needs (before the cache is consulted)."""
    rubrics = load_rubrics(e)
    rubric = rubrics.caption
    keys = list(e.caption_keys) if e.caption_keys else list(rubric.keys) if rubric else []
    if rubric is not None and "llm_judge" in e.metrics:
        unknown_keys = [k for k in keys if k not in rubric.keys]
        if unknown_keys:
            raise ConfigError("eval.caption_keys", f"keys {unknown_keys} have no description in rubric {rubric.name}",
                              f"choose from {list(rubric.keys)}")
    work = Work(run=run, keys=keys, rubric=rubric, lingo_rubric=rubrics.lingoqa)
    _add_calls(e, work, list(e.metrics))
    return work


def _rubric(name: str, key: str) -> Rubric:
    try:
        return load_rubric(name)
    except (FileNotFoundError, ValueError) as e:
        raise ConfigError(key, str(e), "name a file under cosmos_exp/evaluate/rubrics/ or give a path") from e


def _add_calls(e: EvalConfig, work: Work, metrics: List[str]) -> None:
    jcfg = e.judge
    # Hoisted: DictConfig access is slow per call. A reasoning model is sent no temperature (its default).
    model, endpoint, temperature = str(jcfg.model), str(jcfg.base_url), sent_temperature(jcfg)
    fmt = value_format(work.rubric) if work.rubric is not None else render_value
    caption_key = key_maker(endpoint, model, work.rubric.sha256, temperature) if work.rubric is not None else None
    for rec in work.run.items:
        if rec["task"] == "caption" and "llm_judge" in metrics:
            for key, human, answer in caption_pairs(rec, work.keys, fmt):
                ck = caption_key(key, human, answer)
                work.shown[(rec["id"], key)] = (human, answer)
                fields = {"key": key, "description": work.rubric.keys[key], "human_answer": human,
                          "model_answer": answer}
                work.calls.append(JudgeCall(ck, fields, work.rubric))
                work.call_of[(rec["id"], "llm_judge", key)] = ck
        elif rec["task"] == "lingoqa" and "lingoqa_llm" in metrics:
            question, refs, pred = lingoqa_fields(rec)
            if not refs:
                continue
            references = "\n".join(f"- {r}" for r in refs)
            ck = cache_key(endpoint, model, work.lingo_rubric.sha256, temperature, "lingoqa",
                           question + "\n" + references, pred)
            fields = {"question": question, "references": references, "prediction": pred}
            work.calls.append(JudgeCall(ck, fields, work.lingo_rubric))
            work.call_of[(rec["id"], "lingoqa_llm", "answer")] = ck


def key_states(rec: Dict[str, Any], keys: List[str], parsed: Any = False) -> Dict[str, str]:
    """For each key: 'present' or why it cannot be scored (`parsed`: the caption's object when already read)."""
    if parsed is False:
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


def caption_pairs(rec: Dict[str, Any], keys: List[str], fmt: Callable[[Any], str] = render_value
                  ) -> List[Tuple[str, str, str]]:
    """(key, human answer, model answer) for every key present on both sides, shown as `fmt` shows values."""
    parsed, _ = parsed_caption(rec)
    states = key_states(rec, keys, parsed)
    return [(k, fmt(rec["reference"][k]), fmt(parsed[k])) for k in keys if states[k] == "present"]


def value_format(rubric: Rubric) -> Callable[[Any], str]:
    """How the rubric shows caption values to the judge: ours (lists joined, null as "(none)"), or Python's str()
    as a `%s` format prints them (the cookbook judge: ['a', 'b'], None)."""
    return python_str if rubric.values == "python_str" else render_value


def python_str(value: Any) -> str:
    return "%s" % (value,)
