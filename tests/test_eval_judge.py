"""stage=judge end to end against a real OpenAI-compatible HTTP server on 127.0.0.1 (tests/_judge_server.py)."""

import json
from collections import Counter
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from _judge_server import FakeJudgeServer, label, write_caption_record, write_caption_run
from cosmos_exp.config import ConfigError
from cosmos_exp.config.validate import check_eval
from cosmos_exp.config.evaluation import EvalConfig
from cosmos_exp.config.schema import Config
from cosmos_exp.stages import judge as judge_stage
from cosmos_exp.evaluate.rubric import load_rubric

KEY = "sk-test-DO-NOT-LEAK-QZXW"


@pytest.fixture
def server():
    with FakeJudgeServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("COSMOS_TEST_JUDGE_KEY", KEY)


def make_cfg(tmp_path: Path, captions: Path, server=None, **judge) -> "OmegaConf":
    cfg = OmegaConf.structured(Config)
    cfg.eval = OmegaConf.structured(EvalConfig)
    cfg.paths.root = str(tmp_path / "outputs")
    cfg.captions = str(captions)
    cfg.eval.metrics = ["llm_judge", "local", "bleu"]
    cfg.eval.bootstrap_samples = 200
    j = cfg.eval.judge
    j.api_key_env = "COSMOS_TEST_JUDGE_KEY"
    j.base_url = server.base_url if server else "http://127.0.0.1:9/v1"
    j.backoff_base_s, j.backoff_max_s, j.timeout_s, j.max_retries = 0.01, 0.05, 5.0, 4
    for k, v in judge.items():
        setattr(j, k, v)
    return cfg


def ok_responses(server) -> Counter:
    """How many times each distinct prompt was asked (every request, retries included)."""
    return Counter(json.dumps(r["body"]["messages"]) for r in server.requests)


def read_scores(run_dir: Path) -> dict:
    return {p.name: json.loads(p.read_text()) for p in (run_dir / "scores").glob("*.score.json")}


def test_scores_summary_and_traceability(tmp_path, server, caplog):
    write_caption_run(tmp_path / "cap", 4)
    cfg = make_cfg(tmp_path, tmp_path / "cap", server)
    with caplog.at_level("INFO", logger="cosmos_exp"):
        result = judge_stage.run(cfg, tmp_path / "run")
    scores = read_scores(tmp_path / "run")
    assert sorted(scores) == [f"clip{i:04d}.score.json" for i in range(4)]
    item = scores["clip0000.score.json"]
    keys = item["metrics"]["llm_judge"]["keys"]
    assert len(keys) == 15 and all(k["status"] == "scored" and 1 <= k["score"] <= 5 for k in keys.values())
    # The fake judge gives 5 exactly when the answers are identical: the model got lighting right, weather wrong.
    assert keys["lighting"]["score"] == 5 and keys["weather"]["human_answer"] == "Clear"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["captions_run"] == str((tmp_path / "cap").resolve())
    assert summary["checkpoint"] == "/ckpt/step_10" == result["checkpoint"]
    llm = summary["metrics"]["llm_judge"]
    assert llm["counts"]["judged"] == 60 and llm["counts"]["failed"] == 0
    assert llm["overall"]["ci_low"] <= llm["overall"]["mean"] <= llm["overall"]["ci_high"]
    assert set(llm["per_key"]) == set(load_rubric("similarity_v1").keys)
    assert llm["judge"]["rubric_sha256"] == load_rubric("similarity_v1").sha256
    assert summary["metrics"]["bleu"]["corpus"]["signature"].startswith("nrefs:1")
    assert summary["metrics"]["local"]["per_key"]["lighting"]["mean"] == 5.0
    # Identical (key, human, model) triples across items are judged once.
    assert llm["usage"]["calls"] == len(ok_responses(server)) == len(server.requests)
    # The headline numbers with their CIs are printed, not only written.
    said = caplog.text
    assert f"llm_judge {llm['headline']:.4g} [{llm['overall']['ci_low']:.4g}, {llm['overall']['ci_high']:.4g}] n=4" in said
    assert f"bleu (0-100) {summary['metrics']['bleu']['corpus']['score']:.4g} [" in said and "95% CIs" in said


