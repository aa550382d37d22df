"""The GPU check (bench/gpu_check.sh, bench/gpu_check/): its CPU smoke mode runs every part at tiny shapes through
the code the GPU runs, so that path cannot rot between the rare sessions that have a GPU; and its record."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "gpu_check.sh"
SECTION = "## GPU check (bench/gpu_check.sh)"


def _run(args, timeout=900):
    env = {k: v for k, v in os.environ.items() if k != "OUT"}  # $OUT exists on the lent machine only
    env["PYTHON"] = sys.executable
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=timeout)


def _section(results: Path):
    lines = results.read_text().splitlines()
    start = lines.index(SECTION)
    return [line for line in lines[start + 1:] if line.startswith("- ")]


@pytest.mark.slow  # 30-45 s on 2 cores: six processes, each importing torch, transformers and DeepSpeed
def test_cpu_smoke_records_every_part(tmp_path):
    out, results = tmp_path / "gpu_check.json", tmp_path / "RESULTS.md"
    proc = _run(["--cpu-smoke", "--work", tmp_path / "work", "--out", out, "--results", results])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["mode"] == "cpu-smoke" and data["machine"]["device"] == "cpu"
    assert data["versions"]["packages"]["torch"] and data["versions"]["code"]["version"]
    parts = data["parts"]
    assert {k: v["status"] for k, v in parts.items()} == {"sft": "ok", "caption": "ok", "trajectory": "ok"}

    sft = parts["sft"]
    flops = sft["flops_per_sample"]
    assert flops["total"] == pytest.approx(sum(v for k, v in flops.items() if k != "total"))
    assert flops["vision_matmul"] > 0 and flops["text_attention"] > 0
    assert set(sft["runs"]) == {"ours_zero2", "hf_trainer"} and sft["best_ours"] == "ours_zero2"
    for run in sft["runs"].values():
        assert run["samples_per_s"] > 0 and run["peak_memory_gb"] > 0 and run["steps_timed"] == 2
        assert run["tokens_per_s"] == pytest.approx(run["samples_per_s"] * sft["sample"]["tokens_mean"])
        assert run["mfu"] == pytest.approx(run["samples_per_s"] * flops["total"] / (sft["peak_tflops"] * 1e12))
    assert 0 <= sft["runs"]["ours_zero2"]["data_wait_share"] < 1
    assert sft["speedup_vs_trainer"] == pytest.approx(
        sft["runs"]["ours_zero2"]["samples_per_s"] / sft["runs"]["hf_trainer"]["samples_per_s"])
    assert set(sft["goals"]) == {"speedup_vs_trainer", "mfu", "data_wait_share"}

    cap = parts["caption"]
    assert cap["videos_per_s_batch1"] > 0 and cap["ratio"] == pytest.approx(
        cap["videos_per_s_batched"] / cap["videos_per_s_batch1"])
    assert cap["new_tokens_batch1"] > 0 and cap["identical_token_ids"] == cap["videos"] == 4  # greedy, fp32

    traj = parts["trajectory"]
    assert traj["step_time_s"] > 0 and traj["samples_per_s"] > 0 and traj["peak_memory_gb"] > 0
    assert traj["tokens_per_sample"] > 4 * 2 * 4 + 48  # 4 cameras x 2 frames of images, and 48 history tokens

    lines = _section(results)
    assert len(lines) == 3 and [p["results_line"] for p in parts.values()] == lines
    assert "sft:" in lines[0] and "caption:" in lines[1] and "trajectory stage 2:" in lines[2]

    # What comes back from the lent machine is the record alone: its lines are appended here from it.
    again = tmp_path / "RESULTS_here.md"
    proc = subprocess.run([sys.executable, "-m", "gpu_check", "--record-from", str(out), "--results", str(again)],
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "bench")])},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _section(again) == lines


def test_real_mode_needs_a_gpu_and_bad_inputs_fail_in_one_line(tmp_path):
    proc = _run(["--part", "sft", "--work", tmp_path / "work"])
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr and "Traceback" not in proc.stderr

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not clips")
    proc = _run(["--prepare-data", foreign])
    assert proc.returncode == 2 and "holds no GPU-check clips" in proc.stderr and "Traceback" not in proc.stderr

    not_a_record = tmp_path / "x.json"
    not_a_record.write_text("[]")
    proc = _run(["--record-from", not_a_record])
    assert proc.returncode != 0 and "is not a GPU-check record" in proc.stderr


def test_a_failing_part_is_recorded_with_its_error(tmp_path):
    """Clips prepared for other settings fail the caption part, naming the directory; the record keeps it."""
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "gpu_check_clips.json").write_text(json.dumps({"clips": 1}))
    out = tmp_path / "gpu_check.json"
    proc = _run(["--cpu-smoke", "--part", "caption", "--data", clips, "--work", tmp_path / "work", "--out", out])
    assert proc.returncode == 1, proc.stderr[-2000:]
    part = json.loads(out.read_text())["parts"]["caption"]
    assert part["status"] == "failed" and str(clips) in part["error"] and "prepare them again" in part["error"]
