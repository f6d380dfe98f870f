"""The leaderboard CSV: one row per (run, task), appended under an exclusive lock so rows never tear, also
when several processes append at once."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import pandas as pd

from .errors import S3evalError
from .media_ablation import KEEP
from .results import TaskResult
from .safe_output import read_cell, spreadsheet_cell
from .storage import (
    append_bytes, atomic_write_text, csv_complete_part, decode_utf8, leaderboard_repair_hint, locked,
    read_csv_rows_bytes, read_fd,
)

COLUMNS = (
    "timestamp", "run_id", "model", "checkpoint", "checkpoint_hash", "task", "split", "answer_key",
    "prompt_mode", "parser", "parser_version", "n", "n_fallback", "n_error", "n_missing", "accuracy",
    "strict_accuracy", "expected_accuracy", "accuracy_valid", "group_kind", "group_accuracy", "config_hash",
    "git_commit", "run_dir", "metric", "score", "metric_kind", "unit", "n_items", "ci_low", "ci_high", "ci_method",
    "media",
)  # fmt: skip
# Older leaderboards have a prefix of the columns: v1 before the task headline (metric, score), v2 before the
# result model (metric_kind … ci_method), v3 before media ablation (media; their rows all sent the media as given).
# They are read as they are and upgraded in place on the next append.
_V1_COLUMNS = COLUMNS[:24]
_V2_COLUMNS = COLUMNS[:26]
_V3_COLUMNS = COLUMNS[:32]
_OLDER_COLUMNS = (_V1_COLUMNS, _V2_COLUMNS, _V3_COLUMNS)
# Columns read as numbers (``read``; ``s3eval repair`` checks them the same way); the rest are text.
INTEGER_COLUMNS = ("n", "n_fallback", "n_error", "n_missing", "n_items")
NUMBER_COLUMNS = ("accuracy", "strict_accuracy", "expected_accuracy", "accuracy_valid", "score", "ci_low", "ci_high")


class LeaderboardError(S3evalError, ValueError):
    pass


def _encode(row: Mapping[str, object]) -> str:
    """One CSV row; text cells spreadsheet-safe (``safe_output.spreadsheet_cell``: ``=cmd`` is written ``'=cmd``,
    and ``read`` gives back ``=cmd``)."""
    unknown = set(row) - set(COLUMNS)
    if unknown:
        raise LeaderboardError(f"unknown leaderboard columns {sorted(unknown)}")
    buffer = io.StringIO()
    # The writer quotes a cell holding a character of its line terminator: "\r\n" makes it quote a lone "\r"
    # too (Python 3.11 does not otherwise); the row itself then ends with "\n".
    csv.writer(buffer, lineterminator="\r\n").writerow(
        ["" if row.get(c) is None else spreadsheet_cell(row.get(c)) for c in COLUMNS]
    )
    return buffer.getvalue()[:-2] + "\n"


def append_rows(path: Path, rows: Sequence[Mapping[str, object]], unique_on: Sequence[str] = ()) -> None:
    """Append rows whole or not at all, under the file's exclusive lock; with ``unique_on``, rows whose values in
    those columns are already present are skipped. A torn last row (a writer killed mid-append) is first moved
    aside to ``<file>.torn`` (with a notice), so it never swallows the new rows; a full disk leaves the file as it
    was and raises StorageError (``storage.append_bytes``). An older leaderboard is upgraded first (the original
    kept as ``<file>.v<version>.bak``)."""
    path = Path(path)
    for row in rows:
        _encode(row)  # unknown columns are refused before the file is touched
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LeaderboardError(f"cannot write leaderboard {path}: {exc.strerror or exc}") from exc
    hint = leaderboard_repair_hint(path)
    with locked(path, create=True, action="append to") as fd:
        text = decode_utf8(csv_complete_part(fd, path, _read_all(fd), hint), path, hint)
        header = _header(text)
        if text and header in _OLDER_COLUMNS:
            _upgrade(fd, path, text)
            upgraded = True
        else:
            upgraded = False
            if text and header != COLUMNS:
                raise LeaderboardError(f"{path}: line 1 is not the s3eval leaderboard header; not appending to it")
            if unique_on and text:
                rows = _not_present(text, rows, unique_on)
            payload = "".join(_encode(row) for row in rows)
            if not payload:
                return
            if not text:
                payload = ",".join(COLUMNS) + "\n" + payload
            append_bytes(fd, payload.encode("utf-8"), path)
    if upgraded:  # the upgraded file replaced the one we held: append to it under its own lock
        append_rows(path, rows, unique_on)


def _read_all(fd: int) -> bytes:
    return read_fd(fd)


def _header(text: str) -> tuple[str, ...]:
    return tuple(next(csv.reader([text.split("\n", 1)[0]]), []))


def _upgrade(fd: int, path: Path, text: str) -> None:
    """Replace an older leaderboard (``text``, ``fd`` held under its lock) with one in the current columns, the new
    columns left empty; the original is first saved beside it as ``<file>.v<version>.bak`` (v1: before the
    headline columns, v2: before the result model, v3: before media ablation). The new file is renamed into place:
    writers waiting on the old file's lock open the new one."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    version = _OLDER_COLUMNS.index(tuple(rows[0])) + 1
    atomic_write_text(path.with_name(f"{path.name}.v{version}.bak"), text)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows[1:]:
        if row:
            writer.writerow(row + [""] * (len(COLUMNS) - len(row)))
    atomic_write_text(path, buffer.getvalue(), mode=os.fstat(fd).st_mode & 0o7777)