def test_second_run_is_free_and_changed_rubric_is_not(tmp_path, server):
    write_caption_run(tmp_path / "cap", 3)
    cfg = make_cfg(tmp_path, tmp_path / "cap", server)
    judge_stage.run(cfg, tmp_path / "run1")
    first = len(server.requests)
    assert first > 0
    assert "0 calls to make" in judge_stage.plan(cfg).render()
    judge_stage.run(cfg, tmp_path / "run2")
    assert len(server.requests) == first  # all from the cache
    s2 = json.loads((tmp_path / "run2" / "summary.json").read_text())["metrics"]["llm_judge"]
    assert s2["usage"]["cache_hits"] == first and s2["usage"]["requests"] == 0
    s1 = json.loads((tmp_path / "run1" / "summary.json").read_text())["metrics"]["llm_judge"]
    assert s1["overall"] == s2["overall"]
    # One edited sentence in the rubric: a new hash, so nothing stale is reused.
    edited = tmp_path / "similarity_v2.txt"
    edited.write_text(load_rubric("similarity_v1").path.read_text().replace("at most four", "at most five"))
    cfg.eval.judge.rubric = str(edited)
    judge_stage.run(cfg, tmp_path / "run3")
    assert len(server.requests) == 2 * first


def test_faults_end_scored_or_failed_never_twice(tmp_path, server):
    write_caption_run(tmp_path / "cap", 6)
    # Item-targeted faults (the prompt contains the item's safety_analysis text).
    server.faults_for = {
        "follows car number 0": [("429", "0.3"), ("500",)],  # retried, then scored
        "follows car number 1": [("500",)] * 10,  # more than max_retries: recorded as failed
        "follows car number 2": [("empty",), ("no_tag",)],  # parse retries exhausted: failed
        "follows car number 3": [("malformed",), ("no_choices",)],  # retried, then scored
        "follows car number 4": [("timeout", 1.5)],  # client timeout, retried, then scored
    }
    cfg = make_cfg(tmp_path, tmp_path / "cap", server, timeout_s=0.5, max_parse_retries=1)
    judge_stage.run(cfg, tmp_path / "run")
    scores = read_scores(tmp_path / "run")
    assert len(scores) == 6
    sa = {f"clip{i:04d}": scores[f"clip{i:04d}.score.json"]["metrics"]["llm_judge"]["keys"]["safety_analysis"]
          for i in range(6)}
    assert sa["clip0000"]["status"] == "scored" and sa["clip0000"]["attempts"] == 3
    assert sa["clip0001"]["status"] == "failed" and "HTTP 500" in sa["clip0001"]["error"]
    assert sa["clip0001"]["attempts"] == cfg.eval.judge.max_retries + 1
    assert sa["clip0002"]["status"] == "failed" and "score" in sa["clip0002"]["error"]
    assert sa["clip0003"]["status"] == "scored" and sa["clip0004"]["status"] == "scored"
    assert sa["clip0005"]["status"] == "scored" and sa["clip0005"]["attempts"] == 1
    # Every key of every item ends scored or failed; a successful prompt was never asked again.
    statuses = Counter(k["status"] for s in scores.values() for k in s["metrics"]["llm_judge"]["keys"].values())
    assert set(statuses) == {"scored", "failed"} and statuses["failed"] == 2
    asked = ok_responses(server)
    retried = {m for m, n in asked.items() if n > 1}
    assert all("follows car number" in m for m in retried) and len(retried) == 5
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]["llm_judge"]
    assert summary["counts"]["failed"] == 2 and {f["id"] for f in summary["failures"]} == {"clip0001", "clip0002"}
    assert summary["per_key"]["safety_analysis"]["failed"] == 2
    # Retry-After: 0.3 was honoured before the retry of item 0.
    times = [r["t"] for r in server.requests if "follows car number 0" in json.dumps(r["body"])]
    assert times[1] - times[0] >= 0.3
    # The next run asks again for the call that got no answer (HTTP 500s); the answer that did not parse was
    # paid for and stored: it is read again, not bought again, and still fails; the successes are not asked.
    server.faults_for = {}
    before = len(server.requests)
    judge_stage.run(cfg, tmp_path / "run2")
    assert len(server.requests) - before == 1
    sa2 = json.loads((tmp_path / "run2" / "scores" / "clip0002.score.json").read_text())[
        "metrics"]["llm_judge"]["keys"]["safety_analysis"]
    assert sa2["status"] == "failed" and sa2["cached"] and "retry_unparsed" in sa2["error"]
    assert sa2["judge_text"] == "The answers look similar. Score: four."
    usage = json.loads((tmp_path / "run2" / "summary.json").read_text())["metrics"]["llm_judge"]["usage"]
    assert usage["cached_unparsed"] == 1 and usage["requests"] == 1
    # Asked to retry it, the run pays for it once more (and the fault queue is empty now: it scores).
    cfg.eval.judge.retry_unparsed = True
    assert "1 of them answers that do not parse" not in judge_stage.plan(cfg).render()
    judge_stage.run(cfg, tmp_path / "run3")
    assert len(server.requests) - before == 2
    sa3 = json.loads((tmp_path / "run3" / "scores" / "clip0002.score.json").read_text())[
        "metrics"]["llm_judge"]["keys"]["safety_analysis"]
    assert sa3["status"] == "scored" and sa3["attempts"] == 1


