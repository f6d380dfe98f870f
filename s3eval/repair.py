"""``s3eval repair``: make a run's JSONL files or a leaderboard readable again without losing a byte.

Bad lines (not UTF-8, not JSON, not an object; for the leaderboard: a wrong field count or a number column that is
not a number) are moved to ``<file>.bad`` and a torn last line to ``<file>.torn`` (both appended to, never
overwritten); every good line is kept, in order. A JSONL line that holds a torn record with a whole record glued
after it (a disk full for a moment, with an older s3eval) keeps the whole record; only the torn bytes go to
``.bad``. The repaired file replaces the old one atomically, under the file's lock (and, for a run directory, the
run lock: a running evaluation is never repaired under its feet)."""

from __future__ import annotations

import csv
import fnmatch
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pandas as pd

from . import leaderboard, run_lock
from .safe_output import read_cell
from .storage import (
    RUN_FILE_PATTERNS, StorageError, append_to, atomic_write_bytes, decode_utf8, is_json_object, locked, read_fd,
)


@dataclass
class Repaired:
    """What ``repair`` did to one file."""

    path: Path
    kept: int = 0  # good lines (rows) kept, header included
    bad: list[int] = field(default_factory=list)  # line numbers moved to <file>.bad
    salvaged: list[int] = field(default_factory=list)  # lines whose glued whole record was kept
    torn_bytes: int = 0  # an unterminated last line moved to <file>.torn
    unit: str = "line"

    @property
    def changed(self) -> bool:
        return bool(self.bad or self.salvaged or self.torn_bytes)

    def describe(self) -> str:
        """One line: ``PATH: kept 18 lines; moved 1 bad line (19) to responses.jsonl.bad; …``."""
        if not self.changed:
            return f"{self.path}: nothing to repair ({_count(self.kept, self.unit)})"
        parts = [f"kept {_count(self.kept, self.unit)}"]
        if self.bad:
            numbers = ", ".join(map(str, self.bad))
            parts.append(f"moved {_count(len(self.bad), 'bad ' + self.unit)} ({numbers}) to {self.path.name}.bad")
        if self.salvaged:
            numbers = ", ".join(map(str, self.salvaged))
            parts.append(f"kept the whole record glued after torn bytes on {_count(len(self.salvaged), 'line')} "
                         f"({numbers}), the torn bytes moved to {self.path.name}.bad")  # fmt: skip
        if self.torn_bytes:
            parts.append(f"moved a torn last {self.unit} ({self.torn_bytes} bytes) to {self.path.name}.torn")
        return f"{self.path}: " + "; ".join(parts)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _split_tail(data: bytes) -> tuple[bytes, bytes]:
    """(whole lines, unterminated last line)."""
    if not data or data.endswith(b"\n"):
        return data, b""
    keep = data.rfind(b"\n") + 1
    return data[:keep], data[keep:]


def _glued(raw: bytes) -> Optional[int]:
    """Where a whole JSON object starts that runs to the end of ``raw`` (a record glued after torn bytes)."""
    start = raw.find(b"{", 1)
    while start > 0:
        if is_json_object(raw[start:]):
            return start
        start = raw.find(b"{", start + 1)
    return None


def _write_back(fd: int, path: Path, report: Repaired, lines: list[bytes], bad: list[bytes], tail: bytes) -> None:
    """Save what goes aside first (a crash then duplicates bytes, never loses them), then replace the file."""
    if bad:
        append_to(path.with_name(path.name + ".bad"), b"".join(line + b"\n" for line in bad))
    if tail:
        append_to(path.with_name(path.name + ".torn"), tail + b"\n")
    atomic_write_bytes(path, b"".join(line + b"\n" for line in lines), mode=os.fstat(fd).st_mode & 0o7777)


