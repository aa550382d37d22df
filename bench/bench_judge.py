"""Judge throughput, each figure against its own limit, as medians of several runs:

1. latency-bound: fixed concurrency 32 against the loopback OpenAI-compatible server with 100 ms injected latency
   (its limit: 32 / 0.1 s = 320 calls/s; goal >= 0.8 of it), beside one call at a time and the adaptive default;
2. a cached re-score: re-scoring a 1,000-item caption run whose judgements are all cached (goal < 1 s);
3. rate-bound: the same server enforcing N requests/s (429 with Retry-After beyond it; N far below what 2 cores
   drive, so this measures the concurrency control, not the CPU): the adaptive judge against fixed concurrency 32
   in the same run, as calls/s over N and the share of requests rejected (goal: >= 0.9 of N, < 5% rejected).

The servers run in their own processes. The load average is printed: on a shared machine the figures swing.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_judge.py [--runs 3] [--limit 40] [--no-write]
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from omegaconf import OmegaConf  # noqa: E402

from _judge_server import write_caption_run  # noqa: E402
from cosmos_exp.config.evaluation import EvalConfig, JudgeConfig  # noqa: E402
from cosmos_exp.config.schema import Config  # noqa: E402
from cosmos_exp.evaluate.cache import JudgeCache, cache_key  # noqa: E402
from cosmos_exp.evaluate.client import JudgeCall, Usage, judge_calls  # noqa: E402
from cosmos_exp.evaluate.rubric import load_rubric  # noqa: E402
from cosmos_exp.stages import judge as judge_stage  # noqa: E402
from timing import record_result  # noqa: E402  (bench/ is the script's own folder)

LATENCY_S = 0.1
CONCURRENCY = 32


def start_server(latency: float, rate_limit: Optional[float] = None, burst: Optional[float] = None):
    argv = [sys.executable, str(ROOT / "tests" / "_judge_server.py"), "--latency", str(latency)]
    if rate_limit:
        argv += ["--rate-limit", str(rate_limit)] + (["--burst", str(burst)] if burst else [])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    if not line.startswith("READY "):
        proc.kill()
        raise RuntimeError(f"judge server did not start: {line!r}")
    return proc, line.split()[1]


def calls(n: int, tag: str) -> List[JudgeCall]:
    rubric = load_rubric("similarity_v1")
    out = []
    for i in range(n):
        human, answer = f"Light rain, item {tag}-{i}", f"Drizzle, item {tag}-{i}"
        out.append(JudgeCall(cache_key("loopback", "bench-judge", rubric.sha256, 0.0, "weather", human, answer),
                             {"key": "weather", "description": rubric.keys["weather"], "human_answer": human,
                              "model_answer": answer}, rubric))
    return out


def judge(base_url: str, n: int, concurrency: int, adaptive: bool, tag: str, cache_path: Path) -> Usage:
    jcfg = OmegaConf.structured(JudgeConfig(base_url=base_url, model="bench-judge", concurrency=concurrency,
                                            adaptive=adaptive, backoff_base_s=0.05, cache_path=str(cache_path)))
    with JudgeCache(cache_path) as cache:
        _, usage = judge_calls(calls(n, tag), jcfg, "sk-bench", cache)
    return usage


def cached_rescore(base_url: str, tmp: Path, items: int, repeats: int) -> Dict[str, float]:
    """Score a caption run once (paying), then re-score it `repeats` times from the cache into new run dirs."""
    write_caption_run(tmp / "cap", items)
    cfg = OmegaConf.structured(Config)
    cfg.eval = OmegaConf.structured(EvalConfig)
    cfg.paths.root = str(tmp / "out")
    cfg.captions = str(tmp / "cap")
    cfg.eval.metrics = ["llm_judge"]
    cfg.eval.judge.base_url, cfg.eval.judge.api_key_env = base_url, "BENCH_JUDGE_KEY"
    cfg.eval.judge.concurrency = CONCURRENCY
    t0 = time.perf_counter()
    judge_stage.run(cfg, tmp / "first")
    first = time.perf_counter() - t0
    made = json.loads((tmp / "first" / "summary.json").read_text())["metrics"]["llm_judge"]["usage"]["calls"]
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        judge_stage.run(cfg, tmp / f"cached{r}")
        times.append(time.perf_counter() - t0)
        usage = json.loads((tmp / f"cached{r}" / "summary.json").read_text())["metrics"]["llm_judge"]["usage"]
        assert usage["requests"] == 0, usage
    return {"first_s": first, "calls": made, "cached_s": statistics.median(times), "cached_all": times}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3, help="repeats of each figure; medians are reported")
    ap.add_argument("--calls", type=int, default=640)
    ap.add_argument("--seq-calls", type=int, default=40)
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--limit", type=float, default=40.0, help="rate limit of the rate-bound server, requests/s")
    ap.add_argument("--burst", type=float, default=10.0, help="its burst")
    ap.add_argument("--limited-calls", type=int, default=600)
    ap.add_argument("--no-write", action="store_true", help="do not append to bench/RESULTS.md")
    args = ap.parse_args()
    os.environ["BENCH_JUDGE_KEY"] = "sk-bench"
    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="bench_judge_"))
    ideal = CONCURRENCY / LATENCY_S
    proc, base_url = start_server(LATENCY_S)
    try:
        seq, fixed, adapt = [], [], []
        for r in range(args.runs):
            u = judge(base_url, args.seq_calls, 1, False, f"seq{r}", tmp / f"s{r}.sqlite")
            seq.append(args.seq_calls / u.wall_s)
            u = judge(base_url, args.calls, CONCURRENCY, False, f"fix{r}", tmp / f"f{r}.sqlite")
            assert u.scored == args.calls == u.requests, u
            fixed.append(args.calls / u.wall_s / ideal)
            u = judge(base_url, args.calls, CONCURRENCY, True, f"ada{r}", tmp / f"a{r}.sqlite")
            adapt.append(args.calls / u.wall_s / ideal)
            print(f"run {r + 1}: sequential {seq[-1]:.1f} calls/s; concurrency {CONCURRENCY} {fixed[-1]:.2f} of "
                  f"{ideal:.0f}/s; adaptive {adapt[-1]:.2f}", flush=True)
        rescore = cached_rescore(base_url, tmp, args.items, args.runs)
        print(f"{args.items} items x 15 keys: first run {rescore['first_s']:.2f} s ({rescore['calls']} calls), "
              f"cached re-score {', '.join(f'{t:.2f}' for t in rescore['cached_all'])} s", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    proc, limited_url = start_server(LATENCY_S, args.limit, args.burst)
    try:
        rows: Dict[str, List[Dict[str, float]]] = {"adaptive": [], "fixed": []}
        for r in range(args.runs):
            for mode in ("adaptive", "fixed"):
                u = judge(limited_url, args.limited_calls, CONCURRENCY, mode == "adaptive", f"lim{mode}{r}",
                          tmp / f"l{mode}{r}.sqlite")
                rows[mode].append({"of_limit": u.scored / u.wall_s / args.limit,
                                   "rejected": u.rejected / max(1, u.requests), "failed": u.failed,
                                   "requests": u.requests})
                x = rows[mode][-1]
                print(f"run {r + 1} rate limit {args.limit:g}/s, {mode}: {x['of_limit']:.2f} of the limit, "
                      f"{100 * x['rejected']:.1f}% of {u.requests} requests rejected, {u.failed} calls failed",
                      flush=True)
                time.sleep(1.0)  # the bucket refills: each mode starts from the same state
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    med = lambda xs: statistics.median(xs)  # noqa: E731
    lim = {m: {k: med([x[k] for x in v]) for k in ("of_limit", "rejected", "failed")} for m, v in rows.items()}
    load = f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    line = (f"- {datetime.date.today()} {platform.node() or 'host'} ({os.cpu_count()} cpus, {load}), medians of "
            f"{args.runs}: latency {LATENCY_S * 1000:.0f} ms: sequential {med(seq):.1f} calls/s, fixed concurrency "
            f"{CONCURRENCY} {med(fixed):.2f} of the {ideal:.0f} calls/s limit (goal >= 0.8; runs "
            f"{', '.join(f'{x:.2f}' for x in fixed)}), adaptive {med(adapt):.2f}; {args.items}-item run: first "
            f"{rescore['first_s']:.2f} s ({rescore['calls']} calls), cached re-score {rescore['cached_s']:.2f} s "
            f"(goal < 1 s); rate limit {args.limit:g}/s (burst {args.burst:g}), {args.limited_calls} calls: adaptive "
            f"{lim['adaptive']['of_limit']:.2f} of the limit, {100 * lim['adaptive']['rejected']:.1f}% rejected "
            f"(goal >= 0.9, < 5%); fixed concurrency {CONCURRENCY} {lim['fixed']['of_limit']:.2f} of the limit, "
            f"{100 * lim['fixed']['rejected']:.1f}% rejected, {lim['fixed']['failed']:.0f} calls failed")
    print(line)
    if not args.no_write:
        record_result("judge (bench/bench_judge.py)", line)


if __name__ == "__main__":
    main()