def test_max_cost_stops_new_requests(tmp_path, server):
    write_caption_run(tmp_path / "cap", 6)
    cfg = make_cfg(tmp_path, tmp_path / "cap", server, concurrency=2)
    j = cfg.eval.judge
    # Reservation per call: ~(prompt/3 + 16) input tokens + max_tokens output; allow about ten of them.
    j.max_tokens, j.price_input_per_mtok, j.price_output_per_mtok = 100, 1000.0, 1000.0
    j.max_cost_usd = 10 * (450 + 100) * 1000.0 / 1e6
    judge_stage.run(cfg, tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]["llm_judge"]
    usage = summary["usage"]
    assert 0 < usage["requests"] < usage["calls"]
    assert usage["budget_stopped"] == usage["calls"] - usage["scored"] > 0
    assert usage["cost_usd"] <= j.max_cost_usd
    assert summary["counts"]["failed"] > 0
    assert any("max_cost_usd" in f["error"] for f in summary["failures"])


def test_api_key_never_written(tmp_path, server):
    write_caption_run(tmp_path / "cap", 2)
    # A 401 echoing a masked key is not retried, and its message reaches the score file without the key.
    server.faults_for = {"follows car number 1": [("401",)]}
    cfg = make_cfg(tmp_path, tmp_path / "cap", server)
    judge_stage.run(cfg, tmp_path / "run")
    assert server.requests[0]["authorization"] == f"Bearer {KEY}"  # it was used...
    failed = json.loads((tmp_path / "run" / "scores" / "clip0001.score.json").read_text())
    sa = failed["metrics"]["llm_judge"]["keys"]["safety_analysis"]
    assert sa["status"] == "failed" and sa["attempts"] == 1 and "HTTP 401" in sa["error"]
    for root in (tmp_path / "run", tmp_path / "outputs"):  # ...and is nowhere on disk, the cache included
        for p in root.rglob("*"):
            if p.is_file():
                data = p.read_bytes()
                assert KEY.encode() not in data and KEY[:6].encode() not in data and KEY[-4:].encode() not in data, p


def test_missing_key_and_bad_inputs_are_config_errors(tmp_path, server, monkeypatch):
    with pytest.raises(ConfigError) as e:
        judge_stage.plan(make_cfg(tmp_path, tmp_path / "nope", server))
    assert e.value.key == "captions"
    (tmp_path / "empty" / "captions").mkdir(parents=True)
    with pytest.raises(ConfigError) as e:
        judge_stage.plan(make_cfg(tmp_path, tmp_path / "empty", server))
    assert e.value.key == "captions"
    write_caption_run(tmp_path / "cap", 1)
    cfg = make_cfg(tmp_path, tmp_path / "cap", server)
    cfg.eval.metrics = ["llm_judge", "rouge"]
    with pytest.raises(ConfigError) as e:  # a rule on config values: config/validate checks it before any stage
        check_eval(cfg)
    assert e.value.key == "eval.metrics[1]"
    cfg.eval.metrics = ["llm_judge"]
    cfg.eval.judge.rubric = "no_such_rubric"
    with pytest.raises(ConfigError) as e:
        judge_stage.plan(cfg)
    assert e.value.key == "eval.judge.rubric" and "similarity_v1" in str(e.value)
    cfg.eval.judge.rubric = "similarity_v1"
    cfg.eval.caption_keys = ["weather", "colour_of_sky"]
    with pytest.raises(ConfigError) as e:
        judge_stage.plan(cfg)
    assert e.value.key == "eval.caption_keys"
    monkeypatch.delenv("COSMOS_TEST_JUDGE_KEY")
    cfg = make_cfg(tmp_path, tmp_path / "cap", server)
    with pytest.raises(ConfigError) as e:
        judge_stage.plan(cfg)
    assert e.value.key == "eval.judge.api_key_env"
    cfg.dry_run = True
    text = judge_stage.plan(cfg).render()
    assert "calls to make" in text and "not set" in text
    assert not (tmp_path / "outputs" / "cache" / "judge_cache.sqlite").exists()  # a dry run writes nothing
    assert server.requests == []
    cfg.eval.metrics = ["local", "bleu"]  # free metrics need no key
    judge_stage.run(cfg, tmp_path / "run")


