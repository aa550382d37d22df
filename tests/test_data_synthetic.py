"""The synthetic driving dataset: layout, label quirks, determinism, and pictures that match labels."""

import json

import numpy as np

from cosmos_exp.data.labels import CAPTION_KEYS
from cosmos_exp.data.synthetic import Scene, render_frames
from tests._data_fixtures import make_synthetic, tree_digest


def test_layout_counts_and_label_quirks(tmp_path):
    cfg, result = make_synthetic(tmp_path, num_train=6, num_eval=3)
    assert result["splits"]["train"]["videos"] == 6 and result["splits"]["eval"]["videos"] == 3
    metas = sorted((tmp_path / "train" / "metas").glob("*.label.json"))
    videos = sorted((tmp_path / "train" / "videos").glob("*.camera_front_wide_120fov.mp4"))
    assert len(metas) == len(videos) == 6
    texts = [m.read_text(encoding="utf-8") for m in metas]
    labels = [json.loads(t) for t in texts]
    assert all(set(CAPTION_KEYS) <= set(lab) for lab in labels)
    assert all(lab["rule_violation"] in ("True", "False") and lab["interesting_scenario"] in ("True", "False")
               for lab in labels)
    assert all(lab["additional_map_rules"] is None for lab in labels)
    assert all(isinstance(lab["interactive_expanded_metaaction"], list) for lab in labels)
    assert any("\u2011" in t for t in texts)  # non-ASCII kept as is
    assert all(isinstance(lab["driving_difficulty"], int) and 1 <= lab["driving_difficulty"] <= 4 for lab in labels)
    mcq = [json.loads(x) for x in (tmp_path / "eval" / "mcq.jsonl").read_text().splitlines()]
    assert mcq and all(q["answer"] in q["options"] and len(q["options"]) == 4 for q in mcq)
    assert all((tmp_path / "eval" / q["video"]).is_file() for q in mcq)


def test_deterministic_by_seed(tmp_path):
    # Another dataset is encoded between the two with seed 5: an encoder whose output depends on what the
    # process encoded before (x264's mbtree rate control did) would make them differ.
    make_synthetic(tmp_path / "a", num_train=3, num_eval=1, seed=5)
    make_synthetic(tmp_path / "c", num_train=3, num_eval=1, seed=6)
    make_synthetic(tmp_path / "b", num_train=3, num_eval=1, seed=5)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b") != tree_digest(tmp_path / "c")


def test_mcq_options_in_a_fixed_or_shuffled_order(tmp_path):
    """fixed: each kind of question lists its shown options in one order (the answer's letter names the class, as
    in a benchmark's fixed questions); shuffled: random order. The clips and labels are the same either way."""
    make_synthetic(tmp_path / "fixed", num_train=12, num_eval=1)
    make_synthetic(tmp_path / "shuffled", num_train=12, num_eval=1,
                   synthetic_overrides={"mcq_option_order": "shuffled"})
    canonical = {"q1": ["It drives straight ahead", "It turns left", "It turns right", "It reverses"],
                 "q3": ["Daytime", "Dusk", "Night", "Tunnel lighting"]}

    def questions(which):
        return [json.loads(x) for x in (tmp_path / which / "train" / "mcq.jsonl").read_text().splitlines()]

    fixed, shuffled = questions("fixed"), questions("shuffled")
    for q in fixed:
        kind = q["id"].rsplit("_", 1)[1]
        if kind in canonical:
            assert list(q["options"].values()) == canonical[kind]
    assert any(list(q["options"].values()) != canonical[q["id"].rsplit("_", 1)[1]] for q in shuffled
               if q["id"].rsplit("_", 1)[1] in canonical)
    # The same questions and correct answers, only the letters move.
    assert [(q["id"], q["options"][q["answer"]]) for q in fixed] == [(q["id"], q["options"][q["answer"]])
                                                                     for q in shuffled]
    for sub in ("videos", "metas"):
        assert tree_digest(tmp_path / "fixed" / "train" / sub) == tree_digest(tmp_path / "shuffled" / "train" / sub)


def _scene(**kw):
    base = dict(weather="clear", lighting="daytime", action="straight", lead="none", pedestrian=False, light="none")
    base.update(kw)
    return Scene(**base)


def test_pictures_show_what_labels_say():
    def frames(**kw):
        return render_frames(_scene(**kw), 16, 160, 96, seed=1).astype(np.float32)

    day, night = frames(), frames(lighting="night")
    assert day.mean() > 2 * night.mean()
    clear, fog = frames(), frames(weather="fog")
    assert fog.std() < 0.6 * clear.std()
    sky = clear[:, :20].mean(axis=(0, 1, 2))
    assert sky[2] > sky[0] + 60  # blue sky
    # lead vehicle: red pixels; braking lead grows over time
    red = lambda f: ((f[..., 0] > 150) & (f[..., 1] < 80)).sum(axis=(1, 2))
    braking = red(frames(lead="braking"))
    assert braking[-1] > 2 * braking[0] > 0 and red(frames()).sum() == 0
    # turn: the road's vanishing point drifts to the side of the turn
    def road_centre_top(f):
        row = f[-1, 45]  # just under the horizon, last frame
        grey = np.where((np.abs(row[:, 0] - row[:, 1]) < 8) & (row[:, 0] > 80) & (row[:, 0] < 120))[0]
        return grey.mean()
    assert road_centre_top(frames(action="left")) < 70 < 90 < road_centre_top(frames(action="right"))
