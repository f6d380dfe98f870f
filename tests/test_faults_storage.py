"""Faults at the storage layer (issue 13): a disk that fills up mid-append (short writes, ENOSPC), torn last lines,
corrupt lines in the middle and `s3eval repair`, bytes that are not UTF-8, formula injection in CSV output, the
run lock, and many processes appending at once."""

import csv
import errno
import io
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys

import pytest

from s3eval import compare_report, leaderboard, run_lock
from s3eval.cli import main
from s3eval.errors import S3evalError
from s3eval.leaderboard import COLUMNS
from s3eval.response_log import ResponseLog
from s3eval.run_lock import RunLockedError
from s3eval.safe_output import escape_markdown, read_cell, spreadsheet_cell
from s3eval.storage import StorageError, append_lines, atomic_write_text, read_json, read_jsonl
from s3eval.types import Response

from conftest import ROOT

REAL_WRITE = os.write
ENOSPC = "No space left on device"


class FlakyWrite:
    """``os.write`` whose call number n (from 1) does ``plan[n]``: ``ok``, ``short`` (writes 5 bytes), ``zero``
    (writes nothing, no error) or ``enospc`` (raises); later calls are ``ok``."""

    def __init__(self, plan):
        self.plan, self.calls = plan, 0

    def __call__(self, fd, data):
        self.calls += 1
        action = self.plan.get(self.calls, "ok")
        if action == "enospc":
            raise OSError(errno.ENOSPC, ENOSPC)
        if action == "zero":
            return 0
        return REAL_WRITE(fd, bytes(data[:5]) if action == "short" else data)


FAILING_WRITES = [
    pytest.param({1: "enospc"}, id="enospc-at-once"),
    pytest.param({1: "short", 2: "enospc"}, id="short-then-enospc"),
    pytest.param({1: "short", 2: "short", 3: "short", 4: "enospc"}, id="three-short-then-enospc"),
    pytest.param({1: "short", 2: "zero"}, id="short-then-no-progress"),
]
SHORT_WRITES = [
    pytest.param({1: "short"}, id="one-short"),
    pytest.param({1: "short", 2: "short", 3: "short"}, id="three-short"),
]


def responses(*keys):
    return [(key, "task", f"id-{key}", Response(text=f"answer {key}")) for key in keys]


def log_line(key):
    return json.dumps({"key": key, "task": "task", "sample_id": f"id-{key}", "response": f"answer {key}",
                       "error": None, "error_kind": None, "seconds": 0.0})  # fmt: skip


def row(model, **extra):
    return {"task": "mmmu_val", "model": model, "n": 10, "n_fallback": 0, "n_error": 0, "n_missing": 0,
            "accuracy": 0.5, **extra}  # fmt: skip


def appended_message(path):
    return f"cannot append to {path}: {ENOSPC}; nothing was lost: the file is as before the append"


def torn_notice(path, n, what="line"):
    return f"s3eval: {path}: moved a torn last {what} ({n} bytes, left by an interrupted write) to {path}.torn\n"


def lb_hint(path):
    return f"; run `s3eval repair --leaderboard {path}` to move bad rows aside to {path.name}.bad"


def test_storage_errors_are_user_errors():
    assert issubclass(StorageError, S3evalError) and issubclass(StorageError, OSError)
    assert issubclass(RunLockedError, S3evalError)


# --- a full disk during an append ---------------------------------------------------------------------------------


@pytest.mark.parametrize("plan", FAILING_WRITES)
def test_response_log_append_on_a_full_disk_changes_nothing(tmp_path, monkeypatch, plan):
    log = ResponseLog(tmp_path)
    log.append(responses("k1", "k2"))
    before = log.path.read_bytes()
    monkeypatch.setattr(os, "write", FlakyWrite(plan))
    with pytest.raises(StorageError) as caught:
        log.append(responses("k3", "k4"))
    monkeypatch.setattr(os, "write", REAL_WRITE)
    assert str(caught.value) == appended_message(log.path)
    assert log.path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["responses.jsonl"]
    again = ResponseLog(tmp_path)
    assert again.get("k1").text == "answer k1" and again.get("k3") is None
    again.append(responses("k3", "k4"))  # the disk has room again: the same batch goes in whole
    assert log.path.read_text() == "".join(log_line(k) + "\n" for k in ("k1", "k2", "k3", "k4"))


