"""One MMMU dataset row (HF `MMMU/MMMU` columns) → a typed Sample. A bad row becomes a Sample with ``error``
naming the id and the field, so the run records it instead of crashing."""

from __future__ import annotations

import ast
from typing import Any, Mapping, Optional

from s3eval.types import Gold, Media, Sample

from .answer_keys import pinned_gold
from .subjects import DISCIPLINE_OF, split_id

MAX_IMAGES = 7
_WITHHELD = {"", "?"}  # what the test split has in `answer`


class RowError(ValueError):
    def __init__(self, sample_id: str, field: str, problem: str) -> None:
        super().__init__(f"{sample_id}: field {field!r}: {problem}")


def parse_literal_list(text: Any, sample_id: str, field: str) -> list[str]:
    """Parse a Python-literal list of strings, e.g. ``"['$6', '$7']"``, without ``eval``."""
    if isinstance(text, list):
        value: Any = text
    elif isinstance(text, str):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
            raise RowError(sample_id, field, f"not a Python list literal ({type(exc).__name__}): {text[:80]!r}") from None
    else:
        raise RowError(sample_id, field, f"expected a string, got {type(text).__name__}")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RowError(sample_id, field, f"expected a list of strings, got {str(text)[:80]!r}")
    return value


def _image(row: Mapping[str, Any], number: int) -> Optional[Media]:
    value = row.get(f"image_{number}")
    if value is None:
        return None
    name = f"image_{number}"
    if isinstance(value, (bytes, bytearray)):
        return Media("image", name, data=bytes(value))
    if isinstance(value, Mapping):
        if value.get("bytes"):
            return Media("image", name, path=value.get("path"), data=bytes(value["bytes"]))
        if value.get("path"):
            return Media("image", name, path=str(value["path"]))
    return None


def _gold(row: Mapping[str, Any], sample_id: str, answer_type: str, letters: tuple[str, ...]) -> Gold:
    answer = row.get("answer")
    if answer is None or (isinstance(answer, str) and answer.strip() in _WITHHELD):
        return None
    if not isinstance(answer, str):
        raise RowError(sample_id, "answer", f"expected a string, got {type(answer).__name__}")
    if answer_type == "choice":
        if answer not in letters:
            span = f"{letters[0]}-{letters[-1]}" if letters else "none"
            raise RowError(sample_id, "answer", f"{answer!r} is not an option letter (options {span})")
        return answer
    if answer.startswith("[") and answer.endswith("]"):
        # The hub stores the official key's list golds as strings, e.g. "['24/7', '3.429']".
        return tuple(parse_literal_list(answer, sample_id, "answer"))
    return answer


def row_to_sample(row: Mapping[str, Any], key_version: str) -> Sample:
    sample_id = str(row.get("id") or "<row without id>")
    try:
        return _convert(row, sample_id, key_version)
    except RowError as exc:
        subject = ""
        try:
            subject = split_id(sample_id)[1]
        except ValueError:
            pass
        meta = {"subject": subject, "discipline": DISCIPLINE_OF.get(subject, "")}
        return Sample(id=sample_id, text=str(row.get("question") or ""), answer_type="choice",
                      metadata=meta, error=str(exc))  # fmt: skip


def _convert(row: Mapping[str, Any], sample_id: str, key_version: str) -> Sample:
    try:
        _, subject, _ = split_id(sample_id)
    except ValueError as exc:
        raise RowError(sample_id, "id", str(exc)) from None
    if subject not in DISCIPLINE_OF:
        raise RowError(sample_id, "id", f"unknown MMMU subject {subject!r}")
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise RowError(sample_id, "question", "empty or missing")
    question_type = row.get("question_type")
    if question_type == "multiple-choice":
        answer_type = "choice"
    elif question_type in ("open", "short-answer"):
        answer_type = "open"
    else:
        raise RowError(sample_id, "question_type", f"expected 'multiple-choice' or 'open', got {question_type!r}")
    options = parse_literal_list(row.get("options", "[]"), sample_id, "options")
    if answer_type == "choice" and not options:
        raise RowError(sample_id, "options", "a multiple-choice item needs at least one option")
    if answer_type == "open":
        options = []
    letters = tuple(chr(ord("A") + i) for i in range(len(options)))
    gold = pinned_gold(key_version, sample_id, _gold(row, sample_id, answer_type, letters))
    images = {n: m for n in range(1, MAX_IMAGES + 1) if (m := _image(row, n)) is not None}
    return Sample(
        id=sample_id,
        text=question,
        answer_type=answer_type,
        choices=tuple(options),
        gold=gold,
        media=tuple(images[n] for n in sorted(images)),
        metadata={
            "subject": subject,
            "discipline": DISCIPLINE_OF[subject],
            "topic_difficulty": str(row.get("topic_difficulty") or ""),
            "subfield": str(row.get("subfield") or ""),
            "img_type": str(row.get("img_type") or ""),
        },
    )
