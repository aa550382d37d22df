"""Run the GPU check: `bash bench/gpu_check.sh [--part sft|caption|trajectory|all] [--cpu-smoke] [--out F]`.

Parts run in order, each on its own; a part that fails is recorded with its error and the next one runs (the
exit status is then 1). --cpu-smoke runs every part at tiny shapes on the CPU (CI): no RESULTS.md line unless
--results is given. --prepare-data DIR only makes the real preset's caption clips (bench/gpu_check_wheels.sh
does, on a machine with PyAV). The record carries each finished part's RESULTS.md line: on the lent machine the
line goes into a copy of the tree that does not come back, so `--record-from gpu_check.json` appends them here.
"""

import argparse
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import List, Optional

from gpu_check import caption, sft, trajectory
from gpu_check.procs import REPO

PARTS = {"sft": sft, "caption": caption, "trajectory": trajectory}
DEFAULT_DATA = REPO / ".gpu_check_data"  # the real preset's clips, prepared beside the wheels


def parse(argv: Optional[List[str]]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="gpu_check", description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=[*PARTS, "all"], default="all")
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny shapes on the CPU, the same code path (CI)")
    ap.add_argument("--out", type=Path, help="the JSON record (default $OUT/gpu_check.json, else <work>/gpu_check.json)")
    ap.add_argument("--work", type=Path, help="models, data and run directories (default: a new temporary directory)")
    ap.add_argument("--data", type=Path, help=f"the caption clips (default: {DEFAULT_DATA.name} in the checkout for "
                                              "the real preset, <work>/clips for the smoke)")
    ap.add_argument("--results", type=Path, help="append a line per part here (default bench/RESULTS.md; none for "
                                                 "--cpu-smoke)")
    ap.add_argument("--prepare-data", type=Path, metavar="DIR", help="only make the real preset's clips in DIR")
    ap.add_argument("--record-from", type=Path, metavar="JSON",
                    help="only append the RESULTS.md lines of a record that came back from the GPU machine")
    return ap.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse(argv)
    from gpu_check import assets, report
    from gpu_check.context import Context
    from gpu_check.presets import REAL, SMOKE

    if args.prepare_data:
        try:
            print(f"gpu_check: clips for the real preset in {assets.caption_clips(args.prepare_data.resolve(), REAL)}")
        except assets.AssetError as err:
            print(f"gpu_check: {err}", file=sys.stderr)
            return 2
        return 0
    if args.record_from:
        lines = report.lines_of(args.record_from)
        for line in lines:
            report.record_line(line, args.results or REPO / "bench" / "RESULTS.md")
        print(f"gpu_check: {len(lines)} line(s) of {args.record_from} appended")
        return 0
    import torch

    from cosmos_exp.train.flops import peak_bf16_tflops

    preset = SMOKE if args.cpu_smoke else REAL
    if preset is REAL and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; run it on the GPU machine, or --cpu-smoke for the CPU path",
              file=sys.stderr)
        return 2
    device = torch.cuda.get_device_name(0) if preset is REAL else "cpu"
    peak = peak_bf16_tflops(device) if preset is REAL else None
    peak_source = "cosmos_exp/train/flops.py PEAK_BF16_TFLOPS" if peak else "unknown chip: no MFU"
    if peak is None and preset.nominal_peak_tflops:
        peak, peak_source = preset.nominal_peak_tflops, "nominal (smoke: exercises the arithmetic only)"
    work = (args.work or Path(tempfile.mkdtemp(prefix="gpu_check_"))).resolve() / preset.name
    data = (args.data or (DEFAULT_DATA if preset is REAL else work / "clips")).resolve()
    out = args.out or (Path(os.environ["OUT"]) / "gpu_check.json" if os.environ.get("OUT") else work / "gpu_check.json")
    results = args.results or (None if args.cpu_smoke else REPO / "bench" / "RESULTS.md")
    ctx = Context(preset, work, data, device, peak, peak_source)

    header = {"mode": "cpu-smoke" if args.cpu_smoke else "gpu", "preset": preset.name,
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": report.machine(device),
              "versions": report.versions(), "work": str(work)}
    record = report.Record(out.resolve(), header)
    print(f"gpu_check: {header['mode']} on {device}; record {record.path}; work {work}", flush=True)
    failed = []
    for name in (PARTS if args.part == "all" else [args.part]):
        start = time.perf_counter()
        try:
            result = {"status": "ok", **PARTS[name].run(ctx)}
        except Exception as err:  # noqa: BLE001 - one part's failure is recorded, the next part still runs
            traceback.print_exc()
            result = {"status": "failed", "error": f"{type(err).__name__}: {err}"}
            failed.append(name)
        result["wall_s"] = time.perf_counter() - start
        report.keep_logs(work, record.path.parent)
        if result["status"] == "ok":
            result["results_line"] = report.results_line(PARTS[name].line(result), header)
        record.add(name, result)
        if result["status"] == "ok":
            report.record_line(result["results_line"], results)
            print(result["results_line"], flush=True)
        else:
            print(f"gpu_check: part {name} failed: {result['error'].splitlines()[0]}", file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
