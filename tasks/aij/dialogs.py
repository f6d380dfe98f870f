"""The AI Journey 2023 (FusionBrain Challenge 3.0) dialog format, with the references this harness needs.

A dialog set is a folder with ``dialogs.jsonl`` and the media, under ``images/`` and ``audios/`` as in the
contest. One dialog per line::

    {"id": "d1",
     "dialog": [[{"type": "text", "content": "What animal is this?"}, {"type": "image", "content": "00001.png"}],
                [{"type": "text", "content": "And what does it sound like?"}, {"type": "audio", "content": "00000.wav"}]],
     "answers": ["A cat.", ["It meows.", "A meow."]],
     "distractors": [["A dog.", "A horse."], ["It barks.", "It neighs."]]}

- ``dialog``: the contest's list of replicas, each a list of ``{type: text|image|audio, content}`` parts in order.
  A media ``content`` is a file name in ``images/`` or ``audios/`` (a path with a slash is relative to the folder).
- ``answers``: per replica the reference answer, or a list of references (METEOR takes the best).
- ``distractors`` (optional): per replica, wrong answers for the likelihood proxy; without them the task draws
  other replicas' references.

The dialog's type follows from the media of all its replicas: text, image, audio or image+audio.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from s3eval.types import Media, Part

DIALOGS_FILE = "dialogs.jsonl"
MEDIA_FOLDERS = {"image": "images", "audio": "audios"}
KNOWN_FIELDS = {"id", "dialog", "answers", "distractors"}


class DialogError(ValueError):
    pass


@dataclass(frozen=True)
class Dialog:
    id: str
    replicas: tuple[tuple[Part, ...], ...]
    answers: tuple[tuple[str, ...], ...]
    distractors: tuple[tuple[str, ...], ...]  # empty per replica where none are given
    error: Optional[str] = None

    @property
    def type(self) -> str:
        kinds = {p.kind for replica in self.replicas for p in replica if isinstance(p, Media)}
        return "+".join(k for k in ("image", "audio") if k in kinds) or "text"


def _texts(value: Any, what: str) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v.strip() for v in values):
        raise DialogError(f"{what} must be a non-empty string or a list of them")
    return tuple(values)


def _part(part: Any, root: Path, where: str, counter: dict[str, int]) -> Part:
    if not isinstance(part, dict) or set(part) != {"type", "content"} or not isinstance(part["content"], str):
        raise DialogError(f"{where}: a part is {{\"type\": …, \"content\": …}}, got {part!r}")
    kind = part["type"]
    if kind == "text":
        return part["content"]
    if kind not in MEDIA_FOLDERS:
        raise DialogError(f"{where}: part type {kind!r} is not text, image or audio")
    name = part["content"]
    path = (root / name if "/" in name else root / MEDIA_FOLDERS[kind] / name).resolve()
    if not path.is_relative_to(root.resolve()):
        raise DialogError(f"{where}: {kind} path {name!r} leaves the set folder {root}; keep media inside it")
    if not path.is_file():
        raise DialogError(f"{where}: {kind} file {name!r} not found (looked for {path})")
    counter[kind] = counter.get(kind, 0) + 1
    return Media(kind, f"{kind}_{counter[kind]}", path=str(path))


def parse_dialog(row: Any, root: Path) -> Dialog:
    if not isinstance(row, dict) or not isinstance(row.get("id"), (str, int)) or str(row.get("id")) == "":
        raise DialogError("a line is an object with an `id`")
    unknown = sorted(set(row) - KNOWN_FIELDS)
    if unknown:
        raise DialogError(f"unknown field(s) {unknown}; known: {sorted(KNOWN_FIELDS)}")
    replicas_raw, answers_raw = row.get("dialog"), row.get("answers")
    if not isinstance(replicas_raw, list) or not replicas_raw or not all(isinstance(r, list) and r for r in replicas_raw):
        raise DialogError("`dialog` must be a non-empty list of replicas, each a non-empty list of parts")
    if not isinstance(answers_raw, list) or len(answers_raw) != len(replicas_raw):
        raise DialogError(f"`answers` must list one reference (or list of references) per replica "
                          f"({len(replicas_raw)} replicas)")  # fmt: skip
    distractors_raw = row.get("distractors") or [[] for _ in replicas_raw]
    if not isinstance(distractors_raw, list) or len(distractors_raw) != len(replicas_raw):
        raise DialogError(f"`distractors` must hold one list per replica ({len(replicas_raw)} replicas)")
    counter: dict[str, int] = {}
    replicas = tuple(
        tuple(_part(p, root, f"replica {i}", counter) for p in replica) for i, replica in enumerate(replicas_raw, 1)
    )
    answers = tuple(_texts(a, f"answer of replica {i}") for i, a in enumerate(answers_raw, 1))
    distractors = tuple(() if not d else _texts(d, f"distractors of replica {i}") for i, d in enumerate(distractors_raw, 1))
    return Dialog(str(row["id"]), replicas, answers, distractors)


def read_dialogs(path: Path) -> list[Dialog]:
    """Dialogs in file order; a bad line becomes a dialog with ``error`` set (naming file, line and problem)."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise DialogError(f"cannot read {path}: {exc.strerror or exc}") from exc
    out, seen = [], set()
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        row_id = f"line{number}"
        try:
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DialogError(f"not valid UTF-8 (byte {raw[exc.start]:#04x} at column {exc.start + 1}); "
                                  f"save the file as UTF-8") from exc  # fmt: skip
            row = json.loads(line)
            row_id = str(row.get("id", row_id)) if isinstance(row, dict) else row_id
            dialog = parse_dialog(row, path.parent)
            if dialog.id in seen:
                raise DialogError(f"id {dialog.id!r} is used twice")
        except (json.JSONDecodeError, DialogError) as exc:
            reason = f"not valid JSON ({exc.msg})" if isinstance(exc, json.JSONDecodeError) else str(exc)
            row_id = row_id if row_id not in seen else f"{row_id}@line{number}"
            dialog = Dialog(row_id, (), (), (), error=f"{path}:{number} (dialog {row_id}): {reason}")
        seen.add(dialog.id)
        out.append(dialog)
    return out