@pytest.mark.parametrize("plan", SHORT_WRITES)
def test_short_writes_are_continued(tmp_path, monkeypatch, plan):
    monkeypatch.setattr(os, "write", FlakyWrite(plan))
    ResponseLog(tmp_path).append(responses("k1", "k2"))
    leaderboard.append_rows(tmp_path / "lb.csv", [row("m1")])
    monkeypatch.setattr(os, "write", REAL_WRITE)
    assert (tmp_path / "responses.jsonl").read_text() == log_line("k1") + "\n" + log_line("k2") + "\n"
    assert leaderboard.read(tmp_path / "lb.csv")["model"].tolist() == ["m1"]


@pytest.mark.parametrize("plan", FAILING_WRITES)
def test_leaderboard_append_on_a_full_disk_changes_nothing(tmp_path, monkeypatch, plan):
    path = tmp_path / "lb.csv"
    leaderboard.append_rows(path, [row("m1")])
    before = path.read_bytes()
    monkeypatch.setattr(os, "write", FlakyWrite(plan))
    with pytest.raises(StorageError) as caught:
        leaderboard.append_rows(path, [row("m2")], unique_on=("model",))
    monkeypatch.setattr(os, "write", REAL_WRITE)
    assert str(caught.value) == appended_message(path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["lb.csv"]
    leaderboard.append_rows(path, [row("m2")], unique_on=("model",))
    assert leaderboard.read(path)["model"].tolist() == ["m1", "m2"]


def test_a_failing_fsync_is_rolled_back_too(tmp_path, monkeypatch):
    path = tmp_path / "x.jsonl"
    append_lines(path, ['{"a": 1}'])
    real_fsync, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 1:
            raise OSError(errno.EIO, "Input/output error")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(StorageError) as caught:
        append_lines(path, ['{"a": 2}'])
    assert str(caught.value) == (
        f"cannot append to {path}: Input/output error; nothing was lost: the file is as before the append"
    )
    assert path.read_text() == '{"a": 1}\n'


def test_when_even_the_rollback_fails_the_next_read_moves_the_torn_bytes_aside(tmp_path, monkeypatch, capsys):
    log = ResponseLog(tmp_path)
    log.append(responses("k1"))
    before = log.path.read_bytes()
    monkeypatch.setattr(os, "write", FlakyWrite({1: "short", 2: "enospc"}))

    def ftruncate(fd, size):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "ftruncate", ftruncate)
    with pytest.raises(StorageError) as caught:
        log.append(responses("k2"))
    monkeypatch.undo()
    assert str(caught.value) == (
        f"cannot append to {log.path}: {ENOSPC}; cutting the partial append off failed too (Input/output error): "
        f"the next read moves it aside to responses.jsonl.torn"
    )
    assert log.path.read_bytes() == before + log_line("k2").encode()[:5]
    capsys.readouterr()
    assert ResponseLog(tmp_path).get("k1").text == "answer k1"
    assert capsys.readouterr().err == torn_notice(log.path, 5)
    assert log.path.read_bytes() == before and (tmp_path / "responses.jsonl.torn").read_bytes() == b'{"key\n'


class ShortThenFull:
    """A file object whose writes take ``plan`` in turn: a number (write that many bytes) or ``enospc``."""

    def __init__(self, handle, plan):
        self.handle, self.plan = handle, list(plan)

    def write(self, data):
        step = self.plan.pop(0) if self.plan else len(data)
        if step == "enospc":
            raise OSError(errno.ENOSPC, ENOSPC)
        return self.handle.write(data[:step])

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()


@pytest.mark.parametrize("plan, error", [
    ([3, 4], None),
    ([3, "enospc"], "No space left on device; r.json is as it was"),
    (["enospc"], "No space left on device; r.json is as it was"),
])  # fmt: skip
def test_atomic_write_continues_short_writes_and_leaves_no_temp_file(tmp_path, monkeypatch, plan, error):
    path = tmp_path / "r.json"
    atomic_write_text(path, "old")
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: ShortThenFull(real_fdopen(fd, *a, **k), plan))
    if error is None:
        atomic_write_text(path, "new content")
        assert path.read_text() == "new content"
    else:
        with pytest.raises(StorageError) as caught:
            atomic_write_text(path, "new content")
        assert str(caught.value) == f"cannot write {path}: {error}" and path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


