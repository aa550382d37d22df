"""Our preprocessing vs the official Hugging Face video processors (golden fixtures + live check).

Regenerate the fixtures where torchvision exists (a GPU machine, or a side venv with the registry's torch +
torchvision wheels, which run on CPU; the current ones came from such a venv, see manifest.json):
    python tools/golden.py --out tests/fixtures/golden
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))  # the fixture tool is a dev tool, not shipped
import golden  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "golden"
REGEN = "python tools/golden.py --out tests/fixtures/golden (needs torchvision, e.g. on a GPU machine)"
CASES = [(f, c) for f in golden.SPECS for c in golden.CASES]


@pytest.mark.parametrize("family,case", CASES)
def test_matches_golden_fixture(family, case):
    path = FIXTURES / f"{family}_{case}.npz"
    if not path.is_file():
        pytest.skip(f"no golden fixture {path.name}: the official video processors need torchvision, "
                    f"absent here and no GPU machine was lent when this was written; regenerate with {REGEN}")
    ref = np.load(path)
    pv, grid = golden.ours(family, case)
    assert grid.tolist() == ref["video_grid_thw"].tolist()
    manifest = json.loads((FIXTURES / "manifest.json").read_text())
    assert manifest["transformers"]  # the version the fixtures came from is recorded
    assert torch.allclose(pv, torch.from_numpy(ref["pixel_values_videos"]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("family,case", CASES)
def test_matches_official_processor_live(family, case):
    pytest.importorskip("torchvision", reason="the official Qwen-VL video processors need torchvision (absent in CI)")
    pv, grid = golden.official(family, case)
    mine, my_grid = golden.ours(family, case)
    assert my_grid.tolist() == grid.tolist()
    assert torch.allclose(mine, pv, atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", list(golden.SPECS))
def test_prompt_ids_match_official_processor_fixture(family):
    """Chat text + placeholder expansion (Qwen3-VL: per-temporal-patch timestamps) as the official
    AutoProcessor of a tiny checkpoint produced them; the checkpoint's tokenizer/processor files are kept."""
    ckpt, path = FIXTURES / f"{family}_checkpoint", FIXTURES / f"{family}_prompt.json"
    if not path.is_file():
        pytest.skip(f"no golden fixture {path.name}; regenerate with {REGEN}")
    official = json.loads(path.read_text())["input_ids"]
    assert golden.our_prompt_ids(family, ckpt) == official


def test_case_inputs_are_deterministic_and_varied():
    a = golden.case_frames(2, 50, 90)
    assert a.dtype == np.uint8 and a.shape == (2, 50, 90, 3)
    assert np.array_equal(a, golden.case_frames(2, 50, 90)) and len(np.unique(a)) > 200
    for family in golden.SPECS:  # the down / up cases really resize ("odd" is a no-op size for Qwen3-VL)
        for case in ("down", "up"):
            t, h, w, _, _ = golden.CASES[case]
            g = golden.ours(family, case)[1][0].tolist()
            p = golden.SPECS[family].patch_size
            assert (g[1] * p, g[2] * p) != (h, w)
