"""Metric functions: BLEU against sacrebleu itself, the MCQ letter parser, the local scorer, rubric
parsing/hashing, and bootstrap intervals that cover the true mean at the nominal rate."""

import numpy as np
import pytest
import sacrebleu

from cosmos_exp.evaluate import bleu
from cosmos_exp.evaluate.local import local_score, normalise
from cosmos_exp.evaluate.mcq import parse_choice
from cosmos_exp.evaluate.rubric import load_rubric
from cosmos_exp.evaluate.stats import mean_ci, paired_diff_ci

HYPS = ["The ego vehicle slows down for a pedestrian crossing the road.",
        "A car turns left at the junction while it rains.",
        "",
        "The truck ahead brakes; the ego car keeps its distance on the wet road."]
REFS = ["The ego vehicle yields to a pedestrian who crosses in front of it.",
        "The car turns left at the intersection in light rain.",
        "Nothing happens.",
        "The ego vehicle follows a truck on a wet road and keeps a safe distance."]


def test_corpus_bleu_equals_sacrebleu():
    ours = bleu.corpus_bleu(HYPS, REFS)
    theirs = sacrebleu.corpus_bleu(HYPS, [REFS])
    assert ours["score"] == pytest.approx(theirs.score, abs=1e-9)
    assert ours["signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    # Summed per-item statistics give the same corpus score (what the bootstrap resamples).
    stats = np.asarray(bleu.segment_stats(HYPS, REFS))
    assert bleu.score_from_stats(stats) == pytest.approx(theirs.score, abs=1e-9)


def test_sentence_bleu_equals_sacrebleu():
    for h, r in zip(HYPS, REFS):
        assert bleu.sentence_bleu(h, r) == pytest.approx(sacrebleu.sentence_bleu(h, [r]).score, abs=1e-9)


def test_bleu_ci_brackets_the_corpus_score():
    out = bleu.corpus_bleu(HYPS * 5, REFS * 5, samples=300, seed=1)
    assert out["ci_low"] <= out["score"] <= out["ci_high"]
    assert out["ci_low"] < out["ci_high"]


@pytest.mark.parametrize("text,expected", [
    ("B", "B"), ("b", "B"), ("(c)", "C"), ("d)", "D"), ("The answer is C.", "C"), ("answer: d", "D"),
    ("ANSWER IS D", "D"), ("<answer>c</answer>", "C"),
    ("A car is turning left, so the answer is B.", "B"),
    ("I think the correct option is (B) because a car brakes.", "B"),
    ("Answer: B. Option A is wrong.", "B"),
    ("The ego vehicle yields.", None), ("", None), (None, None),
    ("A or C", None), ("A and B are both possible", None), ("the answer is a car", None),
])
def test_mcq_parser(text, expected):
    assert parse_choice(text)[0] == expected


def test_mcq_parser_reasons_and_sources():
    assert parse_choice("A or C") == (None, "multiple")
    assert parse_choice("nothing here") == (None, "none")
    opts = {"A": "turns left", "B": "stops at the light", "C": "speeds up", "D": "reverses"}
    assert parse_choice("It stops at the light.", opts) == ("B", "option_text")
    assert parse_choice("", parsed={"answer": "(b)"}) == ("B", "json")
    # Letters outside the options are not answers.
    assert parse_choice("E", {"A": "x", "B": "y"})[0] is None


def test_local_scorer_scale():
    assert normalise("Daytime (low‑contrast daylight)") == "daytime low contrast daylight"
    assert local_score("Light rain.", "light RAIN")["score"] == 5.0
    assert local_score("sunny", "light rain")["score"] == 1.0
    mid = local_score("light snow", "light rain")
    assert mid["exact"] == 0.0 and 1.0 < mid["score"] < 5.0 and mid["f1"] == pytest.approx(0.5)


def test_rubric_parses_and_scores():
    r = load_rubric("similarity_v1")
    assert len(r.keys) == 15 and "safety_analysis" in r.keys
    assert (r.score_min, r.score_max) == (1, 5)
    msgs = r.messages(key="weather", description=r.keys["weather"], human_answer="rain", model_answer="sun")
    assert "rain" in msgs[1]["content"] and "sun" in msgs[1]["content"]
    assert r.parse_score("reasoning... <score>3</score>") == 3
    assert r.parse_score("first <score>2</score> then changed mind <score>4</score>") == 4
    assert r.parse_score("<score>7</score>") is None  # off the scale
    assert r.parse_score("<score>2.5</score>") is None
    assert r.parse_score("Score: 4") is None and r.parse_score("") is None
    lq = load_rubric("lingoqa_v1")
    assert (lq.score_min, lq.score_max) == (0, 1) and lq.parse_score("<score>0</score>") == 0


def test_rubric_hash_follows_content(tmp_path):
    src = load_rubric("similarity_v1").path.read_text()
    a, b = tmp_path / "r1.txt", tmp_path / "r2.txt"
    a.write_text(src)
    b.write_text(src.replace("at most four sentences", "at most three sentences"))
    assert load_rubric(str(a)).sha256 == load_rubric("similarity_v1").sha256
    assert load_rubric(str(b)).sha256 != load_rubric(str(a)).sha256


def test_bootstrap_ci_covers_true_mean_at_nominal_rate():
    rng = np.random.default_rng(123)
    trials, covered = 300, 0
    for t in range(trials):
        x = rng.normal(3.0, 1.0, size=60)
        ci = mean_ci(x, samples=1000, confidence=0.95, seed=t)
        covered += ci["ci_low"] <= 3.0 <= ci["ci_high"]
    # Expected ~0.94 (the percentile bootstrap is slightly narrow at n=60); binomial sd ~0.014.
    assert 0.89 <= covered / trials <= 0.99


def test_bootstrap_ci_edge_cases():
    assert mean_ci([]) == {"n": 0, "mean": None, "ci_low": None, "ci_high": None}
    one = mean_ci([4.0])
    assert one["mean"] == 4.0 and one["ci_low"] is None
    assert mean_ci([1.0, None, 3.0])["n"] == 2


def test_paired_diff_detects_a_real_improvement_and_not_noise():
    rng = np.random.default_rng(0)
    a = rng.normal(3.0, 1.0, 200)
    better = paired_diff_ci(a, a + 0.3 + rng.normal(0, 0.2, 200), samples=1000)
    assert better["verdict"] == "b better" and better["ci_low"] > 0
    same = paired_diff_ci(a, a + rng.normal(0, 0.2, 200), samples=1000)
    assert same["verdict"] == "no significant difference"
    worse = paired_diff_ci(a, [None] + list(a[1:] - 1.0), samples=500)
    assert worse["verdict"] == "a better" and worse["n"] == 199


def test_headline_line_names_each_metric_with_its_ci():
    from cosmos_exp.evaluate.headline import describe, headline_ci

    metrics = {"mcq": {"headline": 0.5, "accuracy": {"n": 8, "mean": 0.5, "ci_low": 0.25, "ci_high": 0.75}},
               "bleu": {"headline": 31.76, "scale": "0-100",
                        "corpus": {"score": 31.76, "n": 16, "ci_low": 8.3, "ci_high": 53.2}},
               "local": {"headline": None, "note": "no items of a task this metric applies to"}}
    assert headline_ci("bleu", metrics["bleu"]) == {"headline": 31.76, "ci_low": 8.3, "ci_high": 53.2, "n": 16,
                                                    "scale": "0-100"}
    assert headline_ci("mcq", metrics["mcq"])["scale"] is None
    assert describe(metrics, 0.9) == ("mcq 0.5 [0.25, 0.75] n=8; bleu (0-100) 31.76 [8.3, 53.2] n=16; "
                                      "local - (no item scored) (90% CIs in brackets)")
    # The cookbook's scale is printed as such, so 0.113 is never read as 0.113 on sacrebleu's scale.
    metrics["bleu"].update({"headline": 0.1176, "scale": "0-1"})
    assert "bleu (0-1) 0.1176 [" in describe(metrics)


def _clustered_pair():
    """455 videos x 11 questions (the cookbook's MCQ set: ~5,000 questions, ~11 per video). a and b answer alike
    except on whole videos: b gets all 11 right where a got all wrong on 8 videos, and the reverse on 5."""
    rng = np.random.default_rng(7)
    a, b, videos = [], [], []
    for v in range(455):
        base = (rng.random(11) < 0.8).astype(float)
        flip = 1 if v < 8 else -1 if v < 13 else 0
        a += list(np.zeros(11) if flip == 1 else np.ones(11) if flip == -1 else base)
        b += list(np.ones(11) if flip == 1 else np.zeros(11) if flip == -1 else base)
        videos += [f"video{v}"] * 11
    return a, b, videos


def test_per_video_bootstrap_disagrees_with_the_per_question_one():
    a, b, videos = _clustered_pair()
    # b - a = (8 - 5) videos x 11 questions / 5,005 questions = +0.66 points.
    per_question = paired_diff_ci(a, b, samples=2000, seed=0)
    per_video = paired_diff_ci(a, b, samples=2000, seed=0, groups=videos)
    assert per_question["mean"] == per_video["mean"] == pytest.approx(33 / 5005)
    # Resampling questions treats the 143 changed answers as independent: the interval excludes 0.
    assert per_question["verdict"] == "b better" and per_question["ci_low"] > 0
    # Resampling videos (lmms-eval's clustered errors; the questions of one video move together): 13 changed
    # videos of 455, and the interval covers 0.
    assert per_video["verdict"] == "no significant difference" and per_video["ci_low"] < 0 < per_video["ci_high"]
    assert per_video["ci_high"] - per_video["ci_low"] > 2.5 * (per_question["ci_high"] - per_question["ci_low"])
    assert per_video["groups"] == 455 and per_video["n"] == 5005


def test_grouped_ci_is_the_micro_mean_and_covers_at_the_nominal_rate():
    from cosmos_exp.evaluate.stats import grouped_mean_ci

    # Micro mean over items, whatever the group sizes: (3 + 0) / 4.
    assert grouped_mean_ci([1, 1, 1, 0], ["v1", "v1", "v1", "v2"], samples=100)["mean"] == 0.75
    assert grouped_mean_ci([1.0, None], ["v1", "v2"])["groups"] == 1
    rng = np.random.default_rng(5)
    covered, trials = 0, 200
    for t in range(trials):  # 60 videos of 10 correlated questions each, true accuracy 0.7
        p = np.clip(0.7 + rng.normal(0, 0.2, 60), 0, 1)
        x = (rng.random((60, 10)) < p[:, None]).astype(float)
        ci = grouped_mean_ci(x.ravel(), np.repeat(np.arange(60), 10), samples=500, seed=t)
        covered += ci["ci_low"] <= 0.7 <= ci["ci_high"]
    assert 0.88 <= covered / trials <= 0.99


def test_compare_resamples_the_videos_of_mcq_questions():
    from cosmos_exp.evaluate.compare import compare_metric

    a, b, videos = _clustered_pair()
    pairs = [({"value": x, "video": v}, {"value": y, "video": v}) for x, y, v in zip(a, b, videos)]
    out = compare_metric("mcq", pairs, {"samples": 1000, "confidence": 0.95, "seed": 0})
    assert out["resampled"] == "videos" and out["overall"]["verdict"] == "no significant difference"


@pytest.mark.parametrize("pred,ref,score", [
    # Two different answers in another script: kept as words, so they differ (they both normalised to "" and
    # scored a perfect 5 when only a-z and 0-9 were kept).
    ("Пасмурно", "Ясно", 1.0), ("小雨", "大雪", 1.0), ("βροχή", "ήλιος", 1.0),
    # Same words, other case, punctuation or width: exact.
    ("Пасмурно.", "пасмурно", 5.0), ("小雨。", "小雨", 5.0), ("Ｌｉｇｈｔ ｒａｉｎ", "light rain", 5.0),
    ("Straße", "STRASSE", 5.0),
    # Combining marks belong to the word (Devanagari vowel signs are marks, not letters): one token each side.
    ("हल्की बारिश", "हल्की धूप", 3.0),
    # Punctuation only: compared as written.
    ("-", "?", 1.0), ("-", "-", 5.0),
])
def test_local_scorer_keeps_letters_of_every_script(pred, ref, score):
    assert local_score(pred, ref)["score"] == pytest.approx(score)
