"""A real OpenAI-compatible HTTP server on 127.0.0.1 for judge tests and the judge benchmark.

POST /v1/chat/completions answers rubric-shaped text ("reasoning ... <score>N</score>") with a score
that is a deterministic function of the prompt, and reports token usage. Faults can be injected:
  server.faults            - a queue applied to the next requests in arrival order
  server.faults_for[text]  - a queue applied to requests whose prompt contains `text`
Each fault is a tuple: ("429", retry_after_s or None), ("500",), ("503",), ("400",), ("401",), ("timeout", sleep_s),
("empty",), ("no_tag",), ("malformed",) (a non-JSON 200 body), ("no_choices",).
As the real API does, a reasoning model (gpt-5, o-series) sent `max_tokens` or a temperature other than 1 gets 400.

A rate limit (`rate_limit` requests/s, token bucket of `burst`) answers 429 with Retry-After beyond it.

Run standalone (the benchmark does, so the server has its own process):
    python tests/_judge_server.py --latency 0.1 [--rate-limit 40]   # prints "READY <base_url>", serves until killed
"""

import argparse
import hashlib
import json
import math
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional


# The two answers as our rubrics lay them out: similarity_v1, and avha_v1 (the cookbook judge's protocol).
_ANSWERS = [re.compile(r"Human annotator's answer:\n(.*?)\n\nModel's answer:\n(.*?)\n\n", re.S),
            re.compile(r"Answer written by a person:\n(.*?)\n\nAnswer given by the model:\n(.*?)\n\n", re.S)]
# OpenAI's reasoning models refuse these (HTTP 400), as the real API does.
_REASONING = re.compile(r"^(?:gpt-5|o\d+)(?:[-.].*)?$")


def score_for(prompt: str) -> int:
    """Deterministic score: 5 when both answers are identical, else from a hash, on the prompt's own scale."""
    if "<score>0</score>" in prompt:  # a 0/1 verdict rubric
        return int(hashlib.sha256(prompt.encode()).digest()[0] % 2)
    for pattern in _ANSWERS:
        m = pattern.search(prompt)
        if m and m.group(1).strip() == m.group(2).strip():
            return 5
    return 1 + hashlib.sha256(prompt.encode()).digest()[0] % 5


def score_tag(prompt: str) -> str:
    """The tag the rubric asks the score in: <answer>N</answer> (the cookbook's) or <score>N</score>."""
    return "answer" if "<answer>N</answer>" in prompt else "score"


def unsupported_for_reasoning(body: Dict[str, Any]) -> Optional[str]:
    if not _REASONING.match(str(body.get("model", ""))):
        return None
    if "max_tokens" in body:
        return "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens'."
    if body.get("temperature", 1) != 1:
        return f"Unsupported value: 'temperature' does not support {body['temperature']} with this model."
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # listen() backlog: the default 5 resets connections when 32 clients arrive at once


class TokenBucket:
    """A rate limit as APIs enforce one: `rate` requests/s on average, bursts of up to `burst`."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = float(rate), float(burst)
        self.tokens, self.t = float(burst), time.monotonic()

    def take(self) -> Optional[float]:
        """None when the request may pass (a token is taken), else the seconds until a token is there."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
        self.t = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        return (1.0 - self.tokens) / self.rate


