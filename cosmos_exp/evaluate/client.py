"""The bounded, retrying, budgeted LLM judge client (openai's AsyncOpenAI against any compatible server).

Each distinct call (by cache key) is made at most once per run; every call ends `scored` or `failed`
with the reason, never dropped. How fast requests go out is evaluate/pacing.py's: at most `concurrency` in
flight, and with `adaptive` a send rate that follows the server's rate limit (429s and Retry-After). Retries:
429 (honouring Retry-After), 5xx, timeouts, connection errors, malformed bodies, with capped exponential
backoff and jitter; empty or unparseable answers are retried
`max_parse_retries` times, then the last answer is stored in the cache (score NULL) and recorded as failed: the
next run reads it again without paying unless `retry_unparsed`. `max_cost_usd` is checked before every request,
counting what is in flight at its upper-bound estimate, so the budget stops new requests instead of being
overrun by them. Reasoning models (gpt-5, the o-series) get `max_completion_tokens` and no temperature, as
their API requires.
"""

import asyncio
import email.utils
import logging
import random
import re
import time
from dataclasses import asdict, dataclass, field
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Optional

from cosmos_exp.config.evaluation import JudgeConfig
from cosmos_exp.evaluate.cache import JudgeCache
from cosmos_exp.evaluate.pacing import AdaptiveGate
from cosmos_exp.evaluate.rubric import Rubric

log = logging.getLogger(__name__)
_MAX_RETRY_AFTER_S = 300.0
_KEYISH = re.compile(r"sk-[A-Za-z0-9*_\-]{3,}")
# gpt-5, gpt-5-mini, gpt-5.1, o1, o3-mini, o4-mini (also behind a provider prefix such as openai/gpt-5).
_REASONING_MODEL = re.compile(r"^(?:.*/)?(?:gpt-5|o\d+)(?:[-.].*)?$")
UNPARSED_STORED = "the stored judge answer did not parse (no request made; eval.judge.retry_unparsed=true asks again)"


@dataclass
class JudgeCall:
    key: str  # cache key
    fields: Dict[str, str]  # the rubric template's fields
    rubric: Rubric

    @property
    def messages(self) -> List[Dict[str, str]]:
        """Built when a request is made: a cached call never needs its prompt."""
        return self.rubric.messages(**self.fields)


@dataclass
class JudgeOutcome:
    status: str  # scored | failed
    score: Optional[int] = None
    text: Optional[str] = None
    cached: bool = False
    attempts: int = 0
    error: Optional[str] = None
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class Usage:
    requests: int = 0  # HTTP requests sent, retries included
    calls: int = 0  # distinct judgements needed after the cache
    cache_hits: int = 0
    cached_unparsed: int = 0  # stored answers that still do not parse (failed, no request)
    scored: int = 0
    failed: int = 0
    retries: int = 0
    rejected: int = 0  # requests the server refused with 429 (rate limit)
    rate_cuts: int = 0  # times the adaptive send rate was cut (evaluate/pacing.py)
    budget_stopped: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    wall_s: float = 0.0
    errors: Dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """The run's account for people: calls made, retried, rejected and what they cost."""
        return (f"{self.calls} calls made ({self.scored} scored, {self.failed} failed) in {self.requests} requests, "
                f"{self.retries} retried, {self.rejected} rejected by the rate limit, ${self.cost_usd:.4f}; "
                f"{self.cache_hits} from the cache" + (f" ({self.cached_unparsed} stored answers that do not parse)"
                                                       if self.cached_unparsed else "")
                + f"; {self.wall_s:.1f} s")


def is_reasoning_model(jcfg: JudgeConfig) -> bool:
    flag = getattr(jcfg, "reasoning", None)
    return bool(flag) if flag is not None else bool(_REASONING_MODEL.match(str(jcfg.model)))


def sent_temperature(jcfg: JudgeConfig) -> Optional[float]:
    """The temperature a request carries; None for a reasoning model (its default, the only one it accepts)."""
    return None if is_reasoning_model(jcfg) else float(jcfg.temperature)


def request_args(jcfg: JudgeConfig) -> Dict[str, Any]:
    """Every request's arguments but the messages, shaped for the model's API."""
    args: Dict[str, Any] = {"model": jcfg.model}
    if is_reasoning_model(jcfg):
        args["max_completion_tokens"] = int(jcfg.max_tokens)
    else:
        args.update(temperature=float(jcfg.temperature), max_tokens=int(jcfg.max_tokens))
    if jcfg.seed is not None:
        args["seed"] = jcfg.seed
    return args


def estimate_tokens(messages: List[Dict[str, str]]) -> int:
    """Rough prompt size (about 4 characters a token, plus per-message overhead) for cost estimates."""
    return sum(len(m["content"]) for m in messages) // 4 + 8 * len(messages)


