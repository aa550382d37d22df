"""Training items longer than model.model_max_length, found before cosmos-rl starts.

cosmos-rl's SFT trainer and data packers cut `input_ids` at model_max_length without a word and keep every
pixel: a long clip loses the end of its caption and the end token, and the model learns to stop mid-sentence.
Before the launch the stage builds the training split (as the entry would), counts each item's tokens with
our processor (the clip's size from one frame; frames, sizes and the prompt layout as in training), and
refuses the run or leaves those items out (backend.overlong), writing the conversation cache and data report
the roles then read.
"""

from pathlib import Path
from typing import Dict, List, Tuple

from cosmos_exp.config import Config, ConfigError, DataError


def token_counts(samples: list, processor, vision, strict: bool, report) -> Dict[int, Tuple[int, int]]:
    """id(sample) -> (tokens, vision tokens); a clip that cannot be read is left out in the report, its blend
    source's too (or stops the run under dataset.strict). A blend draws one item many times: each is counted once."""
    from cosmos_exp.data.video import VideoError

    counts: Dict[int, Tuple[int, int]] = {}
    failed = set()
    for sample in samples:
        if id(sample) in counts or id(sample) in failed:
            continue
        try:
            counts[id(sample)] = processor.count_tokens(sample.conversation, vision)
        except VideoError as err:
            failed.add(id(sample))
            report.drop(sample.video, str(err), "video", strict, sample.meta.get("component"))
    return counts


def prepare_training_split(cfg: Config, run_dir: Path) -> str:
    """Build, check and write the training split's conversations for the roles; what was done, in one line."""
    from cosmos_exp.data.datasets import build_dataset
    from cosmos_exp.data.processor import Processor
    from cosmos_exp.train.cosmos_rl.entry import report_path, write_conversations
    from cosmos_exp.train.data import training_order

    split, limit = str(cfg.dataset.train_split), int(cfg.model.model_max_length)
    samples, report = build_dataset(cfg.dataset, split)
    processor = Processor.from_pretrained(cfg.model.path, model_max_length=limit)
    counts = token_counts(samples, processor, cfg.dataset.vision, bool(cfg.dataset.strict), report)
    too_long = {key: n for key, n in counts.items() if n[0] > limit}
    unique: Dict[int, object] = {id(s): s for s in samples}
    if too_long and cfg.backend.overlong == "refuse":
        first = unique[next(iter(too_long))]
        tokens, vision = too_long[id(first)]
        raise ConfigError("model.model_max_length", f"{len(too_long)} of {len(counts)} training items need more "
                          f"than {limit} tokens, which cosmos-rl would cut silently (the first: {first.video}, "
                          f"{tokens} tokens, {vision} of them vision)",
                          "use fewer frames or pixels (dataset.vision.nframes / max_pixels), raise "
                          "model.model_max_length, or leave them out with backend.overlong=skip")
    for key, (tokens, vision) in too_long.items():
        report.drop(unique[key].video, f"{tokens} tokens ({vision} vision) exceed model.model_max_length={limit}",
                    "overlong", source=unique[key].meta.get("component"))
    kept: List = training_order(cfg, [s for s in samples if id(s) in counts and id(s) not in too_long])
    try:
        write_conversations(run_dir, split, kept, report)
    except ValueError as err:
        raise DataError(str(err)) from None
    return f"{report.summary()}; all {len(kept)} kept fit in {limit} tokens (report: {report_path(run_dir, split)})"
