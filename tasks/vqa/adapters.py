"""Public benchmark layouts read into the project's question format (``items.py``), so the same task, prompts
and metrics serve them:

- ``mmbench``: MMBench-style JSONL (``open-compass/MMBench`` sample rows: ``index, image, question, options{A..},
  answer, category, l2_category``);
- ``mmau``: MMAU's JSON list (``Sakshi113/MMAU``: ``id, audio_id, question, choices, answer`` as option text,
  ``task, category, sub-category, difficulty``);
- ``vqav2``: the official VQA questions file plus its ``annotations`` file (``GT-Vision-Lab/VQA``:
  ``questions[{image_id, question, question_id}]``, ``data_subtype``; ``annotations[{question_id, answers[{answer}],
  answer_type, question_type}]``); images are ``COCO_<data_subtype>_<image_id:012>.jpg`` under ``media_root``;
  breakdowns by answer type (category) and question type (subcategory), as the official report;
- ``clotho_aqa``: the Clotho-AQA CSV (``file_name, QuestionText, answer, confidence``, one row per annotator): one
  item per clip and question whose golds are the annotators' answers marked ``confidence == yes`` (all of them
  where none is), audio ``file_name`` under ``media_root``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Callable, Optional

from .items import ItemError, read_rows


def _mmbench(row: Any) -> Any:
    if not isinstance(row, dict):
        return row
    options = row.get("options") or {}
    letters = sorted(k for k in options if isinstance(k, str) and len(k) == 1 and k.isalpha())
    out = {"id": row.get("index"), "question": row.get("question"), "image": row.get("image"),
           "choices": [options[k] for k in letters], "answer": row.get("answer"),
           "category": row.get("category"), "subcategory": row.get("l2_category")}  # fmt: skip
    if row.get("hint"):
        out["hint"] = row["hint"]
    return {k: v for k, v in out.items() if v is not None}


def _mmau(row: Any) -> Any:
    if not isinstance(row, dict):
        return row
    out = {"id": row.get("id"), "question": row.get("question"), "audio": row.get("audio_id"),
           "choices": row.get("choices"), "answer": row.get("answer"), "category": row.get("task"),
           "subcategory": row.get("sub-category"), "question_type": row.get("category")}  # fmt: skip
    return {k: v for k, v in out.items() if v is not None}


def _json_list(path: Path) -> list[tuple[int, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ItemError(f"cannot read {path} as JSON: {exc}") from exc
    if not isinstance(data, list):
        raise ItemError(f"{path}: expected a JSON list of items")
    return list(enumerate(data, start=1))


def _json_object(path: Path, key: str) -> Any:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ItemError(f"cannot read {path} as JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise ItemError(f"{path}: expected a JSON object with a `{key}` list")
    return data


def _vqav2(path: Path, annotations: Optional[Path]) -> list[tuple[int, Any]]:
    if annotations is None:
        raise ItemError("layout vqav2 needs `annotations:` (the annotations JSON beside the questions file)")
    questions = _json_object(path, "questions")
    by_id = {a.get("question_id"): a for a in _json_object(annotations, "annotations")["annotations"]}
    subtype = questions.get("data_subtype", "val2014")
    rows = []
    for n, q in enumerate(questions["questions"], start=1):
        a = by_id.get(q.get("question_id"), {})
        row = {"id": q.get("question_id"), "question": q.get("question"),
               "image": f"COCO_{subtype}_{int(q.get('image_id', -1)):012d}.jpg",
               "answer": [x.get("answer") for x in a.get("answers", [])] or None,
               "category": a.get("answer_type"), "subcategory": a.get("question_type")}  # fmt: skip
        rows.append((n, {k: v for k, v in row.items() if v is not None}))
    return rows


def _clotho_aqa(path: Path, annotations: Optional[Path]) -> list[tuple[int, Any]]:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            table = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError) as exc:
        raise ItemError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    missing = {"file_name", "QuestionText", "answer"} - set(table[0] if table else {})
    if missing:
        raise ItemError(f"{path}: not a Clotho-AQA CSV (missing columns {sorted(missing)})")
    grouped: dict[tuple[str, str], list[dict]] = {}
    for row in table:
        grouped.setdefault((row["file_name"], row["QuestionText"]), []).append(row)
    rows = []
    for n, ((name, question), group) in enumerate(grouped.items(), start=1):
        sure = [r["answer"] for r in group if r.get("confidence", "yes") == "yes"] or [r["answer"] for r in group]
        rows.append((n, {"id": f"{name}:{n}", "question": question, "audio": name, "answer": sure}))
    return rows


def _converted(reader: Callable[[Path], list[tuple[int, Any]]], convert: Callable[[Any], Any]):
    def read(path: Path, annotations: Optional[Path]) -> list[tuple[int, Any]]:
        return [(n, row if isinstance(row, ItemError) else convert(row)) for n, row in reader(path)]

    return read


# layout -> reader of (position, row in the project's fields) pairs from the questions file (and annotations)
LAYOUTS: dict[str, Callable[[Path, Optional[Path]], list[tuple[int, Any]]]] = {
    "s3eval": _converted(read_rows, lambda row: row),
    "mmbench": _converted(read_rows, _mmbench),
    "mmau": _converted(_json_list, _mmau),
    "vqav2": _vqav2,
    "clotho_aqa": _clotho_aqa,
}


def converted_rows(layout: str, path: Path, annotations: Optional[Path] = None) -> list[tuple[int, Any]]:
    return LAYOUTS[layout](path, annotations)
