"""Every bad-input case is skipped with a message naming the file, or fails first in strict mode."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cosmos_exp.config.data import BlendComponent, VisionConfig
from cosmos_exp.data.blend import blend_draws
from cosmos_exp.data.datasets import DataError, build_dataset, count_items
from cosmos_exp.data.labels import CAPTION_KEYS
from tests._data_fixtures import dataset_cfg, make_synthetic, write_qa

SUFFIX = ".camera_front_wide_120fov.mp4"


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean")
    make_synthetic(root, num_train=10, num_eval=2)
    return root


@pytest.fixture
def broken(clean, tmp_path):
    """A copy of the clean dataset with one item broken in each way the issue lists."""
    root = tmp_path / "ds"
    shutil.copytree(clean, root)
    v, m = root / "train" / "videos", root / "train" / "metas"
    bad = {}
    (v / f"synth_train_0000{SUFFIX}").unlink()
    bad["missing_video"] = m / "synth_train_0000.label.json"
    (m / "synth_train_0001.label.json").unlink()
    bad["missing_label"] = v / f"synth_train_0001{SUFFIX}"
    (v / f"synth_train_0002{SUFFIX}").write_bytes(b"")
    bad["empty_video"] = v / f"synth_train_0002{SUFFIX}"
    (v / f"synth_train_0003{SUFFIX}").write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x17" * 3000)
    bad["bad_video"] = v / f"synth_train_0003{SUFFIX}"
    (m / "synth_train_0004.label.json").write_text('{"weather": "Clear",')
    bad["invalid_json"] = m / "synth_train_0004.label.json"
    label = json.loads((m / "synth_train_0005.label.json").read_text())
    del label["lane_type"], label["weather"]
    (m / "synth_train_0005.label.json").write_text(json.dumps(label))
    bad["missing_keys"] = m / "synth_train_0005.label.json"
    shutil.copy(v / f"synth_train_0006{SUFFIX}", v / f"clip.v2{SUFFIX}")
    shutil.copy(m / "synth_train_0006.label.json", m / "clip.v2.label.json")
    bad["dotted_id"] = m / "clip.v2.label.json"
    outside = root.parent / f"outside{SUFFIX}"
    shutil.copy(v / f"synth_train_0007{SUFFIX}", outside)
    (v / f"synth_train_0007{SUFFIX}").unlink()
    (v / f"synth_train_0007{SUFFIX}").symlink_to(outside)
    bad["outside_root"] = v / f"synth_train_0007{SUFFIX}"
    return root, bad


def test_clean_dataset_all_used(clean):
    cfg = dataset_cfg(clean)
    samples, report = build_dataset(cfg, "train")
    assert len(samples) == 10 == report.used == count_items(cfg, "train") and not report.skipped
    s = samples[0]
    assert s.task == "caption" and set(s.reference) == set(CAPTION_KEYS)
    assert json.loads(s.target) == s.reference and s.conversation[-1] == {"role": "assistant", "content": s.target}
    assert s.conversation[1]["content"][0]["nframes"] == 8 and "fps" not in s.conversation[1]["content"][0]


def test_each_bad_item_is_skipped_and_named(broken):
    root, bad = broken
    samples, report = build_dataset(dataset_cfg(root), "train")
    assert report.counts == {k: 1 for k in bad}
    assert len(samples) == 3  # 10 + the dotted copy - 8 broken
    reasons = {r.split(":", 1)[0]: (f, r) for f, r in report.skipped}
    for kind, path in bad.items():
        assert reasons[kind][0] == str(path), kind
    assert "missing caption keys" in reasons["missing_keys"][1] and "lane_type" in reasons["missing_keys"][1]
    assert "outside the dataset root" in reasons["outside_root"][1]
    assert "5 skipped" not in report.summary() and "8 skipped" in report.summary()


def test_too_short_video_is_skipped(clean):
    cfg = dataset_cfg(clean, vision=VisionConfig(nframes=32))  # the clips have 16 frames
    samples, report = build_dataset(cfg, "train")
    assert not samples and report.counts == {"bad_video": 10}
    assert "fewer than the 32" in report.skipped[0][1]


def test_strict_mode_fails_on_first_bad_item(broken):
    root, bad = broken
    with pytest.raises(DataError) as err:
        build_dataset(dataset_cfg(root, strict=True), "train")
    assert str(root) in str(err.value) and "strict" in str(err.value)


def test_camera_suffix_and_folders_are_configurable(clean, tmp_path):
    root = tmp_path / "ds"
    (root / "train" / "clips").mkdir(parents=True)
    shutil.copytree(clean / "train" / "metas", root / "train" / "labels")
    for p in (clean / "train" / "videos").iterdir():
        shutil.copy(p, root / "train" / "clips" / p.name.replace(".camera_front_wide_120fov", ".front"))
    cfg = dataset_cfg(root, video_dir="clips", meta_dir="labels", camera_suffix=".front")
    assert len(build_dataset(cfg, "train")[0]) == 10


def test_mcq_and_lingoqa(clean, tmp_path):
    for kind in ("mcq", "lingoqa"):
        cfg = dataset_cfg(clean, kind=kind, user_prompt=kind)
        samples, report = build_dataset(cfg, "eval")
        assert samples and report.used == count_items(cfg, "eval") and not report.skipped
        s = samples[0]
        assert s.task == kind and s.video.endswith(SUFFIX)
        if kind == "mcq":
            assert s.target in "ABCD" and s.reference["answer"] == s.target and "A. " in s.conversation[1]["content"][1]["text"]
        else:
            assert s.target == s.reference["answers"][0]
    # a question whose video path leaves the root is skipped
    root = tmp_path / "qa"
    shutil.copytree(clean, root)
    f = root / "eval" / "mcq.jsonl"
    rows = [json.loads(x) for x in f.read_text().splitlines()]
    rows[0]["video"] = "../../" + rows[0]["video"]
    rows[1] = "not json"
    f.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    samples, report = build_dataset(dataset_cfg(root, kind="mcq", user_prompt="mcq"), "eval")
    assert report.counts == {"outside_root": 1, "invalid_json": 1}
    assert report.skipped[0][0] == f"{f}:1"


def test_blend_draws_follow_weights_deterministic_and_resumable():
    sizes, weights = [50, 80, 30], [0.3, 0.5, 0.2]
    draws = blend_draws(sizes, weights, seed=42, start=0, count=20000)
    share = np.bincount([c for c, _ in draws], minlength=3) / len(draws)
    assert np.allclose(share, weights, atol=0.015)
    assert draws == blend_draws(sizes, weights, seed=42, start=0, count=20000)
    assert draws[12345:12400] == blend_draws(sizes, weights, seed=42, start=12345, count=55)
    assert draws[:100] != blend_draws(sizes, weights, seed=43, start=0, count=100)
    # within a component no item repeats before all its items were drawn
    first = [i for c, i in draws if c == 2][:30]
    assert sorted(first) == list(range(30))


def test_blend_dataset(tmp_path):
    comps = []
    for name, n in (("cv_annotated", 3), ("human_annotated", 4), ("reason1_sft", 2)):
        make_synthetic(tmp_path / name, num_train=n, num_eval=0, seed=len(comps))
        comps.append(BlendComponent(name=name, root=str(tmp_path / name), weight=[0.3, 0.5, 0.2][len(comps)]))
    cfg = dataset_cfg(tmp_path / "unused", kind="blend", blend=comps, blend_length=40, blend_seed=1)
    samples, report = build_dataset(cfg, "train")
    assert len(samples) == 40 == count_items(cfg, "train") and report.used == 9
    names = {s.meta["component"] for s in samples}
    assert names == {"cv_annotated", "human_annotated", "reason1_sft"}
    again, _ = build_dataset(cfg, "train")
    assert [s.video for s in again] == [s.video for s in samples]


def test_the_cookbooks_fenced_caption_target(clean, tmp_path):
    """dataset.target_format=fenced_json writes the answer as the Reason 1 recipe's avha_sft.py does: the 15 keys
    (extras dropped) as json.dumps(indent=2) with non-ASCII escaped, in a ```json block; our parser reads it back."""
    from cosmos_exp.infer.parse import parse_answer

    root = tmp_path / "avha"
    shutil.copytree(clean, root)
    real = json.loads((Path(__file__).parent / "fixtures" / "avha_example.label.json").read_text(encoding="utf-8"))
    (root / "train" / "metas" / "synth_train_0000.label.json").write_text(json.dumps(real, ensure_ascii=False),
                                                                        encoding="utf-8")
    samples, _ = build_dataset(dataset_cfg(root, target_format="fenced_json"), "train")
    s = next(x for x in samples if x.id == "synth_train_0000")
    label = {k: real[k] for k in CAPTION_KEYS}
    assert s.target == "```json\n" + json.dumps(label, indent=2) + "\n```"
    assert s.target.startswith('```json\n{\n  "weather": ') and "\\u2011" in s.target and "\u2011" not in s.target
    assert s.conversation[-1] == {"role": "assistant", "content": s.target}
    assert parse_answer(s.target) == (label, "ok")
    ours, _ = build_dataset(dataset_cfg(root), "train")
    assert next(x for x in ours if x.id == "synth_train_0000").target == json.dumps(label, ensure_ascii=False, indent=2)


def _mixed_sources(root):
    """A blend of every kind over one synthetic root, each source with its own schema and weight."""
    return [BlendComponent(name="captions", kind="caption", root=str(root), weight=0.4),
            BlendComponent(name="weather_only", kind="caption", root=str(root), weight=0.1,
                           caption_keys=["weather", "lighting"], user_prompt="lingoqa", target_format="fenced_json"),
            BlendComponent(name="mcq", kind="mcq", root=str(root), weight=0.2),
            BlendComponent(name="lingoqa", kind="lingoqa", root=str(root), weight=0.1),
            BlendComponent(name="reasoning", kind="qa", root=str(root), weight=0.2, user_prompt="reasoning")]


def test_a_blend_mixes_every_kind_each_with_its_own_schema(clean, tmp_path):
    from cosmos_exp.data.prompts import load_prompt

    root = tmp_path / "mixed"
    shutil.copytree(clean, root)
    for split in ("train", "eval"):
        write_qa(root, split)
    cfg = dataset_cfg(tmp_path / "unused", kind="blend", blend=_mixed_sources(root), blend_length=4000, blend_seed=3)
    samples, report = build_dataset(cfg, "train")
    assert len(samples) == 4000 == count_items(cfg, "train")
    by_source = {}
    for smp in samples:
        by_source.setdefault(smp.meta["component"], []).append(smp)
    share = {name: len(v) / len(samples) for name, v in by_source.items()}
    assert share == pytest.approx({"captions": 0.4, "weather_only": 0.1, "mcq": 0.2, "lingoqa": 0.1, "reasoning": 0.2},
                                  abs=0.03)
    cap, weather, mcq, lingo, qa = (by_source[n][0] for n in ("captions", "weather_only", "mcq", "lingoqa", "reasoning"))
    assert (cap.task, set(json.loads(cap.target))) == ("caption", set(CAPTION_KEYS))
    assert weather.task == "caption" and weather.target.startswith("```json\n") and set(weather.reference) == {
        "weather", "lighting"}
    assert mcq.task == "mcq" and mcq.target in "ABCD"
    assert lingo.task == "lingoqa" and lingo.target == lingo.reference["answers"][0]
    assert qa.task == "qa" and qa.target == (f"<think>\n{qa.reference['reasoning']}\n</think>\n\n<answer>\n"
                                             f"{qa.reference['answer']}\n</answer>")
    # Each source's own prompts.
    user_text = {s.meta["component"]: s.conversation[1]["content"][1]["text"] for s in (cap, weather, mcq, qa)}
    assert user_text["captions"] == load_prompt("caption_15key") and user_text["weather_only"] == load_prompt("lingoqa")
    assert user_text["mcq"].startswith(load_prompt("mcq") + "\n") and user_text["reasoning"].startswith(
        load_prompt("reasoning") + "\n")
    assert set(report.sources) == {"captions", "weather_only", "mcq", "lingoqa", "reasoning"}
    assert report.used == sum(r.used for r in report.sources.values()) == 10 + 10 + 40 + len(
        (root / "train" / "lingoqa.jsonl").read_text().splitlines()) + 10
    # The held-out split: every item of every source once, no draws.
    held_out, _ = build_dataset(cfg, "eval")
    assert sorted((s.meta["component"], s.id) for s in held_out) == sorted(
        {(s.meta["component"], s.id) for s in held_out}) and len(held_out) == count_items(cfg, "eval")


def test_a_blend_reports_bad_items_per_source(clean, tmp_path):
    root = tmp_path / "mixed"
    shutil.copytree(clean, root)
    write_qa(root, "train")
    (root / "train" / "metas" / "synth_train_0003.label.json").write_text("{")  # a caption source's bad label
    rows = (root / "train" / "qa.jsonl").read_text().splitlines()
    bad = json.loads(rows[2])
    bad["reasoning"] = ""
    rows[2] = json.dumps(bad)
    (root / "train" / "qa.jsonl").write_text("\n".join(rows) + "\n")  # a reasoning source's empty reasoning
    cfg = dataset_cfg(tmp_path / "unused", kind="blend", blend=_mixed_sources(root))
    _, report = build_dataset(cfg, "train")
    subs = report.to_dict()["sources"]
    assert subs["captions"]["skipped_by_kind"] == {"invalid_json": 1}  # each caption source reads the label itself
    assert subs["weather_only"]["skipped_by_kind"] == {"invalid_json": 1}
    assert subs["reasoning"]["skipped_items"] == [{"file": f"{root / 'train' / 'qa.jsonl'}:3",
                                                   "reason": "missing_keys: reasoning is not a non-empty string"}]
    assert subs["mcq"]["skipped"] == subs["lingoqa"]["skipped"] == 0
    assert report.to_dict()["skipped"] == 3 and "by source: captions 9 of 10" in report.summary()


@pytest.mark.parametrize("ranks,micro,accumulation", [(1, 2, 2), (2, 1, 2), (2, 2, 1), (4, 1, 1)])
def test_per_source_batches_give_every_optimizer_step_one_source(clean, tmp_path, ranks, micro, accumulation):
    """dataset.blend_batches=per_source: the layout (data/blend.py) read in order by our loader's positions gives
    each optimizer step (ranks x micro-batch x accumulation samples) one source, and keeps every drawn item."""
    from collections import Counter

    from cosmos_exp.data.blend import arrange_by_source
    from cosmos_exp.data.loader import _Order, step_positions

    root = tmp_path / "mixed"
    shutil.copytree(clean, root)
    write_qa(root, "train")
    cfg = dataset_cfg(tmp_path / "unused", kind="blend", blend=_mixed_sources(root), blend_length=103)
    drawn, _ = build_dataset(cfg, "train")
    block = ranks * micro * accumulation
    laid = arrange_by_source(drawn, block, seed=5)
    assert len(laid) % block == 0 and Counter(map(id, laid)) >= Counter(map(id, drawn))  # nothing left out
    assert len(laid) - len(drawn) < block * len(cfg.blend)  # only each source's last block filled up
    order = _Order(len(laid), seed=0, shuffle=False)
    for step in range(2 * len(laid) // block):  # two epochs
        sources_of_step = set()
        for micro_step in range(step * accumulation, (step + 1) * accumulation):
            for rank in range(ranks):
                for pos in step_positions(micro_step, len(laid), micro, rank, ranks):
                    sources_of_step.add(laid[order[pos]].meta["component"])
        assert len(sources_of_step) == 1, (step, sources_of_step)
    # cosmos-rl (dataloader_shuffle=false): each rank's DataLoader of global / ranks over a DistributedSampler;
    # the k-th batches of all ranks together are one optimizer step.
    from torch.utils.data import DataLoader, DistributedSampler

    per_rank = [list(DataLoader(laid, batch_size=block // ranks, collate_fn=lambda b: b,
                                sampler=DistributedSampler(laid, num_replicas=ranks, rank=r, shuffle=False)))
                for r in range(ranks)]
    for step in zip(*per_rank):
        assert len({s.meta["component"] for batch in step for s in batch}) == 1
    assert arrange_by_source(drawn, block, seed=5) == laid and arrange_by_source(drawn, block, seed=6) != laid