def cost_usd(input_tokens: int, output_tokens: int, jcfg: JudgeConfig) -> float:
    return input_tokens * jcfg.price_input_per_mtok / 1e6 + output_tokens * jcfg.price_output_per_mtok / 1e6


class Budget:
    """Spent plus reserved (in flight, at an upper-bound estimate) never passes max_cost_usd."""

    def __init__(self, max_cost_usd: Optional[float]) -> None:
        self.max = max_cost_usd
        self.spent = 0.0
        self.reserved = 0.0

    def reserve(self, amount: float) -> bool:
        if self.max is not None and self.spent + self.reserved + amount > self.max:
            return False
        self.reserved += amount
        return True

    def settle(self, reserved: float, actual: float) -> None:
        self.reserved -= reserved
        self.spent += actual


def retry_after_s(headers: Any) -> Optional[float]:
    """Seconds the server asked us to wait: retry-after-ms, retry-after as seconds or as an HTTP date."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def backoff_s(attempt: int, jcfg: JudgeConfig, rng: random.Random) -> float:
    """Exponential backoff with 'equal jitter': half fixed, half random, so retries spread out."""
    cap = min(jcfg.backoff_max_s, jcfg.backoff_base_s * (2 ** (attempt - 1)))
    return cap / 2 + rng.uniform(0, cap / 2)


def judge_calls(calls: List[JudgeCall], jcfg: JudgeConfig, api_key: str, cache: JudgeCache,
                on_done: Optional[Callable[[str, JudgeOutcome], None]] = None) -> tuple:
    """Run every call (cache first); returns ({cache key: JudgeOutcome}, Usage)."""
    if not isinstance(jcfg, SimpleNamespace):  # a DictConfig: plain attributes are much cheaper per call
        from omegaconf import OmegaConf

        jcfg = SimpleNamespace(**OmegaConf.to_container(jcfg, resolve=True))
    t0 = time.perf_counter()
    unique: Dict[str, JudgeCall] = {}
    for c in calls:
        unique.setdefault(c.key, c)
    usage = Usage()
    outcomes = cached_outcomes(unique, cache, bool(getattr(jcfg, "retry_unparsed", False)), usage)
    todo = [c for k, c in unique.items() if k not in outcomes]
    usage.calls = len(todo)
    if todo:  # the event loop and the openai client only when a request is to be made
        asyncio.run(_request_all(todo, jcfg, api_key, cache, on_done, outcomes, usage))
    usage.wall_s = time.perf_counter() - t0
    if todo or usage.cached_unparsed:
        log.info("judge: %s", usage.describe())
    return outcomes, usage


async def _request_all(todo: List[JudgeCall], jcfg: JudgeConfig, api_key: str, cache: JudgeCache, on_done: Any,
                       outcomes: Dict[str, JudgeOutcome], usage: Usage) -> None:
    import openai  # heavy: imported only here

    for name in ("httpx", "httpx2"):  # one INFO line per request would drown the judge's own progress lines
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger(name).level))
    # A plain-http server (a local one) needs no TLS: skipping the certificate store saves 30-60 ms per run.
    http = openai.DefaultAsyncHttpxClient(verify=False) if str(jcfg.base_url).startswith("http://") else None
    client = openai.AsyncOpenAI(base_url=jcfg.base_url, api_key=api_key, timeout=jcfg.timeout_s, max_retries=0,
                                http_client=http)
    gate = AdaptiveGate(jcfg.concurrency, adaptive=bool(getattr(jcfg, "adaptive", True)))
    budget = Budget(jcfg.max_cost_usd)
    rng = random.Random(jcfg.seed)
    args = request_args(jcfg)
    try:
        async def one(call: JudgeCall) -> None:
            out = await _one_call(call, client, openai, gate, budget, jcfg, usage, cache, rng, args)
            out.error = scrub(out.error, api_key)
            outcomes[call.key] = out
            if out.status == "scored":
                usage.scored += 1
            else:
                usage.failed += 1
            done = usage.scored + usage.failed
            if done % 200 == 0 or done == len(todo):
                log.info("judge: %d/%d calls done (%d failed, %d rejected by the rate limit, $%.4f)", done,
                         len(todo), usage.failed, usage.rejected, budget.spent)
            if on_done is not None:
                on_done(call.key, out)

        await asyncio.gather(*(one(c) for c in todo))
    finally:
        await client.close()
        cache.flush()
    usage.cost_usd = budget.spent
    usage.rate_cuts = gate.cuts


def cached_outcomes(unique: Dict[str, JudgeCall], cache: JudgeCache, retry_unparsed: bool,
                    usage: Usage) -> Dict[str, JudgeOutcome]:
    """Outcomes the cache already holds. A stored answer that did not parse is read again with the rubric's
    parser (a newer one may read it; its score is then kept); one that still does not is a failure without a
    request, or, with retry_unparsed, a call to make again."""
    outcomes: Dict[str, JudgeOutcome] = {}
    for k, hit in cache.get_many(unique).items():
        score = hit["score"]
        if score is None:
            score = unique[k].rubric.parse_score(hit["text"])
            if score is not None:
                cache.set_score(k, score)
            elif retry_unparsed:
                continue
        if score is None:
            outcomes[k] = JudgeOutcome("failed", text=hit["text"], cached=True, error=UNPARSED_STORED)
            usage.cached_unparsed += 1
        else:
            outcomes[k] = JudgeOutcome("scored", score=score, text=hit["text"], cached=True)
        usage.cache_hits += 1
    return outcomes


async def _one_call(call, client, openai, gate, budget, jcfg, usage, cache, rng, args) -> JudgeOutcome:
    out = JudgeOutcome("failed")
    parse_failures = 0
    messages = call.messages
    reserve = cost_usd(estimate_tokens(messages) * 4 // 3 + 16, jcfg.max_tokens, jcfg)
    # The SDK's low-level post: the same client, auth, errors and timeouts as chat.completions.create, without
    # re-validating our plain-dict request against its TypedDicts and building a pydantic model of the answer
    # (together about half of the client's CPU time per call).
    body = {**args, "messages": messages}
    while True:
        delay = None
        sent_at = await gate.acquire()
        refused, retry_after = False, None
        if not budget.reserve(reserve):
            gate.unused()  # nothing was sent: the slot is free again
            usage.budget_stopped += 1
            out.error = f"max_cost_usd={jcfg.max_cost_usd} reached; request not sent"
            return out
        out.attempts += 1
        usage.requests += 1
        actual = 0.0
        try:
            resp = await client.post("/chat/completions", cast_to=dict, body=body)
            used = resp.get("usage") or {}
            tin, tout = int(used.get("prompt_tokens") or 0), int(used.get("completion_tokens") or 0)
            actual = cost_usd(tin, tout, jcfg)
            out.input_tokens += tin
            out.output_tokens += tout
            usage.input_tokens += tin
            usage.output_tokens += tout
            choices = resp["choices"]
            text = choices[0]["message"]["content"] if choices else None
            score = call.rubric.parse_score(text)
            if score is not None:
                out.status, out.score, out.text, out.error = "scored", score, text, None
                cache.put(call.key, jcfg.model, call.rubric.version, score, text, tin, tout)
                return out
            parse_failures += 1
            out.text = text
            out.error = ("empty judge answer" if not text else f"no {call.rubric.tag_example} on the rubric's "
                         f"{call.rubric.score_min}-{call.rubric.score_max} scale in the judge answer")
            _count(usage, "unparseable")
            if parse_failures > jcfg.max_parse_retries:
                # Paid for: stored, so the next run reads it again instead of asking again.
                cache.put(call.key, jcfg.model, call.rubric.version, None, text or "", tin, tout)
                out.error += " (stored in the cache; eval.judge.retry_unparsed=true asks again)"
                return out
            delay = 0.0
        except openai.APITimeoutError:
            out.error = f"timeout after {jcfg.timeout_s}s"
            _count(usage, "timeout")
        except openai.APIConnectionError as e:
            out.error = f"connection error: {e}"
            _count(usage, "connection")
        except openai.APIStatusError as e:
            out.error = f"HTTP {e.status_code}: {str(e)[:200]}"
            _count(usage, str(e.status_code))
            if e.status_code == 429 or e.status_code >= 500 or e.status_code in (408, 409):
                delay = retry_after_s(e.response.headers)
                if e.status_code == 429:
                    usage.rejected += 1
                    refused, retry_after = True, delay
            else:
                return out  # 400/401/403/404: retrying cannot help
        except (openai.APIError, ValueError, KeyError, AttributeError, IndexError, TypeError) as e:
            out.error = f"malformed response: {type(e).__name__}: {str(e)[:200]}"
            _count(usage, "malformed")
        finally:
            budget.settle(reserve, actual)
            if refused:
                gate.refused(sent_at, retry_after)
            else:
                gate.answered(sent_at)
        if out.attempts > jcfg.max_retries:
            out.error = f"gave up after {out.attempts} attempts: {out.error}"
            return out
        usage.retries += 1
        if delay is None:
            delay = backoff_s(out.attempts, jcfg, rng)
        elif delay > 0:
            # The server's Retry-After wins over our own backoff cap (bounded only against absurd values).
            delay = min(delay, max(jcfg.backoff_max_s, _MAX_RETRY_AFTER_S)) + rng.uniform(0, min(1.0, 0.1 * delay))
        if delay > 0:
            await asyncio.sleep(delay)


def scrub(text: Optional[str], api_key: str) -> Optional[str]:
    """Error texts go into score files: drop the key and the masked key fragments some APIs echo back."""
    if not text:
        return text
    if api_key:
        text = text.replace(api_key, "***")
    return _KEYISH.sub("sk-***", text)


def _count(usage: Usage, what: str) -> None:
    usage.errors[what] = usage.errors.get(what, 0) + 1
