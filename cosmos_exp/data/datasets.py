"""Datasets that turn files on disk into conversations.

Kinds (dataset.kind), each with its own label schema:
- caption: the cookbook layout `<root>/<split>/<video_dir>/<id><camera_suffix><video_ext>` +
  `<root>/<split>/<meta_dir>/<id><label_suffix>`; target = the caption keys' JSON (dataset.target_format).
- mcq: `<root>/<split>/mcq.jsonl`, lines {"id", "video", "question", "options": {"A".."D"},
  "answer", "category"}; target = the answer letter.
- lingoqa: `<root>/<split>/lingoqa.jsonl`, lines {"id", "video", "question", "answers": [...]};
  target = the first reference answer. stage=prepare writes it from the official evaluation parquet
  (data/lingoqa.py) when dataset.lingoqa_parquet is set.
- qa: free-form questions, `<root>/<split>/qa.jsonl`, lines {"id", "video", "question", "answer"} and, for a
  reasoning source, "reasoning"; target = the answer, or "<think>\n{reasoning}\n</think>\n\n<answer>\n{answer}\n
  </answer>" when the line has reasoning (the Cosmos Reason format).
- blend: sources of any of those kinds (dataset.blend: name, kind, root, weight, and its own prompts, caption
  keys and target format), each read as above with its own data report. The training split is drawn with
  the weights, deterministic by dataset.blend_seed (see blend.py; `blend_length` draws per epoch); any other
  split holds every item of every source once (weights shape training, not what is evaluated).
Video paths in jsonl files are relative to the split directory and must stay inside the dataset root; a
video may be a folder of JPEG frames (a LingoQA segment).

Every bad item (missing video or label, empty / corrupt / too-short video, invalid JSON, missing
keys, an id with dots, a path outside the root) is skipped with a message naming the file and
counted in the DataReport (a blend's also in its source's); with dataset.strict the first one raises
DataError instead.
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from cosmos_exp.config.data import DatasetConfig, VisionConfig
from cosmos_exp.config.errors import DataError
from cosmos_exp.config.names import DRIVING_KINDS
from cosmos_exp.data.conversation import build_conversation
from cosmos_exp.data.report import DataReport
from cosmos_exp.data.labels import CAPTION_KEYS, LabelError, caption_target, read_label
from cosmos_exp.data.prompts import load_prompt

KINDS = ("caption", "blend", "mcq", "lingoqa", "qa")
QA_FILES = {"mcq": "mcq.jsonl", "lingoqa": "lingoqa.jsonl", "qa": "qa.jsonl"}
# A blend source's user prompt when it names none (a caption source: the dataset's own).
DEFAULT_USER_PROMPTS = {"mcq": "mcq", "lingoqa": "lingoqa", "qa": "qa"}
_NEEDED = {"mcq": ("options", "answer"), "lingoqa": ("answers",), "qa": ("answer",)}


@dataclass
class Sample:
    id: str
    task: str  # caption | mcq | lingoqa | qa
    video: str  # absolute path
    conversation: List[dict]
    target: Optional[str]
    reference: dict
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Source:
    """Where one kind of item comes from and how it becomes conversations: the dataset itself, or one source
    of a blend (its name then goes into each sample's meta["component"])."""

    name: str
    kind: str
    root: str
    system_prompt: str
    user_prompt: str
    caption_keys: Tuple[str, ...] = CAPTION_KEYS
    target_format: str = "json"
    component: Optional[str] = None


def sources(cfg: DatasetConfig) -> List[Source]:
    """The dataset's sources: its blend components, or the dataset itself."""
    if cfg.kind != "blend":
        return [Source(str(cfg.name), str(cfg.kind), str(cfg.root), str(cfg.system_prompt), str(cfg.user_prompt),
                       CAPTION_KEYS, str(cfg.target_format))]
    out = []
    for c in cfg.blend:
        user = c.user_prompt or (cfg.user_prompt if c.kind == "caption" else DEFAULT_USER_PROMPTS[c.kind])
        out.append(Source(str(c.name), str(c.kind), str(c.root), str(c.system_prompt or cfg.system_prompt), str(user),
                          tuple(c.caption_keys) if c.caption_keys else CAPTION_KEYS,
                          str(c.target_format or cfg.target_format), component=str(c.name)))
    return out


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def _split_dir(root: str, split: str) -> Path:
    return Path(root).expanduser().resolve() / split


def _scan_caption_dir(cfg: DatasetConfig, root: str, split: str):
    """Pairs (id, video path | None, label path | None) by id, plus names that match neither pattern."""
    split_dir = _split_dir(root, split)
    vdir, mdir = split_dir / cfg.video_dir, split_dir / cfg.meta_dir
    vsuffix = cfg.camera_suffix + cfg.video_ext
    videos: Dict[str, Path] = {}
    labels: Dict[str, Path] = {}
    if vdir.is_dir():
        for p in vdir.iterdir():
            if p.name.endswith(vsuffix) and not p.name.startswith("."):
                videos[p.name[: -len(vsuffix)]] = p
    if mdir.is_dir():
        for p in mdir.iterdir():
            if p.name.endswith(cfg.label_suffix) and not p.name.startswith("."):
                labels[p.name[: -len(cfg.label_suffix)]] = p
    ids = sorted(set(videos) | set(labels))
    return split_dir, [(i, videos.get(i), labels.get(i)) for i in ids]


def _count_source(cfg: DatasetConfig, source: Source, split: str) -> int:
    if source.kind == "caption":
        _, items = _scan_caption_dir(cfg, source.root, split)
        return sum(1 for _, v, l in items if v is not None and l is not None)
    path = _split_dir(source.root, split) / QA_FILES[source.kind]
    return sum(1 for line in path.open(encoding="utf-8") if line.strip()) if path.is_file() else 0


def count_items(dataset_cfg: DatasetConfig, split: str) -> int:
    """Cheap count for dry runs: listed files only, no JSON parsing of labels, no video decoding."""
    kind = dataset_cfg.kind
    if kind in DRIVING_KINDS:
        from cosmos_exp.data.driving_datasets import count_driving

        return count_driving(dataset_cfg, split)
    if kind not in KINDS:
        raise ValueError(f"unknown dataset.kind {kind!r}; expected one of {KINDS}")
    n = sum(_count_source(dataset_cfg, s, split) for s in sources(dataset_cfg))
    if kind == "blend" and dataset_cfg.blend_length and split == dataset_cfg.train_split:
        n = int(dataset_cfg.blend_length)
    return min(n, dataset_cfg.max_items) if dataset_cfg.max_items else n


def _probe_video(path: Path, vision: VisionConfig) -> Optional[str]:
    """None if the clip opens and holds enough frames for `vision`, else the reason."""
    from cosmos_exp.data.sampling import FrameSamplingError, num_frames_to_sample
    from cosmos_exp.data.video import VideoError, open_video

    try:
        with open_video(path, vision.backend) as reader:
            num_frames_to_sample(reader.num_frames, reader.fps, vision, 2)
            reader.get_frames([reader.num_frames - 1])  # the last frame decodes: not truncated
    except (VideoError, FrameSamplingError) as exc:
        return str(exc).replace(f"{path}: ", "")
    return None


def _check_video(path: Optional[Path], root: Path, cfg: DatasetConfig, report: DataReport, ref: Path,
                 probed: Optional[Dict[str, Optional[str]]] = None) -> bool:
    if path is None or not (path.is_file() or path.is_dir()):  # a folder: a segment given as JPEG frames
        report.skip(ref, f"no video at {path}" if path else "no video for this label", "missing_video", cfg.strict)
        return False
    if not _inside(path, root):
        report.skip(path, f"resolves outside the dataset root {root}", "outside_root", cfg.strict)
        return False
    if path.is_file() and path.stat().st_size == 0:
        report.skip(path, "video file is empty (0 bytes)", "empty_video", cfg.strict)
        return False
    if cfg.probe_videos:
        key = str(path.resolve())
        if probed is not None and key in probed:
            reason = probed[key]  # many questions share one clip: open it once
        else:
            reason = _probe_video(path, cfg.vision)
            if probed is not None:
                probed[key] = reason
        if reason:
            report.skip(path, reason, "bad_video", cfg.strict)
            return False
    return True


def _meta(source: Source, split: str, **extra) -> dict:
    meta = {**extra, "split": split}
    if source.component:
        meta["component"] = source.component
    return meta


def _caption_samples(cfg: DatasetConfig, source: Source, split: str, report: DataReport) -> List[Sample]:
    system, user = load_prompt(source.system_prompt), load_prompt(source.user_prompt)
    split_dir, items = _scan_caption_dir(cfg, source.root, split)
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: split directory not found (dataset.root / split)")
    data_root = split_dir.parent
    samples = []
    for item_id, video, label in items:
        report.found += 1
        ref = label or video
        if "." in item_id:
            report.skip(ref, f"id {item_id!r} contains '.'; ids end at the first dot in file names",
                        "dotted_id", cfg.strict)
            continue
        if label is None:
            report.skip(video, f"no label file {cfg.meta_dir}/{item_id}{cfg.label_suffix}", "missing_label", cfg.strict)
            continue
        if video is None:
            expected = split_dir / cfg.video_dir / f"{item_id}{cfg.camera_suffix}{cfg.video_ext}"
            report.skip(label, f"no video file {expected}", "missing_video", cfg.strict)
            continue
        try:
            caption = read_label(label, source.caption_keys)
        except LabelError as exc:
            kind = "invalid_json" if "JSON" in str(exc) or "UTF-8" in str(exc) else "missing_keys"
            report.skip(label, str(exc).replace(f"{label}: ", ""), kind, cfg.strict)
            continue
        if not _check_video(video, data_root, cfg, report, label):
            continue
        target = caption_target(caption, source.target_format)
        vpath = str(video.resolve())
        samples.append(Sample(item_id, "caption", vpath, build_conversation(system, user, vpath, cfg.vision, target),
                              target, caption, _meta(source, split, label=str(label))))
        report.used += 1
        if cfg.max_items and report.used >= cfg.max_items and source.component is None:
            break
    return samples


def _qa_target(kind: str, row: dict) -> Tuple[Optional[str], str, Optional[dict], Optional[str]]:
    """(question text, target, reference, problem) of one question line of `kind`."""
    if kind == "mcq":
        options = row["options"]
        if not isinstance(options, dict) or row["answer"] not in options:
            return None, "", None, f"answer {row['answer']!r} is not one of the options"
        question = row["question"] + "\n" + "\n".join(f"{k}. {v}" for k, v in sorted(options.items()))
        return question, row["answer"], {"answer": row["answer"], "category": row.get("category"),
                                         "options": options}, None
    if kind == "lingoqa":
        answers = row["answers"] if isinstance(row["answers"], list) else [row["answers"]]
        if not answers:
            return None, "", None, "no reference answers"
        return row["question"], str(answers[0]), {"answers": answers}, None
    answer, reasoning = row["answer"], row.get("reasoning")
    if not isinstance(answer, str) or not answer.strip():
        return None, "", None, "empty answer"
    if reasoning is not None and (not isinstance(reasoning, str) or not reasoning.strip()):
        return None, "", None, "reasoning is not a non-empty string"
    target = answer if reasoning is None else f"<think>\n{reasoning}\n</think>\n\n<answer>\n{answer}\n</answer>"
    return row["question"], target, {"answer": answer, "reasoning": reasoning}, None


def _qa_samples(cfg: DatasetConfig, source: Source, split: str, report: DataReport) -> List[Sample]:
    kind = source.kind
    split_dir = _split_dir(source.root, split)
    path = split_dir / QA_FILES[kind]
    if not path.is_file():
        raise DataError(f"{path}: {kind} question file not found")
    system, instruction = load_prompt(source.system_prompt), load_prompt(source.user_prompt)
    samples = []
    probed: Dict[str, Optional[str]] = {}
    for lineno, line in enumerate(path.open(encoding="utf-8"), 1):
        if not line.strip():
            continue
        report.found += 1
        where = f"{path}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            report.skip(where, f"not valid JSON ({exc})", "invalid_json", cfg.strict)
            continue
        if not isinstance(row, dict):
            report.skip(where, f"expected a JSON object, got {type(row).__name__}", "invalid_json", cfg.strict)
            continue
        missing = [k for k in ("id", "video", "question") + _NEEDED[kind] if k not in row]
        if missing:
            report.skip(where, f"missing fields {missing}", "missing_keys", cfg.strict)
            continue
        qid = str(row["id"])
        if "." in qid:
            report.skip(where, f"id {qid!r} contains '.'", "dotted_id", cfg.strict)
            continue
        video = (split_dir / row["video"]) if not os.path.isabs(row["video"]) else Path(row["video"])
        if not _inside(video, split_dir.parent):
            report.skip(where, f"video path {row['video']!r} points outside the dataset root {split_dir.parent}",
                        "outside_root", cfg.strict)
            continue
        if not _check_video(video, split_dir.parent, cfg, report, Path(where), probed):
            continue
        question, target, reference, problem = _qa_target(kind, row)
        if problem:
            report.skip(where, problem, "missing_keys", cfg.strict)
            continue
        vpath = str(video.resolve())
        user_text = f"{instruction}\n{question}"
        samples.append(Sample(qid, kind, vpath, build_conversation(system, user_text, vpath, cfg.vision, target),
                              target, reference, _meta(source, split, question=row["question"], file=where)))
        report.used += 1
        if cfg.max_items and report.used >= cfg.max_items and source.component is None:
            break
    return samples


def _source_samples(cfg: DatasetConfig, source: Source, split: str, report: DataReport) -> List[Sample]:
    if source.kind == "caption":
        return _caption_samples(cfg, source, split, report)
    return _qa_samples(cfg, source, split, report)


def _blend(cfg: DatasetConfig, split: str, report: DataReport) -> List[Sample]:
    from cosmos_exp.data.blend import blend_draws

    if not cfg.blend:
        raise DataError("dataset.kind=blend needs dataset.blend components (name, kind, root, weight)")
    parts = []
    for source in sources(cfg):
        sub = DataReport(dataset=f"{cfg.name}/{source.name}", split=split)
        parts.append(_source_samples(cfg, source, split, sub))
        report.add_source(source.name, sub)
    if split != cfg.train_split:  # every item once: a held-out split is evaluated, not mixed
        flat = [s for part in parts for s in part]
        return flat[:cfg.max_items] if cfg.max_items else flat
    sizes = [len(p) for p in parts]
    for source, size in zip(sources(cfg), sizes):
        if size == 0:
            raise DataError(f"blend source {source.name!r} has no usable items in {source.root}/{split} (see the "
                            "data report); drop it from dataset.blend or fix its data")
    length = cfg.blend_length or sum(sizes)
    if cfg.max_items:
        length = min(length, cfg.max_items)
    draws = blend_draws(sizes, [c.weight for c in cfg.blend], cfg.blend_seed, 0, length)
    return [parts[c][i] for c, i in draws]


def build_dataset(dataset_cfg: DatasetConfig, split: str) -> Tuple[List[Sample], DataReport]:
    """Samples of one split and the report of what was skipped and why."""
    cfg = dataset_cfg
    report = DataReport(dataset=cfg.name, split=split)
    if cfg.kind == "blend":
        return _blend(cfg, split, report), report
    if cfg.kind in KINDS:
        return _source_samples(cfg, sources(cfg)[0], split, report), report
    raise ValueError(f"unknown dataset.kind {cfg.kind!r}; expected one of {KINDS}")