def test_missing_keys_unparsed_captions_and_bad_files(tmp_path, server):
    cap = tmp_path / "cap"
    ref = label(0)
    pred = {k: v for k, v in ref.items() if k not in ("weather", "lighting")}
    write_caption_record(cap, {"id": "partial", "reference": {k: v for k, v in ref.items() if k != "lane_type"},
                               "parsed": pred})
    write_caption_record(cap, {"id": "nojson", "reference": ref, "raw_text": "I cannot describe this video."})
    (cap / "captions" / "broken.json").write_text("{not json")
    cfg = make_cfg(tmp_path, cap, server)
    assert "1 unreadable caption files" in judge_stage.plan(cfg).render()
    judge_stage.run(cfg, tmp_path / "run")
    scores = read_scores(tmp_path / "run")
    keys = scores["partial.score.json"]["metrics"]["llm_judge"]["keys"]
    assert keys["weather"]["status"] == "missing_in_caption" and keys["weather"]["score"] is None
    assert keys["lane_type"]["status"] == "missing_in_reference"
    assert scores["nojson.score.json"]["metrics"]["llm_judge"]["value"] is None
    assert scores["nojson.score.json"]["metrics"]["llm_judge"]["value_missing_as_min"] == 1.0
    assert scores["nojson.score.json"]["metrics"]["bleu"]["status"] == "unparsed_caption"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    c = summary["metrics"]["llm_judge"]["counts"]
    assert (c["missing_in_caption"], c["missing_in_reference"], c["unparsed_caption"], c["judged"]) == (2, 1, 15, 12)
    assert summary["bad_caption_files"][0]["file"].endswith("broken.json")
    assert len(server.requests) == 12
    cfg.eval.strict = True
    with pytest.raises(ConfigError, match="broken.json"):
        judge_stage.plan(cfg)


def _qa_records(cap: Path) -> None:
    opts = {"A": "turn left", "B": "stop", "C": "speed up", "D": "reverse"}
    answers = [("B", "The answer is B.", "actions"), ("C", "c", "actions"), ("A", "A or D", "signs"),
               ("D", "I am not sure.", "signs"), ("A", "(a) turn left", "signs")]
    for i, (gold, text, cat) in enumerate(answers):
        write_caption_record(cap, {"id": f"mcq{i}", "task": "mcq", "raw_text": text, "parse_status": "not_applicable",
                                   "question": "What does the ego vehicle do?",
                                   "reference": {"answer": gold, "category": cat, "options": opts}})
    for i in range(3):
        write_caption_record(cap, {"id": f"lq{i}", "task": "lingoqa", "raw_text": f"There are {i} cars.",
                                   "parse_status": "not_applicable", "question": "How many cars are there?",
                                   "reference": {"answers": [f"{i} cars", f"I see {i} cars"]}})


def test_mcq_and_lingoqa_llm_variant(tmp_path, server):
    _qa_records(tmp_path / "cap")
    cfg = make_cfg(tmp_path, tmp_path / "cap", server)
    cfg.eval.metrics = ["mcq", "lingoqa_llm"]
    assert "lingoqa_llm scored with the LLM judge" in judge_stage.plan(cfg).render()
    judge_stage.run(cfg, tmp_path / "run")
    m = json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]
    assert "lingoqa" not in m  # the substitute never carries the benchmark's name
    assert m["mcq"]["accuracy"]["mean"] == pytest.approx(3 / 5)
    assert m["mcq"]["parseable_rate"] == pytest.approx(3 / 5)
    assert m["mcq"]["accuracy_on_parseable"] == 1.0
    assert m["mcq"]["per_category"] == {"actions": {"n": 2, "accuracy": 1.0}, "signs": {"n": 3, "accuracy": pytest.approx(1 / 3)}}
    assert m["lingoqa_llm"]["method"] == "llm_judge" and m["lingoqa_llm"]["counts"] == {"scored": 3}
    assert "not comparable with published LingoQA" in m["lingoqa_llm"]["note"]
    assert len(server.requests) == 3
    assert all("How many cars" in json.dumps(r["body"]) for r in server.requests)


