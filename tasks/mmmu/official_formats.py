"""The official MMMU file formats: predictions to rescore, and the test-split submission.

- eval-only (`main_eval_only.py` input): one JSON object ``{id: prediction}``; choice predictions are final
  letters (used verbatim), open predictions are re-parsed.
- raw outputs (`main_parse_and_eval.py` input): a folder with ``<Subject>/output.json``, each a list of
  ``{id, question_type, answer, all_choices, index2ans, response}``; everything is parsed.
- submission (test split): the eval-only format — choice items carry the parsed letter, open items the raw
  response text (the server parses open answers itself).

Records come out in the official order (subjects alphabetically, items in file order), which is the order the
official random fallback is drawn in. Ids of the answer key that have no prediction become "missing" records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from s3eval.storage import read_json
from s3eval.task import Task, TaskError
from s3eval.types import Gold, Record, letters_for

from .answer_keys import pinned_gold
from .subjects import DISCIPLINE_OF, subject_of

Key = Mapping[str, tuple[str, Gold]]


def _record(task: Task, sample_id: str, answer_type: str, gold: Gold, choices: Sequence[str] = ()) -> Record:
    subject = subject_of(sample_id)
    return Record(
        task=task.name,
        sample_id=sample_id,
        answer_type=answer_type,  # type: ignore[arg-type]
        choices=list(choices),
        gold=gold if gold is None or isinstance(gold, str) else list(gold),
        groups={"subject": subject, "discipline": DISCIPLINE_OF.get(subject, "")},
    )


def _subject_or_error(sample_id: str, where: Path) -> str:
    try:
        subject = subject_of(sample_id)
    except ValueError as exc:
        raise TaskError(f"{where}: {exc}") from exc
    if subject not in DISCIPLINE_OF:
        raise TaskError(f"{where}: id {sample_id!r} names no MMMU subject")
    return subject


def _missing(task: Task, key: Key, subject: str, seen: set[str]) -> list[Record]:
    out = []
    for sample_id, (answer_type, gold) in key.items():
        if sample_id not in seen and subject_of(sample_id) == subject:
            record = _record(task, sample_id, answer_type, pinned_gold(task.key_version, sample_id, gold))
            record.error, record.error_kind = "missing: no prediction for this id", "missing"
            out.append(record)
    return out


def _unknown_ids(ids: Sequence[str], key: Key, path: Path) -> None:
    unknown = [i for i in ids if i not in key]
    if unknown:
        raise TaskError(
            f"{path}: {len(unknown)} id(s) are not in the answer key, e.g. {unknown[:5]}; "
            f"check the split and the --answer-key file"
        )


def import_eval_only(task: Task, path: Path, key: Key, subjects: Sequence[str]) -> list[Record]:
    data = read_json(path)
    if not isinstance(data, dict):
        raise TaskError(f"{path}: eval-only predictions must be a JSON object {{id: prediction}}")
    _unknown_ids(list(data), key, path)
    by_subject: dict[str, list[str]] = {}
    for sample_id in data:
        by_subject.setdefault(_subject_or_error(sample_id, path), []).append(sample_id)
    records = []
    for subject in subjects:
        for sample_id in by_subject.get(subject, []):
            prediction = data[sample_id]
            if not isinstance(prediction, str):
                raise TaskError(f"{path}: prediction for {sample_id!r} must be a string, got {prediction!r}")
            answer_type, gold = key[sample_id]
            record = _record(task, sample_id, answer_type, pinned_gold(task.key_version, sample_id, gold))
            record.response, record.response_kind = prediction, "prediction"
            records.append(record)
        records.extend(_missing(task, key, subject, set(by_subject.get(subject, []))))
    return records


def _raw_item(task: Task, item: Any, where: str, key: Optional[Key]) -> Record:
    if not isinstance(item, dict):
        raise TaskError(f"{where}: each item must be an object")
    for field in ("id", "question_type", "response"):
        if field not in item:
            raise TaskError(f"{where}: item {item.get('id', '?')!r} lacks field {field!r}")
    sample_id = item["id"]
    if not isinstance(item["response"], str):
        raise TaskError(f"{where}: item {sample_id!r}: field 'response' must be a string")
    answer_type = "choice" if item["question_type"] == "multiple-choice" else "open"
    choices: list[str] = []
    if answer_type == "choice":
        letters, index2ans = item.get("all_choices"), item.get("index2ans")
        if not isinstance(letters, list) or not isinstance(index2ans, dict) or not letters:
            raise TaskError(f"{where}: item {sample_id!r} needs 'all_choices' (list) and 'index2ans' (object)")
        if tuple(letters) != letters_for(len(letters)) or set(index2ans) != set(letters):
            raise TaskError(f"{where}: item {sample_id!r}: all_choices/index2ans are not the letters A, B, … in order")
        choices = [str(index2ans[letter]) for letter in letters]
    if key is not None:
        answer_type, gold = key[sample_id]
    else:
        if "answer" not in item:
            raise TaskError(f"{where}: item {sample_id!r} lacks field 'answer' (or pass --answer-key)")
        raw = item["answer"]
        gold = raw if isinstance(raw, str) else tuple(str(g) for g in raw)
    record = _record(task, sample_id, answer_type, pinned_gold(task.key_version, sample_id, gold), choices)
    record.response = item["response"]
    return record


def import_raw_outputs(task: Task, folder: Path, key: Optional[Key], subjects: Sequence[str]) -> list[Record]:
    records = []
    for subject in subjects:
        path = folder / subject / "output.json"
        seen: set[str] = set()
        if path.is_file():
            items = read_json(path)
            if not isinstance(items, list):
                raise TaskError(f"{path}: expected a list of items")
            if key is not None:
                _unknown_ids([i.get("id") for i in items if isinstance(i, dict)], key, path)
            for item in items:
                record = _raw_item(task, item, str(path), key)
                seen.add(record.sample_id)
                records.append(record)
        if key is not None:
            records.extend(_missing(task, key, subject, seen))
    if not records:
        raise TaskError(f"{folder}: no <Subject>/output.json files for the selected subjects")
    return records


def import_predictions(task: Task, path: Path, key: Optional[Key], subjects: Sequence[str]) -> list[Record]:
    path = Path(path)
    if path.is_dir():
        return import_raw_outputs(task, path, key, subjects)
    if key is None:
        raise TaskError(f"{path}: eval-only predictions need golds: pass --answer-key FILE or --data")
    return import_eval_only(task, path, key, subjects)


def submission(records: Sequence[Record]) -> dict[str, str]:
    out = {}
    for record in records:
        if record.answer_type == "choice":
            out[record.sample_id] = record.parsed or ""
        else:
            out[record.sample_id] = (record.response or "").strip()
    return out
