import json

import pytest

from cosmos_exp.config import ConfigError
from cosmos_exp.infer import records
from cosmos_exp.repro.atomic import write_json_atomic
from cosmos_exp.infer.checkpoint import inspect_checkpoint


def _conversation(video, question="Describe the clip as JSON."):
    return [
        {"role": "system", "content": "You are a driving assistant."},
        {"role": "user", "content": [{"type": "video", "video": video, "nframes": 8, "max_pixels": 9000},
                                     {"type": "text", "text": question}]},
    ]


def test_prompt_hash_ignores_the_video_but_not_the_prompt_or_vision():
    a = records.prompt_hash(_conversation("/data/a.mp4"))
    assert a == records.prompt_hash(_conversation("/data/b.mp4"))
    assert a != records.prompt_hash(_conversation("/data/a.mp4", "Another question"))
    other_vision = _conversation("/data/a.mp4")
    other_vision[1]["content"][0]["nframes"] = 16
    assert a != records.prompt_hash(other_vision)
    assert a.startswith("sha256:")


def test_question_text():
    assert records.question_text(_conversation("/v.mp4", "Which lane?")) == "Which lane?"
    assert records.question_text([{"role": "user", "content": "plain"}]) == "plain"
    assert records.question_text([{"role": "system", "content": "x"}]) is None


@pytest.mark.parametrize("bad", ["a.b", "../x", "a/b", "", ".hidden", "sp ace"])
def test_unsafe_ids_are_refused(bad):
    with pytest.raises(ValueError, match="cannot be a file name"):
        records.check_item_id(bad)


def test_done_detection_and_stale_temps(tmp_path):
    path = records.caption_path(tmp_path, "clip_1")
    assert not records.is_done(path)
    path.write_text('{"id": "clip_1", "raw_text": "{\\"weather\\"')  # truncated by hand
    assert not records.is_done(path)
    write_json_atomic(path, {"id": "clip_1", "raw_text": "ok"})
    assert records.is_done(path)
    stale = tmp_path / ".clip_2.json.abc123.tmp"
    stale.write_text("{")
    other = tmp_path / ".clip_3.json.abc123.tmp"
    other.write_text("{")
    assert records.remove_stale_temps(tmp_path, ["clip_2"]) == 1
    assert not stale.exists() and other.exists()


def test_index_merges_reports_of_the_current_world_size(tmp_path):
    for i in ("a", "b"):
        write_json_atomic(records.caption_path(tmp_path, i), {"id": i, "raw_text": "x"})
    reports = [
        {"rank": 0, "world_size": 2, "generated": 1, "skipped_existing": 0, "generate_seconds": 2.0,
         "generated_tokens": 10, "failed": {"c": "c.mp4: VideoError: corrupt"}, "parse_status": {"ok": 1}},
        {"rank": 1, "world_size": 2, "generated": 1, "skipped_existing": 0, "generate_seconds": 4.0,
         "generated_tokens": 30, "failed": {}, "parse_status": {"no_json": 1}},
        {"rank": 2, "world_size": 3, "generated": 99, "failed": {"a": "old failure"}},  # an earlier run
    ]
    index = records.build_index(tmp_path, ["a", "b", "c"], reports, {"checkpoint": "/ckpt"}, world_size=2)
    assert index["checkpoint"] == "/ckpt"
    assert index["counts"] == {"items": 3, "done": 2, "missing": 1, "generated_this_run": 2,
                               "skipped_existing": 0, "failed": 1}
    assert index["failed"] == {"c": "c.mp4: VideoError: corrupt"}
    assert index["parse_status_this_run"] == {"ok": 1, "no_json": 1}
    assert index["throughput"]["videos_per_s"] == 0.5  # 2 items over the slowest rank's 4 s
    assert [s["rank"] for s in index["shards"]] == [0, 1]


def _checkpoint(tmp_path, model_type="qwen3_vl", files=("tokenizer.json", "preprocessor_config.json",
                                                        "model.safetensors")):
    root = tmp_path / "ckpt"
    root.mkdir()
    (root / "config.json").write_text(json.dumps({"model_type": model_type}))
    for name in files:
        (root / name).write_text("{}")
    return root


def test_checkpoint_ok(tmp_path):
    info = inspect_checkpoint(str(_checkpoint(tmp_path)))
    assert info.model_type == "qwen3_vl" and info.num_weight_files == 1


@pytest.mark.parametrize("case,message", [
    ("missing", "does not exist"),
    ("no_config", "config.json is missing"),
    ("bad_json", "unreadable"),
    ("wrong_type", "model_type 'llama'"),
    ("no_tokenizer", "no tokenizer files"),
    ("no_processor", "no processor files"),
    ("no_weights", "no weight files"),
])
def test_checkpoint_errors_name_model_path(tmp_path, case, message):
    if case == "missing":
        path = tmp_path / "nope"
    elif case == "wrong_type":
        path = _checkpoint(tmp_path, model_type="llama")
    elif case == "no_tokenizer":
        path = _checkpoint(tmp_path, files=("preprocessor_config.json", "model.safetensors"))
    elif case == "no_processor":
        path = _checkpoint(tmp_path, files=("tokenizer.json", "model.safetensors"))
    elif case == "no_weights":
        path = _checkpoint(tmp_path, files=("tokenizer.json", "video_preprocessor_config.json"))
    else:
        path = _checkpoint(tmp_path)
        if case == "no_config":
            (path / "config.json").unlink()
        else:
            (path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match=message) as info:
        inspect_checkpoint(str(path))
    assert info.value.key == "model.path"