def test_mcq_headline_is_micro_accuracy_with_the_mean_per_video_beside_it(tmp_path):
    # Video v1: 3 questions, all right; video v2: 1 question, wrong (an answer inside <think> does not count).
    opts = {"A": "turn left", "B": "stop", "C": "speed up", "D": "reverse"}
    for i, (video, text) in enumerate([("v1", "B"), ("v1", "<answer>B</answer>"), ("v1", "Ｂ"),
                                       ("v2", "<think>B</think>C")]):
        write_caption_record(tmp_path / "cap", {"id": f"q{i}", "task": "mcq", "raw_text": text,
                                               "video": f"/data/{video}.mp4", "parse_status": "not_applicable",
                                               "reference": {"answer": "B", "options": opts}})
    cfg = make_cfg(tmp_path, tmp_path / "cap")
    cfg.eval.metrics = ["mcq"]
    judge_stage.run(cfg, tmp_path / "run")
    m = json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]["mcq"]
    # Micro accuracy (lmms-eval / VLMEvalKit headline): 3 right of 4 questions.
    assert m["headline"] == m["accuracy"]["mean"] == 0.75 and m["accuracy"]["groups"] == 2
    # Mean per-video accuracy (the cookbook reports it too): (3/3 + 0/1) / 2.
    assert m["mean_per_video_accuracy"]["mean"] == 0.5 and m["mean_per_video_accuracy"]["videos"] == 2
    assert m["parseable_rate"] == 1.0 and m["parse"] == {"letter": 3, "tag": 1}


def test_reasoning_model_requests_are_shaped_as_its_api_requires(tmp_path, server):
    from cosmos_exp.evaluate.client import is_reasoning_model, request_args

    write_caption_run(tmp_path / "cap", 2)
    # gpt-4.1-mini takes temperature + max_tokens; gpt-5 rejects both with a 400 (as the fake server does).
    cfg = make_cfg(tmp_path, tmp_path / "cap", server, model="gpt-5", max_tokens=2048)
    cfg.eval.metrics = ["llm_judge"]
    assert "reasoning model: no temperature sent, max_completion_tokens=2048" in judge_stage.plan(cfg).render()
    judge_stage.run(cfg, tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]["llm_judge"]
    assert summary["counts"]["failed"] == 0 and summary["counts"]["judged"] == 30
    body = server.requests[0]["body"]
    assert body["max_completion_tokens"] == 2048 and "max_tokens" not in body and "temperature" not in body
    assert summary["judge"]["temperature"] is None and summary["judge"]["reasoning_model"] is True
    for name, reasoning in [("gpt-5-mini", True), ("gpt-5.1", True), ("o3-mini", True), ("o1", True),
                            ("openai/o4-mini", True), ("gpt-4o", False), ("gpt-4.1-mini", False), ("local-judge", False)]:
        j = OmegaConf.structured(EvalConfig).judge
        j.model = name
        assert is_reasoning_model(j) is reasoning, name
        assert ("max_completion_tokens" in request_args(j)) is reasoning and ("temperature" in request_args(j)) != reasoning
    j.reasoning = True  # a proxy's name that does not say
    assert "temperature" not in request_args(j)


def test_cache_keys_on_the_endpoint(tmp_path):
    write_caption_run(tmp_path / "cap", 2)
    with FakeJudgeServer() as one, FakeJudgeServer() as two:
        cfg = make_cfg(tmp_path, tmp_path / "cap", one)
        cfg.eval.metrics = ["llm_judge"]
        judge_stage.run(cfg, tmp_path / "run1")
        judge_stage.run(cfg, tmp_path / "run1b")
        assert len(one.requests) == 20  # distinct (key, human, model) triples, the second run all cached
        # Another server with the same model name is another judge: nothing is reused from the first.
        cfg.eval.judge.base_url = two.base_url
        judge_stage.run(cfg, tmp_path / "run2")
        assert len(two.requests) == 20