# --- torn last lines ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tail, moved", [
    (b'{"key": "k9", "resp', True),
    ('{"key": "k9", "response": "é'.encode()[:-1], True),  # cut inside a UTF-8 character
    (b"\xff\xfe", True),
    (log_line("k9").encode(), False),  # a whole record, only its newline missing: kept
])  # fmt: skip
def test_response_log_moves_a_torn_last_line_aside(tmp_path, capsys, tail, moved):
    path = tmp_path / "responses.jsonl"
    before = (log_line("k1") + "\n" + log_line("k2") + "\n").encode()
    path.write_bytes(before + tail)
    log = ResponseLog(tmp_path)
    torn = tmp_path / "responses.jsonl.torn"
    if moved:
        assert capsys.readouterr().err == torn_notice(path, len(tail))
        assert path.read_bytes() == before and torn.read_bytes() == tail + b"\n" and log.get("k9") is None
    else:
        assert capsys.readouterr().err == ""
        assert path.read_bytes() == before + tail + b"\n" and not torn.exists() and log.get("k9").text == "answer k9"
    log.append(responses("k3"))
    assert [e["key"] for e in read_jsonl(path)] == ["k1", "k2", *(["k9"] if not moved else []), "k3"]


def test_torn_bytes_accumulate_and_an_append_never_glues_onto_them(tmp_path, capsys):
    path = tmp_path / "responses.jsonl"
    ResponseLog(tmp_path).append(responses("k1"))
    with open(path, "ab") as handle:
        handle.write(b'{"key": "first')
    ResponseLog(tmp_path)
    with open(path, "ab") as handle:
        handle.write(b'{"key": "second')
    ResponseLog(tmp_path).append(responses("k2"))  # init moves it; a kill after init is handled by the append:
    with open(path, "ab") as handle:
        handle.write(b'{"key": "third')
    append_lines(path, [log_line("k3")])
    assert path.read_text() == "".join(log_line(k) + "\n" for k in ("k1", "k2", "k3"))
    assert (tmp_path / "responses.jsonl.torn").read_bytes() == b'{"key": "first\n{"key": "second\n{"key": "third\n'
    assert capsys.readouterr().err.count("moved a torn last line") == 3


def test_leaderboard_torn_last_row_is_moved_aside_by_read_and_append(tmp_path, capsys):
    path = tmp_path / "lb.csv"
    leaderboard.append_rows(path, [row("m1")])
    before = path.read_bytes()
    torn = b'2026-01-01,run,"dir, with'  # killed inside a quoted field: it would swallow the next row
    with open(path, "ab") as handle:
        handle.write(torn)
    assert leaderboard.read(path)["model"].tolist() == ["m1"]
    assert capsys.readouterr().err == torn_notice(path, len(torn), "row")
    assert path.read_bytes() == before
    with open(path, "ab") as handle:
        handle.write(b"2026-01-02,run2,m")
    leaderboard.append_rows(path, [row("m2")])
    assert capsys.readouterr().err == torn_notice(path, 17, "row")
    assert leaderboard.read(path)["model"].tolist() == ["m1", "m2"]
    assert (tmp_path / "lb.csv.torn").read_bytes() == torn + b"\n" + b"2026-01-02,run2,m\n"


def test_a_row_torn_inside_a_multi_line_cell_needs_repair(tmp_path, capsys):
    path = tmp_path / "lb.csv"
    leaderboard.append_rows(path, [row("m1"), row("m2", checkpoint="two\nlines")])
    good = path.read_bytes()
    with open(path, "ab") as handle:
        handle.write(b'2026,r,"one line\nand a half')
    message = f"{path}:5: a quoted field opened on this line is never closed (a torn row){lb_hint(path)}"
    with pytest.raises(StorageError) as caught:
        leaderboard.read(path)
    assert str(caught.value) == message
    with pytest.raises(StorageError) as caught:
        leaderboard.append_rows(path, [row("m3")])
    assert str(caught.value) == message and path.read_bytes() == good + b'2026,r,"one line\nand a half'
    assert main(["repair", "--leaderboard", str(path)]) == 0
    assert capsys.readouterr().out == (
        f"{path}: kept 3 rows; moved 1 bad row (5) to lb.csv.bad; moved a torn last row (10 bytes) to lb.csv.torn\n"
    )
    assert path.read_bytes() == good
    assert (tmp_path / "lb.csv.bad").read_bytes() == b'2026,r,"one line\n'
    assert (tmp_path / "lb.csv.torn").read_bytes() == b"and a half\n"
    assert leaderboard.read(path)["checkpoint"].tolist() == ["", "two\nlines"]


