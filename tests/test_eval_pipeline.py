"""caption -> judge -> compare through the real CLI: a tiny random model's captions (rarely JSON) are judged,
counted honestly, and the judge run traces back to the weights."""

import json
import re
from pathlib import Path

import pytest

from _judge_server import FakeJudgeServer
from conftest import run_cli

KEY = "sk-pipeline-never-on-disk-31337"


def result_dir(proc) -> Path:
    m = re.search(r"results in (\S+)", proc.stdout + proc.stderr)
    assert m, (proc.stdout + proc.stderr)[-3000:]
    return Path(m.group(1))


@pytest.mark.slow
def test_caption_then_judge_then_compare(prepared, tmp_path):
    out = prepared["outputs"]
    cap = run_cli(["stage=caption", "model=tiny_qwen2_5_vl", f"paths.root={out}", "generation.max_new_tokens=16",
                   "name=pipe"], cwd=prepared["root"])
    assert cap.returncode == 0, cap.stderr[-3000:]
    cap_dir = result_dir(cap)
    n_captions = len([p for p in (cap_dir / "captions").glob("*.json") if p.name != "index.json"])
    assert n_captions > 0
    with FakeJudgeServer() as server:
        args = ["stage=judge", "eval=full", f"captions={cap_dir}", f"paths.root={out}",
                f"eval.judge.base_url={server.base_url}", "eval.judge.api_key_env=PIPE_JUDGE_KEY"]
        judged = run_cli(args, cwd=prepared["root"], env={"PIPE_JUDGE_KEY": KEY})
        assert judged.returncode == 0, judged.stderr[-3000:]
        again = run_cli(args, cwd=prepared["root"], env={"PIPE_JUDGE_KEY": KEY})
        assert again.returncode == 0, again.stderr[-3000:]
    j1, j2 = result_dir(judged), result_dir(again)
    summary = json.loads((j1 / "summary.json").read_text())
    assert summary["items"] == n_captions == len(list((j1 / "scores").glob("*.score.json")))
    assert summary["captions_run"] == str(cap_dir.resolve())
    assert summary["checkpoint"] and Path(summary["checkpoint"]).name == "tiny_qwen2_5_vl"
    llm = summary["metrics"]["llm_judge"]
    c = llm["counts"]
    # Every key of every caption is accounted for: judged, failed, or a named reason it was not.
    assert c["judged"] + c["failed"] + c["missing_in_caption"] + c["missing_in_reference"] + c["unparsed_caption"] \
        == 15 * n_captions
    assert c["failed"] == 0 and llm["usage"]["requests"] == len(server.requests)
    assert json.loads((j2 / "summary.json").read_text())["metrics"]["llm_judge"]["usage"]["requests"] == 0
    for run in (cap_dir, j1, j2):
        for p in run.rglob("*"):
            assert not p.is_file() or KEY.encode() not in p.read_bytes(), p
    cmp = run_cli(["stage=compare", "eval=local", f"a={j1}", f"b={j2}", f"paths.root={out}"], cwd=prepared["root"])
    assert cmp.returncode == 0, cmp.stderr[-3000:]
    comparison = json.loads((result_dir(cmp) / "comparison.json").read_text())
    assert comparison["paired_items"] == n_captions
    assert comparison["metrics"]["bleu"]["overall"]["mean"] == 0.0