def test_a_stored_answer_that_did_not_parse_is_read_again_without_a_request(tmp_path, server):
    from cosmos_exp.evaluate.cache import JudgeCache
    from cosmos_exp.evaluate.judging import build_work

    write_caption_run(tmp_path / "cap", 1)
    cfg = make_cfg(tmp_path, tmp_path / "cap", server)
    cfg.eval.metrics, cfg.eval.caption_keys = ["llm_judge"], ["weather"]
    work = judge_stage._prepare(cfg)
    (call,) = work.calls
    # An answer stored by a parser that could not read it (score NULL); the current one can.
    with JudgeCache(Path(cfg.eval.judge.cache_path)) as cache:
        cache.put(call.key, "gpt-4.1-mini", call.rubric.version, None, "Close enough.\n<score> 3 </score>", 10, 5)
    judge_stage.run(cfg, tmp_path / "run")
    key = json.loads((tmp_path / "run" / "scores" / "clip0000.score.json").read_text())["metrics"]["llm_judge"]["keys"]
    assert key["weather"]["status"] == "scored" and key["weather"]["score"] == 3 and key["weather"]["cached"]
    assert server.requests == []
    with JudgeCache(Path(cfg.eval.judge.cache_path), readonly=True) as cache:
        assert cache.get_many([call.key])[call.key]["score"] == 3  # kept: the next run does not parse it again
    assert build_work(cfg.eval, work.run).calls[0].key == call.key


def test_avha_v1_rubric_runs_the_cookbook_judge_protocol(tmp_path, server):
    """The cookbook's avha_judge.py protocol: one question per key, values printed with %s, the score read from
    the first <answer>N</answer>, captions that did not parse left out of each key's mean."""
    from cosmos_exp.evaluate.rubric import load_rubric

    ref = label(0)
    write_caption_record(tmp_path / "cap", {"id": "same", "reference": ref, "parsed": dict(ref)})
    write_caption_record(tmp_path / "cap", {"id": "nojson", "reference": ref, "raw_text": "I cannot tell."})
    cfg = make_cfg(tmp_path, tmp_path / "cap", server, rubric="avha_v1")
    cfg.eval.metrics = ["llm_judge"]
    judge_stage.run(cfg, tmp_path / "run")
    prompts = [r["body"]["messages"][-1]["content"] for r in server.requests]
    assert len(prompts) == 15  # one question per key of the parsed caption; the unparsed one asks nothing
    meta = next(p for p in prompts if "What does the ego vehicle do in relation to other road users?" in p)
    assert "['Vehicle following']" in meta  # %s of a list
    assert any("\nNone\n" in p for p in prompts)  # %s of a null value
    m = json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]["llm_judge"]
    # Identical answers score 5 on every key; the unparsed caption is left out of each key's mean (n = 1).
    assert all(v["mean"] == 5.0 and v["n"] == 1 and v["unparsed_caption"] == 1 for v in m["per_key"].values())
    assert m["judge"]["score_tag"] == "<answer>N</answer>" and m["judge"]["score_pick"] == "first"
    r = load_rubric("avha_v1")
    assert r.parse_score("4, no: <answer>2</answer>. Earlier I thought <answer>4</answer>.") == 2  # the first tag
    assert r.parse_score("<score>4</score>") is None and load_rubric("similarity_v1").parse_score(
        "<score>2</score> then <score>4</score>") == 4


def test_a_rate_limited_server_every_call_ends_scored_and_the_run_says_what_it_cost(tmp_path, caplog):
    write_caption_run(tmp_path / "cap", 4)
    with FakeJudgeServer(latency_s=0.01, rate_limit=30, burst=3) as server:
        cfg = make_cfg(tmp_path, tmp_path / "cap", server, concurrency=16, max_retries=50)
        cfg.eval.metrics = ["llm_judge"]
        with caplog.at_level("INFO", logger="cosmos_exp"):
            judge_stage.run(cfg, tmp_path / "run")
    usage = json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]["llm_judge"]["usage"]
    limited = sum(r["limited"] for r in server.requests)
    assert limited > 0  # 16 at once against a burst of 3: the limit was met
    assert usage["scored"] == usage["calls"] == len(server.requests) - limited
    assert (usage["rejected"], usage["requests"]) == (limited, len(server.requests)) and usage["rate_cuts"] >= 1
    assert (f"{usage['calls']} calls made ({usage['calls']} scored, 0 failed) in {usage['requests']} requests, "
            f"{usage['retries']} retried, {limited} rejected by the rate limit, $") in caplog.text