def repair_jsonl(path: Path) -> Repaired:
    """Repair one JSONL file (see the module docstring)."""
    path = Path(path)
    report = Repaired(path)
    with locked(path, action="repair") as fd:
        body, tail = _split_tail(read_fd(fd))
        completed = bool(tail) and is_json_object(tail)
        if completed:  # a whole record, only its newline missing
            body, tail = body + tail + b"\n", b""
        report.torn_bytes = len(tail)
        kept, aside = [], []
        for number, raw in enumerate(body.split(b"\n")[:-1], start=1):
            if not raw.strip() or is_json_object(raw):
                kept.append(raw)
                continue
            start = _glued(raw)
            if start is None:
                aside.append(raw)
                report.bad.append(number)
                continue
            head = raw[:start]
            (kept if is_json_object(head) else aside).append(head)
            kept.append(raw[start:])
            report.salvaged.append(number)
        report.kept = len(kept)
        if report.changed or completed:
            _write_back(fd, path, report, kept, aside, tail)
    return report


def _is_run_file(path: Path) -> bool:
    return any(fnmatch.fnmatchcase(path.name, pattern) for pattern in RUN_FILE_PATTERNS)


def repair_path(path: Path) -> list[Repaired]:
    """``s3eval repair PATH``: a run directory (its ``responses*.jsonl`` and ``samples_*.jsonl``, under the run
    lock) or one JSONL file."""
    path = Path(path)
    if path.is_dir():
        files = sorted(f for pattern in RUN_FILE_PATTERNS for f in path.glob(pattern))
        if not files:
            raise StorageError(f"{path}: no responses*.jsonl or samples_*.jsonl to repair (is it a run directory?)")
        with run_lock.hold(path):
            return [repair_jsonl(f) for f in files]
    if path.is_file():
        if _is_run_file(path) and run_lock.lock_path(path.parent).exists():
            with run_lock.hold(path.parent):
                return [repair_jsonl(path)]
        return [repair_jsonl(path)]
    raise StorageError(f"{path}: no such file or folder")


def _row_problem(record: bytes, width: int) -> Optional[str]:
    """Why one leaderboard record (one or more physical lines) is not a good row of ``width`` fields; None if it
    is."""
    try:
        text = record.decode("utf-8")
    except UnicodeDecodeError:
        return "not valid UTF-8"
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        return str(exc)
    if len(rows) != 1 or len(rows[0]) != width:
        return "wrong number of fields"
    columns = leaderboard.COLUMNS[:width]
    for column, cell in zip(columns, rows[0]):
        if not cell or (column not in leaderboard.INTEGER_COLUMNS and column not in leaderboard.NUMBER_COLUMNS):
            continue
        value = pd.to_numeric(read_cell(cell), errors="coerce")  # as `leaderboard.read` converts it
        if pd.isna(value):
            return f"column {column!r} is not a number"
        if column in leaderboard.INTEGER_COLUMNS and not (math.isfinite(value) and value == round(value)):
            return f"column {column!r} is not a whole number"
    return None


def repair_leaderboard(path: Path) -> Repaired:
    """``s3eval repair --leaderboard PATH`` (see the module docstring). A row whose quoted field spans lines is one
    row; where such a row is broken, its first line is moved aside and reading resumes on the next line."""
    path = Path(path)
    if not path.is_file():
        raise StorageError(f"no leaderboard at {path}")
    report = Repaired(path, unit="row")
    with locked(path, action="repair") as fd:
        body, tail = _split_tail(read_fd(fd))
        report.torn_bytes = len(tail)
        lines = body.split(b"\n")[:-1]
        if not lines:
            raise StorageError(f"{path}: empty, nothing to repair")
        first = decode_utf8(lines[0], path)
        header = tuple(next(csv.reader([first]), []))
        if header not in (leaderboard.COLUMNS, *leaderboard._OLDER_COLUMNS):
            raise StorageError(f"{path}:1: not the s3eval leaderboard header; not repairing it")
        width = len(header)
        kept, aside, index = [lines[0]], [], 1
        while index < len(lines):
            end, odd = index, lines[index].count(b'"') % 2
            while odd and end + 1 < len(lines):  # a quoted field goes on to the next line
                end += 1
                odd ^= lines[end].count(b'"') % 2
            record = b"\n".join(lines[index : end + 1])
            if not record.strip() or (not odd and _row_problem(record, width) is None):
                kept.append(record)
                index = end + 1
            else:
                aside.append(lines[index])
                report.bad.append(index + 1)
                index += 1
        report.kept = len(kept)
        if report.changed:
            _write_back(fd, path, report, kept, aside, tail)
    return report
