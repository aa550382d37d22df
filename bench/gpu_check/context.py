"""What every part of a run gets: the preset, the work directory, where the clips are, and the chip."""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from gpu_check import assets
from gpu_check.presets import Preset


@dataclass
class Context:
    preset: Preset
    work: Path  # per preset: model, backbone, scenes, run directories and logs
    data: Path  # the caption clips (prepared beforehand for a machine without PyAV)
    device: str  # the GPU's name, or "cpu"
    peak_tflops: Optional[float]  # dense bf16 peak of the chip, None where unknown
    peak_source: str

    def model(self) -> Path:
        return assets.model_dir(self.work, self.preset)

    def clips(self) -> Path:
        return assets.caption_clips(self.data, self.preset)


def throughput(samples: float, seconds: float, tokens_per_sample: float, flops_per_sample: Optional[float],
               peak_tflops: Optional[float]) -> dict:
    """samples/s, tokens/s, model TFLOP/s and MFU of `samples` processed in `seconds`."""
    from cosmos_exp.train.flops import mfu

    per_s = samples / seconds
    out = {"seconds": seconds, "samples": samples, "samples_per_s": per_s, "tokens_per_s": per_s * tokens_per_sample,
           "step_time_s": None, "model_tflops_per_s": None, "mfu": None}
    if flops_per_sample is not None:
        out["model_tflops_per_s"] = per_s * flops_per_sample / 1e12
        if peak_tflops:
            out["mfu"] = mfu(per_s * flops_per_sample, peak_tflops)
    return out


def goal(value: Optional[float], target: float, at_least: bool = True) -> dict:
    """A goal of the issue, and whether the measured value meets it (None: not measured)."""
    met = None if value is None else (value >= target if at_least else value < target)
    return {"value": value, "target": (">= " if at_least else "< ") + f"{target:g}", "met": met}
