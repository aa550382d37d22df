"""Judge throughput: concurrency 32 vs one call at a time against the local OpenAI-compatible server with
100 ms injected latency (the server runs in its own process), and the time to re-score a 1,000-item
caption run whose judgements are all cached.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_judge.py [--calls 640] [--seq-calls 40] [--items 1000]
"""

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from omegaconf import OmegaConf  # noqa: E402

from _judge_server import write_caption_run  # noqa: E402
from cosmos_exp.config.evaluation import EvalConfig, JudgeConfig  # noqa: E402
from cosmos_exp.config.schema import Config  # noqa: E402
from cosmos_exp.stages import judge as judge_stage  # noqa: E402
from cosmos_exp.evaluate.cache import JudgeCache, cache_key  # noqa: E402
from cosmos_exp.evaluate.client import JudgeCall, judge_calls  # noqa: E402
from cosmos_exp.evaluate.rubric import load_rubric  # noqa: E402
from timing import record_result  # noqa: E402  (bench/ is the script's own folder)

LATENCY_S = 0.1
CONCURRENCY = 32


def start_server(latency: float):
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "_judge_server.py"), "--latency", str(latency)],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    if not line.startswith("READY "):
        proc.kill()
        raise RuntimeError(f"judge server did not start: {line!r}")
    return proc, line.split()[1]


def calls(n: int, tag: str):
    rubric = load_rubric("similarity_v1")
    out = []
    for i in range(n):
        human, answer = f"Light rain, item {tag}-{i}", f"Drizzle, item {tag}-{i}"
        out.append(JudgeCall(cache_key("loopback", "bench-judge", rubric.sha256, 0.0, "weather", human, answer),
                             rubric.messages(key="weather", description=rubric.keys["weather"], human_answer=human,
                                             model_answer=answer), rubric))
    return out


def rate(base_url: str, n: int, concurrency: int, tag: str, cache_path: Path) -> float:
    jcfg = OmegaConf.structured(JudgeConfig(base_url=base_url, model="bench-judge", concurrency=concurrency,
                                            backoff_base_s=0.05, cache_path=str(cache_path)))
    with JudgeCache(cache_path) as cache:
        _, usage = judge_calls(calls(n, tag), jcfg, "sk-bench", cache)
    assert usage.scored == n and usage.requests == n, usage
    return n / usage.wall_s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=640)
    ap.add_argument("--seq-calls", type=int, default=40)
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--no-write", action="store_true", help="do not append to bench/RESULTS.md")
    args = ap.parse_args()
    os.environ["BENCH_JUDGE_KEY"] = "sk-bench"
    proc, base_url = start_server(LATENCY_S)
    tmp = Path(tempfile.mkdtemp(prefix="bench_judge_"))
    try:
        seq = rate(base_url, args.seq_calls, 1, "seq", tmp / "c1.sqlite")
        conc = rate(base_url, args.calls, CONCURRENCY, "conc", tmp / "c2.sqlite")
        ideal = CONCURRENCY / LATENCY_S
        print(f"sequential: {seq:.1f} calls/s; concurrency {CONCURRENCY}: {conc:.1f} calls/s "
              f"= {conc / seq:.1f}x sequential, {conc / ideal:.2f} of the limit {ideal:.0f}/s")
        # Re-scoring a cached 1,000-item caption run (15 keys each) through the whole stage.
        write_caption_run(tmp / "cap", args.items)
        cfg = OmegaConf.structured(Config)
        cfg.eval = OmegaConf.structured(EvalConfig)
        cfg.paths.root = str(tmp / "out")
        cfg.captions = str(tmp / "cap")
        cfg.eval.metrics = ["llm_judge"]
        cfg.eval.judge.base_url, cfg.eval.judge.api_key_env = base_url, "BENCH_JUDGE_KEY"
        cfg.eval.judge.concurrency = CONCURRENCY
        t0 = time.perf_counter()
        judge_stage.run(cfg, tmp / "run1")
        t_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        judge_stage.run(cfg, tmp / "run2")
        t_cached = time.perf_counter() - t0
        import json

        usage = json.loads((tmp / "run2" / "summary.json").read_text())["metrics"]["llm_judge"]["usage"]
        assert usage["requests"] == 0, usage
        calls_made = json.loads((tmp / "run1" / "summary.json").read_text())["metrics"]["llm_judge"]["usage"]["calls"]
        print(f"{args.items} items x 15 keys: first run {t_first:.2f} s ({calls_made} judge calls), "
              f"cached re-score {t_cached:.2f} s (0 requests), {t_first / t_cached:.1f}x faster")
        if not args.no_write:
            line = (f"- {datetime.date.today()} {platform.node() or 'host'} ({os.cpu_count()} cpus): latency {LATENCY_S * 1000:.0f} ms, "
                    f"sequential {seq:.1f} calls/s, concurrency {CONCURRENCY} {conc:.1f} calls/s = {conc / seq:.1f}x "
                    f"({conc / ideal:.2f} of limit); {args.items}-item run: first {t_first:.2f} s "
                    f"({calls_made} calls), cached re-score {t_cached:.2f} s ({t_first / t_cached:.1f}x)")
            record_result("judge (bench/bench_judge.py)", line)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
