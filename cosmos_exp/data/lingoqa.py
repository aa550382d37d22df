"""The official LingoQA evaluation set -> our `lingoqa.jsonl` (one line per question).

The benchmark ships a parquet with one row per (question, reference answer): `question_id, segment_id, question,
answer`, about two rows per question, 500 questions. Its score is correct / questions, so the rows of one
question become ONE item whose references are all its answers (rows kept as items would count a question
twice). A segment is a folder of JPEG frames, `<root>/<frames_dir>/<segment_id>/`; the item's video is that
folder, written relative to the split directory as the dataset reader expects.
"""

import json
import os
from pathlib import Path
from typing import Any, Dict, List

from cosmos_exp.config.errors import DataError
from cosmos_exp.repro.atomic import write_text_atomic

COLUMNS = ("question_id", "segment_id", "question", "answer")


def read_official(parquet: Path) -> List[Dict[str, Any]]:
    """Questions in first-seen order: {"question_id", "segment_id", "question", "answers": [...]}."""
    import pyarrow.parquet as pq

    parquet = Path(parquet)
    if not parquet.is_file():
        raise DataError(f"{parquet}: LingoQA evaluation parquet not found (dataset.lingoqa_parquet)")
    try:
        table = pq.read_table(parquet)
    except Exception as exc:  # pyarrow raises its own ArrowInvalid / OSError types
        raise DataError(f"{parquet}: not a readable parquet file ({exc})") from None
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(f"{parquet}: missing columns {missing} (has {table.column_names}); expected the official "
                        f"LingoQA evaluation parquet with {list(COLUMNS)}")
    questions: Dict[str, Dict[str, Any]] = {}
    for n, row in enumerate(table.select(list(COLUMNS)).to_pylist()):
        qid = str(row["question_id"])
        q = questions.setdefault(qid, {"question_id": qid, "segment_id": str(row["segment_id"]),
                                       "question": str(row["question"]), "answers": []})
        if (q["segment_id"], q["question"]) != (str(row["segment_id"]), str(row["question"])):
            raise DataError(f"{parquet}: row {n} gives question {qid} another segment or question text than its "
                            f"first row; the file is not the official evaluation set")
        if row["answer"] is not None and str(row["answer"]).strip():
            q["answers"].append(str(row["answer"]))
    empty = [qid for qid, q in questions.items() if not q["answers"]]
    if empty:
        raise DataError(f"{parquet}: questions {empty[:5]} have no reference answer")
    return list(questions.values())


def convert(parquet: Path, root: Path, split: str, frames_dir: str) -> Dict[str, Any]:
    """Write `<root>/<split>/lingoqa.jsonl` from the parquet; returns counts for the run record."""
    questions = read_official(parquet)
    split_dir = Path(root) / split
    lines = []
    for q in questions:
        if "." in q["question_id"] or "/" in q["segment_id"]:
            raise DataError(f"{parquet}: question {q['question_id']!r} / segment {q['segment_id']!r} cannot name "
                            f"a file (a '.' in the id or a '/' in the segment)")
        video = os.path.relpath(Path(root) / frames_dir / q["segment_id"], split_dir)
        lines.append(json.dumps({"id": q["question_id"], "video": video, "question": q["question"],
                                 "answers": q["answers"]}, ensure_ascii=False))
    out = split_dir / "lingoqa.jsonl"
    write_text_atomic(out, "\n".join(lines) + "\n")
    return {"lingoqa_jsonl": str(out), "questions": len(questions),
            "segments": len({q["segment_id"] for q in questions}),
            "references": sum(len(q["answers"]) for q in questions)}