def test_a_read_only_leaderboard_with_a_torn_row_is_read_without_it(tmp_path, monkeypatch, capsys):
    path = tmp_path / "lb.csv"
    leaderboard.append_rows(path, [row("m1")])
    with open(path, "ab") as handle:
        handle.write(b"2026,torn")
    before = path.read_bytes()
    monkeypatch.setattr(os, "access", lambda p, mode: False)
    assert leaderboard.read(path)["model"].tolist() == ["m1"]
    assert capsys.readouterr().err == (
        f"s3eval: {path}: left out a torn last row (9 bytes); the file is read-only, so it stays\n"
    )
    assert path.read_bytes() == before and not (tmp_path / "lb.csv.torn").exists()


# --- corrupt lines in the middle, and `s3eval repair` -------------------------------------------------------------


@pytest.mark.parametrize("bad, problem", [
    (b"not json", "not valid JSON (Expecting value)"),
    (b"[1, 2]", "expected a JSON object"),
    (b'{"key": "k\xff"}', "not valid UTF-8 (byte 0xff at column 11)"),
    (b'{"key": "k2", "resp' + log_line("k2").encode(), "not valid JSON (Expecting ':' delimiter)"),
])  # fmt: skip
def test_a_corrupt_middle_line_names_the_line_and_repair_keeps_every_good_line(tmp_path, capsys, bad, problem):
    run_dir = tmp_path / "runs" / "r"
    run_dir.mkdir(parents=True)
    path = run_dir / "responses.jsonl"
    first, third = (log_line(k).encode() + b"\n" for k in ("k1", "k3"))
    path.write_bytes(first + bad + b"\n" + third)
    with pytest.raises(StorageError) as caught:
        ResponseLog(run_dir)
    assert str(caught.value) == (
        f"{path}:2: {problem}; run `s3eval repair {run_dir}` to move bad lines aside to responses.jsonl.bad"
    )
    assert main(["repair", str(run_dir)]) == 0
    salvaged = bad.endswith(log_line("k2").encode())
    if salvaged:  # a torn record with a whole one glued after it: the whole one is kept
        assert capsys.readouterr().out == (
            f"{path}: kept 3 lines; kept the whole record glued after torn bytes on 1 line (2), the torn bytes moved "
            f"to responses.jsonl.bad\n"
        )
        assert path.read_bytes() == first + log_line("k2").encode() + b"\n" + third
        assert (run_dir / "responses.jsonl.bad").read_bytes() == b'{"key": "k2", "resp\n'
    else:
        assert capsys.readouterr().out == f"{path}: kept 2 lines; moved 1 bad line (2) to responses.jsonl.bad\n"
        assert path.read_bytes() == first + third
        assert (run_dir / "responses.jsonl.bad").read_bytes() == bad + b"\n"
    assert ResponseLog(run_dir).get("k3").text == "answer k3"
    assert main(["repair", str(run_dir)]) == 0
    assert capsys.readouterr().out == f"{path}: nothing to repair ({3 if salvaged else 2} lines)\n"