def _not_present(text: str, rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> list:
    present = set()
    for line in csv.DictReader(io.StringIO(text, newline="")):
        present.add(tuple(read_cell(line.get(c) or "") for c in columns))
    return [row for row in rows if tuple("" if row.get(c) is None else str(row.get(c)) for c in columns) not in present]


def read(path: Path) -> pd.DataFrame:
    """The leaderboard as a table. A torn last row (a writer killed mid-append) is moved aside to ``<file>.torn``
    with a one-line notice; a malformed row elsewhere (wrong field count, a number column that is not a number,
    bytes that are not UTF-8) is an error naming file:line and `s3eval repair --leaderboard PATH`. Cells are read
    back as they were given (``safe_output.read_cell`` undoes the spreadsheet-safe ``'``)."""
    path = Path(path)
    if not path.is_file():
        raise LeaderboardError(f"no leaderboard at {path}: run `s3eval run` first, or pass --leaderboard PATH")
    hint = leaderboard_repair_hint(path)
    reader = csv.reader(io.StringIO(decode_utf8(read_csv_rows_bytes(path, hint), path, hint), newline=""))
    rows, lines, line = [], [], 1
    try:
        for row in reader:
            rows.append(row)
            lines.append(line)
            line = reader.line_num + 1
    except csv.Error as exc:
        raise LeaderboardError(f"{path}:{reader.line_num}: {exc}{hint}") from exc
    if not rows or tuple(rows[0]) not in (COLUMNS, *_OLDER_COLUMNS):
        raise LeaderboardError(f"{path}: line 1 is not the s3eval leaderboard header")
    width = len(rows[0])
    good, good_lines = [], []
    for number, row in zip(lines[1:], rows[1:]):
        if not row:
            continue
        if len(row) != width:
            raise LeaderboardError(f"{path}:{number}: expected {width} fields, found {len(row)}{hint}")
        good.append([read_cell(cell) for cell in row] + [""] * (len(COLUMNS) - width))
        good_lines.append(number)
    frame = pd.DataFrame(good, columns=list(COLUMNS))
    frame.attrs["lines"] = good_lines  # where each row starts in the file, for errors
    for column in INTEGER_COLUMNS:
        frame[column] = _numeric(frame, column, path, integer=True).astype("Int64")
    for column in NUMBER_COLUMNS:
        frame[column] = _numeric(frame, column, path)
    del frame.attrs["lines"]
    return frame


def _numeric(frame: pd.DataFrame, column: str, path: Path, integer: bool = False) -> pd.Series:
    values = pd.to_numeric(frame[column].replace("", None), errors="coerce")
    bad = values.isna() & frame[column].ne("")
    what = "a number"
    if integer and not bad.any():
        bad = values.notna() & ((values != values.round()) | values.abs().eq(float("inf")))
        what = "a whole number"
    if bad.any():
        position = int(bad.to_numpy().argmax())
        lines = frame.attrs.get("lines")
        line = lines[position] if lines and position < len(lines) else position + 2
        value, hint = frame[column].iloc[position], leaderboard_repair_hint(path)
        raise LeaderboardError(f"{path}:{line}: column {column!r} is not {what}: {value!r}{hint}")
    return values


def row_for(run: Mapping[str, Any], result: TaskResult, run_dir: Path) -> dict[str, Any]:
    """The leaderboard row of one scored task: ``run`` is the run's ``results.json`` (identity, hashes);
    everything about the task is read from its result. ``n`` counts the headline's units (questions of a circular
    set, dialogs of a dialog set); ``n_items`` the scored records."""
    overall = result.summary["overall"]
    model = run["model"]
    groups = result.summary["groups"].get(result.leaderboard_group, {}) if result.leaderboard_group else {}
    headline, interval = result.headline, result.headline.interval
    return {
        "timestamp": run["timestamp"], "run_id": run["run_id"], "model": model["name"],
        "checkpoint": model.get("checkpoint"), "checkpoint_hash": model.get("checkpoint_hash"), "task": result.task,
        "split": result.settings.get("split"), "answer_key": result.settings.get("answer_key"),
        "prompt_mode": result.settings.get("prompt_mode"), "parser": run["parser"]["name"],
        "parser_version": run["parser"]["version"], "n": headline.n_units, "n_fallback": overall["n_fallback"],
        "n_error": overall["n_error"], "n_missing": overall["n_missing"], "accuracy": overall["accuracy"],
        "strict_accuracy": overall["strict_accuracy"], "expected_accuracy": overall["expected_accuracy"],
        "accuracy_valid": overall["accuracy_valid"], "group_kind": result.leaderboard_group,
        "group_accuracy": json.dumps({k: v["accuracy"] for k, v in groups.items()}, sort_keys=True) if groups else None,
        "config_hash": run["config_hash"], "git_commit": run["git_commit"], "run_dir": str(run_dir),
        "metric": headline.metric, "score": headline.score, "metric_kind": headline.kind, "unit": headline.unit,
        "n_items": overall["n"], "ci_low": interval.low if interval else None,
        "ci_high": interval.high if interval else None, "ci_method": interval.method if interval else None,
        "media": run.get("config", {}).get("media") or KEEP,
    }  # fmt: skip


COMPACT = ["task", "run_id", "model", "metric", "score", "ci95", "n", "unit", "n_fallback", "n_error", "timestamp"]
WIDE = ["task", "run_id", "model", "checkpoint", "answer_key", "prompt_mode", "media", "metric", "score", "ci95", "n",
        "unit", "n_items", "accuracy", "strict_accuracy", "n_fallback", "n_error", "n_missing", "metric_kind",
        "ci_method", "config_hash", "timestamp"]  # fmt: skip
FOOTNOTE = ("score: each task's headline (accuracy, circular accuracy over questions, dialog integral); n counts its "
            "units. ci95: Wilson for right/wrong units, bootstrap over units for graded means; blank for weighted "
            "scores (the dialog integral) and for rows written before s3eval recorded intervals.")  # fmt: skip
MEDIA_FOOTNOTE = ("media: the run's media ablation (s3eval run --media): keep sends the media as given, withhold none, "
                  "noise seeded noise, shuffle another item's.")  # fmt: skip


def format_table(frame: pd.DataFrame, task: Optional[str] = None, model: Optional[str] = None,
                 markdown: bool = False, wide: bool = False) -> str:  # fmt: skip
    """Rows per task, best headline score first, with the interval recorded for each row; compact (run id, model,
    headline) unless ``wide``; as text or as a markdown table (cells escaped)."""
    if task:
        frame = frame[frame["task"] == task]
    if model:
        frame = frame[frame["model"] == model]
    if frame.empty:
        return "(no rows)"
    shown = frame.sort_values(["task", "score"], ascending=[True, False], kind="stable", na_position="last").copy()
    shown["ci95"] = [
        "" if pd.isna(low) or pd.isna(high) else f"{100 * low:.1f}–{100 * high:.1f}"
        for low, high in zip(shown["ci_low"], shown["ci_high"])
    ]
    for column in ("accuracy", "strict_accuracy", "score"):
        shown[column] = (shown[column] * 100).map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
    shown["media"] = [m or KEEP for m in shown["media"]]  # rows written before the column all kept their media
    ablated = any(m != KEEP for m in shown["media"])
    if wide:
        columns = WIDE
    else:  # the compact view names the mode only where a row ablated its media
        columns = COMPACT[:3] + ["media"] + COMPACT[3:] if ablated else COMPACT
    shown = shown[columns].astype(object)
    shown = shown.where(shown.notna(), "")
    footnote = FOOTNOTE + ("\n" + MEDIA_FOOTNOTE if ablated else "")
    if markdown:
        from .safe_output import escape_markdown

        columns = list(shown.columns)
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(escape_markdown(str(v)) for v in row) + " |" for row in shown.itertuples(index=False)]
        return "\n".join(lines) + "\n\n" + footnote
    return shown.to_string(index=False) + "\n" + footnote