class FakeJudgeServer:
    def __init__(self, latency_s: float = 0.0, port: int = 0, rate_limit: Optional[float] = None,
                 burst: Optional[float] = None) -> None:
        self.latency_s = latency_s
        # Beyond the limit: 429 at once, with Retry-After (whole seconds, as HTTP says) and retry-after-ms.
        self.bucket = TokenBucket(rate_limit, burst or max(1.0, rate_limit / 4)) if rate_limit else None
        self.faults: List[tuple] = []
        self.faults_for: Dict[str, List[tuple]] = {}
        self.requests: List[Dict[str, Any]] = []  # one record per request received
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real APIs do
            # Headers and body go out in two writes; with Nagle on, the client's delayed ACK adds 40 ms to each.
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
                with server.lock:
                    wait = server.bucket.take() if server.bucket is not None else None
                    server.requests.append({"t": time.monotonic(), "body": body, "limited": wait is not None,
                                            "authorization": self.headers.get("Authorization")})
                    fault = server._next_fault(prompt) if wait is None else None
                if wait is not None:
                    return self._send(429, {"error": {"message": "rate limit reached", "type": "requests"}},
                                      {"Retry-After": str(math.ceil(wait)), "retry-after-ms": str(math.ceil(wait * 1000))})
                if server.latency_s:
                    time.sleep(server.latency_s)
                try:
                    self._answer(body, prompt, fault)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout faults)

            def _answer(self, body: Dict[str, Any], prompt: str, fault: Optional[tuple]) -> None:
                kind = fault[0] if fault else None
                refused = unsupported_for_reasoning(body)
                if refused:
                    return self._send(400, {"error": {"message": refused, "type": "invalid_request_error"}})
                if kind == "429":
                    headers = {"Retry-After": str(fault[1])} if len(fault) > 1 and fault[1] is not None else {}
                    return self._send(429, {"error": {"message": "rate limited", "type": "rate_limit"}}, headers)
                if kind in ("400", "401"):  # echoes a masked key, as the real API does for a wrong one
                    auth = (self.headers.get("Authorization") or "")[7:]
                    return self._send(int(kind), {"error": {"message": f"Incorrect API key provided: "
                                                            f"{auth[:6]}***{auth[-4:]}", "type": "invalid_request"}})
                if kind in ("500", "502", "503"):
                    return self._send(int(kind), {"error": {"message": "server error", "type": "server"}})
                if kind == "timeout":
                    time.sleep(fault[1])
                if kind == "malformed":
                    return self._send_raw(200, b"this is not json {", "application/json")
                if kind == "no_choices":
                    return self._send(200, {"id": "x", "object": "chat.completion", "created": 0,
                                            "model": body.get("model"), "choices": []})
                score, tag = score_for(prompt), score_tag(prompt)
                text = {"empty": "", "no_tag": "The answers look similar. Score: four."}.get(
                    kind, f"Both answers describe the scene; judged on meaning.\n<{tag}>{score}</{tag}>")
                self._send(200, {
                    "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": len(prompt) // 4 + 1, "completion_tokens": len(text) // 4 + 1,
                              "total_tokens": len(prompt) // 4 + len(text) // 4 + 2},
                })

            def _send(self, code: int, obj: Dict[str, Any], headers: Optional[Dict[str, str]] = None) -> None:
                self._send_raw(code, json.dumps(obj).encode(), "application/json", headers)

            def _send_raw(self, code: int, data: bytes, ctype: str, headers: Optional[Dict[str, str]] = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = _Server(("127.0.0.1", port), Handler)
        self.thread: Optional[threading.Thread] = None

    def _next_fault(self, prompt: str) -> Optional[tuple]:
        for text, queue in self.faults_for.items():
            if text in prompt and queue:
                return queue.pop(0)
        return self.faults.pop(0) if self.faults else None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def start(self) -> "FakeJudgeServer":
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "FakeJudgeServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--rate-limit", type=float, default=None, help="requests/s; beyond it 429 with Retry-After")
    ap.add_argument("--burst", type=float, default=None, help="burst size of the rate limit (default limit/4)")
    args = ap.parse_args()
    server = FakeJudgeServer(latency_s=args.latency, port=args.port, rate_limit=args.rate_limit, burst=args.burst)
    print(f"READY {server.base_url}", flush=True)
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()


if __name__ == "__main__":
    sys.exit(main())


# ---- fixtures shared by the judge tests and the benchmark -------------------------------------------

CAPTION_KEYS = ["weather", "lighting", "road_conditions", "traffic_light", "traffic_sign",
                "additional_traffic_rules", "road_type", "junction_type", "lane_type", "additional_map_rules",
                "interactive_expanded_metaaction", "safety_analysis", "driving_difficulty", "rule_violation",
                "interesting_scenario"]


def write_caption_record(run_dir, rec: Dict[str, Any]) -> None:
    """One captions/<id>.json in the INFER stage's format (the contract), filled with defaults."""
    from pathlib import Path

    full = {"id": rec["id"], "task": "caption", "video": f"/data/videos/{rec['id']}.mp4", "raw_text": "",
            "parsed": None, "parse_status": "no_json", "reference": {}, "question": None, "prompt_hash": "p0",
            "generation": {"do_sample": False}, "checkpoint": "/ckpt/step_10"}
    full.update(rec)
    if "parsed" in rec and isinstance(rec["parsed"], dict) and "parse_status" not in rec:
        full["parse_status"] = "ok"
        full["raw_text"] = full["raw_text"] or "```json\n" + json.dumps(rec["parsed"]) + "\n```"
    d = Path(run_dir) / "captions"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{rec['id']}.json").write_text(json.dumps(full, indent=1), encoding="utf-8")


def label(i: int) -> Dict[str, Any]:
    """A 15-key ground-truth label that differs between items."""
    weathers = ["Clear", "Light rain", "Overcast", "Fog"]
    return {"weather": weathers[i % 4], "lighting": "Daytime", "road_conditions": "Dry" if i % 2 else "Wet",
            "traffic_light": "N/A", "traffic_sign": f"A speed limit {30 + 10 * (i % 5)} sign.",
            "additional_traffic_rules": None, "road_type": "Residential street",
            "junction_type": "Straight segment", "lane_type": "Single lane each direction",
            "additional_map_rules": None, "interactive_expanded_metaaction": ["Vehicle following"],
            "safety_analysis": f"The ego vehicle follows car number {i} and slows for a pedestrian.",
            "driving_difficulty": 1 + i % 4, "rule_violation": "False", "interesting_scenario": "True"}


def write_caption_run(run_dir, n: int, keys=None, index: bool = True) -> None:
    """n caption items whose model answers agree with the label on some keys and differ on others."""
    from pathlib import Path

    keys = keys or CAPTION_KEYS
    for i in range(n):
        ref = {k: v for k, v in label(i).items() if k in keys}
        pred = dict(ref)
        pred["weather"] = label(i + 1)["weather"]
        pred["safety_analysis"] = f"The ego car follows vehicle {i} and brakes for someone crossing."
        write_caption_record(run_dir, {"id": f"clip{i:04d}", "reference": ref, "parsed": pred})
    if index:
        (Path(run_dir) / "captions" / "index.json").write_text(json.dumps(
            {"counts": {"done": n, "skipped": 0, "failed": 0}, "checkpoint": "/ckpt/step_10", "dataset": "synthetic"}))
