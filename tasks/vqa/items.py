"""The on-disk format of a user's own question-answering set, and its reader.

A set is a folder with ``questions.jsonl`` (one JSON object per line) and the media files it names::

    my_set/
      questions.jsonl
      images/0001.jpg
      audios/0001.wav

Fields of a line:

- ``id`` (string or integer, unique) and ``question`` (string): required.
- ``image`` / ``audio``: a path or a list of paths, relative to the folder; a path that leads outside it is
  refused unless the definition sets ``media_root:`` (then paths are relative to, and must stay inside, that
  folder). The media are shown after the question, images before audio, each list in order.
- ``choices``: a list of 2 to 26 option texts makes the item multiple choice (options lettered A, B, …).
- ``answer``: for multiple choice the option letter or the option's text; for open questions a string or a
  list of strings, every one acceptable (VQA soft accuracy expects the annotators' answers, usually 10).
  Leave it out where the split withholds answers.
- ``hint`` (string): context shown before the question. ``category``, ``subcategory``, ``question_type``
  (strings): breakdowns in the results.

A line that breaks these rules becomes an error record naming the file, line, id and field; the rest of the
set still runs.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from s3eval.types import letters_for

QUESTIONS_FILE = "questions.jsonl"
KNOWN_FIELDS = {"id", "question", "image", "audio", "choices", "answer", "hint", "category", "subcategory",
                "question_type"}  # fmt: skip


@dataclass(frozen=True)
class Item:
    id: str
    question: str
    images: tuple[Path, ...] = ()
    audios: tuple[Path, ...] = ()
    choices: tuple[str, ...] = ()
    answer: Union[str, tuple[str, ...], None] = None  # a letter for multiple choice
    hint: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)  # category, subcategory, question_type
    error: Optional[str] = None


class ItemError(ValueError):
    pass


def _paths(value: Any, key: str, root: Path) -> tuple[Path, ...]:
    if value is None:
        return ()
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) and v for v in values):
        raise ItemError(f"`{key}` must be a path or a list of paths")
    return tuple(media_path(v, key, root) for v in values)


@functools.lru_cache(maxsize=65536)
def _resolved(root: Path, value: str) -> tuple[Path, Path]:
    # Resolving is most of the time to read a large image set (bench/scale.py), and items share media.
    return (root / value).resolve(), root.resolve()


def media_path(value: str, key: str, root: Path) -> Path:
    """``value`` resolved under ``root``; a path that leaves ``root`` (``../``, an absolute path elsewhere, a link
    out) is refused: a set's lines must not read arbitrary files. ``media_root:`` in the definition sets ``root``."""
    path, resolved_root = _resolved(root, value)
    if not path.is_relative_to(resolved_root):
        raise ItemError(f"`{key}` path {value!r} leaves the media folder {root}; move the file inside it or set "
                        f"`media_root:` in the task definition to a folder that holds it")  # fmt: skip
    if not path.is_file():
        raise ItemError(f"`{key}` file {value!r} not found under {root}")
    return path


def _answer(row: Mapping[str, Any], choices: tuple[str, ...]) -> Union[str, tuple[str, ...], None]:
    answer = row.get("answer")
    if answer is None:
        return None
    if choices:
        letters = letters_for(len(choices))
        if isinstance(answer, str) and answer.strip() in letters:
            return answer.strip()
        if isinstance(answer, str) and answer in choices:
            return letters[choices.index(answer)]
        raise ItemError(f"`answer` {answer!r} is neither an option letter ({', '.join(letters)}) nor an option text")
    if isinstance(answer, (str, int, float)) and not isinstance(answer, bool):
        return str(answer)
    if isinstance(answer, list) and answer and all(isinstance(a, (str, int, float)) for a in answer):
        return tuple(str(a) for a in answer)
    raise ItemError("`answer` must be a string or a non-empty list of strings")


def parse_row(row: Any, root: Path) -> Item:
    if not isinstance(row, dict):
        raise ItemError("a line must be a JSON object")
    if not isinstance(row.get("id"), (str, int)) or isinstance(row.get("id"), bool) or str(row["id"]) == "":
        raise ItemError("`id` (string or integer) is missing")
    unknown = sorted(set(row) - KNOWN_FIELDS)
    if unknown:
        raise ItemError(f"unknown field(s) {unknown}; known: {sorted(KNOWN_FIELDS)}")
    if not isinstance(row.get("question"), str) or not row["question"].strip():
        raise ItemError("`question` (non-empty string) is missing")
    choices = row.get("choices") or []
    if not isinstance(choices, list) or not all(isinstance(c, (str, int, float)) for c in choices):
        raise ItemError("`choices` must be a list of option texts")
    if choices and not 2 <= len(choices) <= 26:
        raise ItemError(f"`choices` must have 2 to 26 options, has {len(choices)}")
    options = tuple(str(c) for c in choices)
    labels = {}
    for key in ("category", "subcategory", "question_type", "hint"):
        if row.get(key) is not None and not isinstance(row[key], str):
            raise ItemError(f"`{key}` must be a string")
        if key != "hint" and row.get(key):
            labels[key] = row[key]
    return Item(
        id=str(row["id"]), question=row["question"], images=_paths(row.get("image"), "image", root),
        audios=_paths(row.get("audio"), "audio", root), choices=options, answer=_answer(row, options),
        hint=row.get("hint") or "", labels=labels,
    )  # fmt: skip


def read_rows(path: Path) -> list[tuple[int, Any]]:
    """(line number, parsed JSON or the ItemError) for every non-blank line."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ItemError(f"cannot read {path}: {exc.strerror or exc}") from exc
    out = []
    for number, raw in enumerate(data.splitlines(), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            out.append((number, ItemError(f"not valid UTF-8 (byte {raw[exc.start]:#04x} at column {exc.start + 1}); "
                                          f"save the file as UTF-8")))  # fmt: skip
            continue
        if line.strip():
            try:
                out.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                out.append((number, ItemError(f"not valid JSON ({exc.msg})")))
    return out


def read_items(path: Path, rows: Optional[list[tuple[int, Any]]] = None, media_root: Optional[Path] = None) -> list[Item]:
    """The items of a questions file in file order (``rows``: already read and converted); a bad line becomes an
    item with ``error`` set. Media paths are relative to ``media_root`` (default: the file's folder)."""
    root = media_root or path.parent
    items: list[Item] = []
    seen: set[str] = set()
    for number, row in rows if rows is not None else read_rows(path):
        row_id = str(row.get("id")) if isinstance(row, dict) and row.get("id") is not None else f"line{number}"
        where = f"{path}:{number} (id {row_id})"
        try:
            if isinstance(row, ItemError):
                raise row
            item = parse_row(row, root)
            if item.id in seen:
                raise ItemError(f"id {item.id!r} is used twice; ids must be unique")
        except ItemError as exc:
            item = Item(id=row_id if row_id not in seen else f"{row_id}@line{number}", question="", error=f"{where}: {exc}")
        seen.add(item.id)
        items.append(item)
    return items