def test_repair_of_a_samples_file_and_bad_bytes_appended_never_overwritten(tmp_path, capsys):
    path = tmp_path / "samples_t.jsonl"
    path.write_bytes(b'{"a": 1}\n\xff\n{"a": 2}\n')
    with pytest.raises(StorageError) as caught:
        list(read_jsonl(path))
    assert str(caught.value) == (
        f"{path}:2: not valid UTF-8 (byte 0xff at column 1); run `s3eval repair {tmp_path}` to move bad lines aside "
        f"to samples_t.jsonl.bad"
    )
    assert main(["repair", str(path)]) == 0
    path.write_bytes(b'{"a": 1}\noops\n')
    assert main(["repair", str(tmp_path)]) == 0
    assert capsys.readouterr().out == (
        f"{path}: kept 2 lines; moved 1 bad line (2) to samples_t.jsonl.bad\n"
        f"{path}: kept 1 line; moved 1 bad line (2) to samples_t.jsonl.bad\n"
    )
    assert (tmp_path / "samples_t.jsonl.bad").read_bytes() == b"\xff\noops\n"
    assert [r["a"] for r in read_jsonl(path)] == [1]


@pytest.mark.parametrize("edit, problem", [
    (lambda t: t.replace(b",m2,", b",m\xff,"), "not valid UTF-8 (byte 0xff at column 4)"),
    (lambda t: t.replace(b",m2,", b",m2,extra,"), f"expected {len(COLUMNS)} fields, found {len(COLUMNS) + 1}"),
    (lambda t: t.replace(b",0.25,", b",abc,"), "column 'accuracy' is not a number: 'abc'"),
    (lambda t: t.replace(b",10,0,0,0,0.25,", b",1.5,0,0,0,0.25,"), "column 'n' is not a whole number: '1.5'"),
], ids=["not-utf8", "field-count", "not-a-number", "not-whole"])  # fmt: skip
def test_a_corrupt_leaderboard_row_names_the_line_and_repair_moves_it_aside(tmp_path, capsys, edit, problem):
    path = tmp_path / "lb.csv"
    leaderboard.append_rows(path, [row("m1"), row("m2", accuracy=0.25), row("m3")])
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + lines[1] + edit(lines[2]) + lines[3])
    assert main(["leaderboard", "--path", str(path)]) == 2
    assert capsys.readouterr().err == f"s3eval: error: {path}:3: {problem}{lb_hint(path)}\n"
    assert main(["repair", "--leaderboard", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: kept 3 rows; moved 1 bad row (3) to lb.csv.bad\n"
    assert (tmp_path / "lb.csv.bad").read_bytes() == edit(lines[2])
    assert path.read_bytes() == lines[0] + lines[1] + lines[3]
    assert leaderboard.read(path)["model"].tolist() == ["m1", "m3"]
    leaderboard.append_rows(path, [row("m4")])
    assert leaderboard.read(path)["model"].tolist() == ["m1", "m3", "m4"]


def test_invalid_utf8_in_json_and_in_a_samples_file_given_to_rescore(tmp_path, capsys):
    results = tmp_path / "results.json"
    results.write_bytes(b'{\n  "a": "\xff"\n}\n')
    with pytest.raises(StorageError) as caught:
        read_json(results)
    assert str(caught.value) == f"{results}:2: not valid UTF-8 (byte 0xff at column 9)"
    samples = tmp_path / "samples_t.jsonl"
    samples.write_bytes(b'{"a": "\xe9"}\n')
    assert main(["rescore", str(samples)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("s3eval: error: ") and err.count("\n") == 1
    assert (f"{samples}:1: not valid UTF-8 (byte 0xe9 at column 8); run `s3eval repair {tmp_path}` to move bad lines "
            f"aside to samples_t.jsonl.bad") in err  # fmt: skip


def test_repair_refuses_what_it_cannot_repair(tmp_path, capsys):
    assert main(["repair"]) == 2
    assert capsys.readouterr().err == (
        "s3eval: error: repair needs either a run directory (or a JSONL file) or --leaderboard PATH\n"
    )
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    assert main(["repair", "--leaderboard", str(tmp_path / "other.csv")]) == 2
    assert capsys.readouterr().err == (
        f"s3eval: error: {tmp_path / 'other.csv'}:1: not the s3eval leaderboard header; not repairing it\n"
    )
    assert main(["repair", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"s3eval: error: {tmp_path}: no responses*.jsonl or samples_*.jsonl to repair (is it a run directory?)\n"
    )


# --- formula injection --------------------------------------------------------------------------------------------

CELLS = [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
    ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"),
    ("\rx", "'\rx"),
    ("'=already quoted", "''=already quoted"),
    ("-0.5", "-0.5"),
    ("+1e3", "+1e3"),
    ("plain", "plain"),
    ("'plain", "'plain"),
    ("", ""),
]


@pytest.mark.parametrize("value, written", CELLS)
def test_spreadsheet_cells(value, written):
    assert spreadsheet_cell(value) == written and read_cell(written) == value


def test_non_text_cells_are_unchanged():
    assert [spreadsheet_cell(v) for v in (-0.5, 3, None, True)] == [-0.5, 3, None, True]


def test_leaderboard_cells_round_trip_and_are_spreadsheet_safe(tmp_path):
    path = tmp_path / "lb.csv"
    rows = [row(value, run_id=value, checkpoint=value, accuracy=-0.5) for value, _ in CELLS]
    leaderboard.append_rows(path, rows)
    raw = list(csv.reader(io.StringIO(path.read_bytes().decode(), newline="")))[1:]
    index = COLUMNS.index
    assert [r[index("model")] for r in raw] == [written for _, written in CELLS]
    assert [r[index("accuracy")] for r in raw] == ["-0.5"] * len(CELLS)
    frame = leaderboard.read(path)
    values = [value for value, _ in CELLS]
    assert frame["model"].tolist() == values and frame["checkpoint"].tolist() == values
    assert frame["run_id"].tolist() == values and frame["accuracy"].tolist() == [-0.5] * len(CELLS)
    leaderboard.append_rows(path, rows, unique_on=("run_id",))  # the escaped cells are recognised as present
    assert len(leaderboard.read(path)) == len(CELLS)


def test_compare_csv_files_are_spreadsheet_safe(tmp_path, monkeypatch):
    monkeypatch.setattr(compare_report, "chart_png", lambda rows, kind: b"")
    monkeypatch.setattr(compare_report, "_html_table", lambda rows, kind: "")
    compare_report.write_report([{"task": "=t", "group": "-g", "delta": -0.5}],
                                [{"task": "=t", "sample_id": "@id", "run_b": "+b", "response": "=cmd()", "ok": 1}],
                                tmp_path, {})  # fmt: skip
    assert (tmp_path / "compare.csv").read_text() == "task,group,delta\n'=t,'-g,-0.5\n"
    assert (tmp_path / "flipped.csv").read_text() == "task,sample_id,run_b,response,ok\n'=t,'@id,'+b,'=cmd(),1\n"


@pytest.mark.parametrize("text, escaped", [
    ("a|b", "a\\|b"),
    ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"),
    ("Tom & Jerry", "Tom &amp; Jerry"),
    ("two\nlines\r\nthree", "two<br>lines<br>three"),
    ("C:\\runs\\x", "C:\\runs\\x"),
    ("a\\|b", "a\\\\\\|b"),
    ("a\\*b*", "a\\\\*b*"),
    (0.5, "0.5"),
])  # fmt: skip
def test_escape_markdown(text, escaped):
    assert escape_markdown(text) == escaped


# --- the run lock -------------------------------------------------------------------------------------------------

TRY_HOLD = """
import sys
from s3eval.run_lock import RunLockedError, hold
try:
    with hold(sys.argv[1]):
        print("held")
except RunLockedError as exc:
    print(exc)
"""
HOLD_AND_WAIT = """
import sys, time
from s3eval.run_lock import hold
with hold(sys.argv[1], command="s3eval run --tasks x"):
    print("held", flush=True)
    time.sleep(60)
"""


def python(code, *args, **kw):
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            **kw)  # fmt: skip


def test_a_second_process_is_refused_naming_the_holder(tmp_path):
    run_dir = tmp_path / "runs" / "X"
    run_dir.mkdir(parents=True)
    with run_lock.hold(run_dir, command="s3eval run --tasks mmmu_val") as lock:
        info = json.loads(lock.read_text())
        assert info["pid"] == os.getpid() and info["host"] == socket.gethostname()
        assert info["command"] == "s3eval run --tasks mmmu_val"
        with run_lock.hold(run_dir):  # re-entrant in the holding process
            pass
        out, _ = python(TRY_HOLD, run_dir).communicate(timeout=60)
        assert out == (f"{run_dir} is in use by pid {os.getpid()} on host {socket.gethostname()} since "
                       f"{info['since']}; wait for it or stop it\n")  # fmt: skip
    assert lock.read_text() == ""
    out, _ = python(TRY_HOLD, run_dir).communicate(timeout=60)
    assert out == "held\n"


def test_a_killed_holder_leaves_no_stale_lock_and_repair_waits_for_none(tmp_path, capsys):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "responses.jsonl").write_text(log_line("k1") + "\n")
    child = python(HOLD_AND_WAIT, run_dir)
    try:
        assert child.stdout.readline() == "held\n"
        since = run_lock.holder(run_dir)["since"]
        expected = (f"{run_dir} is in use by pid {child.pid} on host {socket.gethostname()} since {since}; "
                    "wait for it or stop it")  # fmt: skip
        with pytest.raises(RunLockedError) as caught:
            with run_lock.hold(run_dir):
                pass
        assert str(caught.value) == expected
        assert main(["repair", str(run_dir)]) == 2
        assert capsys.readouterr().err == f"s3eval: error: {expected}\n"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        child.stdout.close()
    with run_lock.hold(run_dir):  # the kernel dropped the killed holder's lock
        pass
    assert main(["repair", str(run_dir)]) == 0


# --- many processes at once ---------------------------------------------------------------------------------------


def _append_rows(args):
    path, writer = args
    for i in range(50):
        leaderboard.append_rows(path, [row(f"{writer}-{i}", checkpoint='dir, with "quotes"\nand a line')])


def _append_lines(args):
    path, writer = args
    for i in range(50):
        append_lines(path, [log_line(f"{writer}-{i}-{j}") for j in range(3)])


def _read_board(args):
    path, _ = args
    for _ in range(50):
        if path.exists():
            leaderboard.read(path)


def test_concurrent_appends_and_reads(tmp_path):
    board, log = tmp_path / "lb.csv", tmp_path / "responses.jsonl"
    jobs = [(_append_rows, (board, w)) for w in "abcd"] + [(_append_lines, (log, w)) for w in "abcd"]
    jobs.append((_read_board, (board, None)))
    with multiprocessing.get_context("fork").Pool(2) as pool:
        for result in [pool.apply_async(function, (args,)) for function, args in jobs]:
            result.get(timeout=300)
    frame = leaderboard.read(board)
    assert sorted(frame["model"]) == sorted(f"{w}-{i}" for w in "abcd" for i in range(50))
    assert set(frame["checkpoint"]) == {'dir, with "quotes"\nand a line'}
    keys = [entry["key"] for entry in read_jsonl(log)]
    assert sorted(keys) == sorted(f"{w}-{i}-{j}" for w in "abcd" for i in range(50) for j in range(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lb.csv", "responses.jsonl"]  # nothing torn, nothing bad


def test_a_run_whose_leaderboard_append_fails_says_so_and_a_rerun_adds_the_row(tmp_path, monkeypatch, capsys):
    from mmmu_snapshot import row as mmmu_row, write_snapshot

    snapshot = write_snapshot(tmp_path / "snap", [mmmu_row(f"validation_Art_{n}", answer="B") for n in range(1, 5)])
    board = tmp_path / "lb.csv"
    leaderboard.append_rows(board, [row("earlier")])
    before = board.read_bytes()
    capsys.readouterr()
    command = ["run", "--model", "constant", "--model-arg", "answer=B", "--tasks", "mmmu_val", "--task-arg",
               "subjects=Art", "--data", str(snapshot), "--output-dir", str(tmp_path / "runs"), "--leaderboard",
               str(board), "--quiet"]  # fmt: skip

    def full_for_the_leaderboard(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}") == str(board):
            raise OSError(errno.ENOSPC, ENOSPC)
        return REAL_WRITE(fd, data)

    monkeypatch.setattr(os, "write", full_for_the_leaderboard)
    assert main(command) == 2
    monkeypatch.setattr(os, "write", REAL_WRITE)
    assert capsys.readouterr().err == f"s3eval: error: {appended_message(board)}\n"
    assert board.read_bytes() == before
    assert main(command) == 0  # the same command again: nothing regenerated, the row appended
    assert leaderboard.read(board)["model"].tolist() == ["earlier", "constant"]
