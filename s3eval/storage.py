"""Durable file writes: JSONL appended and fsynced per batch, whole files replaced atomically.

- Every append goes through ``append_bytes``: all bytes written (``os.write`` may write fewer than asked without
  raising, e.g. on a filling disk), fsynced, and on any failure the file is cut back to its size before the append,
  so a full disk never leaves half a line; the StorageError names the file.
- Appends and the readers that repair take an exclusive ``flock`` on the file (``locked``), so a reader never
  mistakes another process's append in progress for a torn line.
- A torn last line (a process killed mid-append) is moved aside to ``<file>.torn`` (appended to, never
  overwritten) with a one-line notice on stderr; a broken line elsewhere, or bytes that are not UTF-8, are an error
  naming file:line and the way out, ``s3eval repair`` (``s3eval.repair``), which moves bad lines to ``<file>.bad``.
"""

from __future__ import annotations

import errno
import fcntl
import fnmatch
import json
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

from .errors import S3evalError


class StorageError(S3evalError, OSError):
    """A file could not be read or written, or holds bytes s3eval did not write; the message names the file (and
    line) and what to do."""


# Files of a run directory that `s3eval repair RUN_DIR` repairs.
RUN_FILE_PATTERNS = ("responses*.jsonl", "samples_*.jsonl")


def notice(message: str) -> None:
    """One line on stderr about something s3eval did by itself (a torn line moved aside); not an error."""
    print(f"s3eval: {message}", file=sys.stderr, flush=True)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` at ``fd``'s position: a short write is continued, not taken as done."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if not written:  # no progress and no error: the disk has no room left
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def append_bytes(fd: int, payload: bytes, path: Path, size: Optional[int] = None) -> None:
    """Append ``payload`` to the open file ``fd`` (opened on ``path`` with O_APPEND, under an exclusive lock held by
    the caller) whole or not at all: every byte written, then fsynced. On any failure the file is cut back to
    ``size`` (default: its size now), fsynced, and a StorageError raised:

    ``cannot append to PATH: No space left on device; nothing was lost: the file is as before the append``"""
    path = Path(path)
    if size is None:
        size = os.fstat(fd).st_size
    try:
        write_all(fd, payload)
        os.fsync(fd)
    except OSError as exc:
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        except OSError as undo:
            raise StorageError(
                f"cannot append to {path}: {_reason(exc)}; cutting the partial append off failed too "
                f"({_reason(undo)}): the next read moves it aside to {path.name}.torn"
            ) from exc
        raise StorageError(
            f"cannot append to {path}: {_reason(exc)}; nothing was lost: the file is as before the append"
        ) from exc


@contextmanager
def locked(path: Path, *, create: bool = False, shared: bool = False, action: str = "open") -> Iterator[int]:
    """``path`` opened (read-write with O_APPEND, or read-only when ``shared``) under an ``flock`` (exclusive, or
    shared) held until the block ends; yields the descriptor. A file replaced while we waited for its lock
    (``s3eval repair`` renames the repaired file into place) is opened again. Failures are StorageErrors:
    ``cannot {action} PATH: reason``."""
    path = Path(path)
    flags = os.O_RDONLY if shared else os.O_RDWR | os.O_APPEND | (os.O_CREAT if create else 0)
    while True:
        try:
            fd = os.open(path, flags, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot {action} {path}: {_reason(exc)}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            opened = os.fstat(fd)
            try:
                current = os.stat(path)
                same = (current.st_dev, current.st_ino) == (opened.st_dev, opened.st_ino)
            except FileNotFoundError:
                same = False
        except OSError as exc:
            os.close(fd)
            raise StorageError(f"cannot {action} {path}: {_reason(exc)}") from exc
        except BaseException:
            os.close(fd)
            raise
        if same:
            break
        os.close(fd)
    try:
        yield fd
    finally:
        os.close(fd)


def read_fd(fd: int) -> bytes:
    """The whole content of the open file ``fd``."""
    chunks, offset = [], 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def append_to(path: Path, payload: bytes) -> None:
    """Append ``payload`` to ``path`` (created if absent) under its lock, whole or not at all."""
    with locked(path, create=True, action="append to") as fd:
        append_bytes(fd, payload, path)


def set_aside_tail(fd: int, path: Path, start: int, tail: bytes, what: str) -> Path:
    """Move the bytes from ``start`` to the end of ``fd`` (``tail``) to ``<path>.torn`` (appended, followed by a
    newline) and cut them off ``path``; says so on stderr. The caller holds ``path``'s exclusive lock."""
    path = Path(path)
    torn = path.with_name(path.name + ".torn")
    append_to(torn, tail + b"\n")  # first kept elsewhere, then cut: a crash in between duplicates, never loses
    try:
        os.ftruncate(fd, start)
        os.fsync(fd)
    except OSError as exc:
        raise StorageError(f"cannot cut the torn last line off {path}: {_reason(exc)} (it is saved in {torn})") from exc
    notice(f"{path}: moved {what} ({len(tail)} bytes, left by an interrupted write) to {torn}")
    return torn


def _last_line(fd: int) -> tuple[int, bytes]:
    """(offset, bytes) of an unterminated last line of ``fd``; (size, b"") when the file is empty or ends with a
    newline. Reads backwards from the end, so an append costs one small read, not a read of the log."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size, b""
    tail, position = b"", size
    while position > 0:
        step = min(1 << 16, position)
        position -= step
        chunk = os.pread(fd, step, position)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            return position + newline + 1, chunk[newline + 1 :] + tail
        tail = chunk + tail
    return 0, tail


def is_json_object(line: bytes) -> bool:
    """Whether ``line`` is UTF-8 JSON for one object (a whole JSONL record)."""
    try:
        return isinstance(json.loads(line.decode("utf-8")), dict)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False


def _settle_jsonl_tail(fd: int, path: Path) -> int:
    """Under ``path``'s exclusive lock: an unterminated last line that is a whole JSON object gets its newline;
    any other one (torn by a crash) is moved aside to ``<path>.torn``. Returns the bytes moved aside."""
    start, tail = _last_line(fd)
    if not tail:
        return 0
    if is_json_object(tail):
        append_bytes(fd, b"\n", path)
        return 0
    set_aside_tail(fd, path, start, tail, "a torn last line")
    return len(tail)


def recover_jsonl_tail(path: Path) -> int:
    """Move a torn last line of the JSONL file ``path`` (a process killed mid-append) aside to ``<path>.torn``,
    saying so on stderr; returns the number of bytes moved (0: nothing torn)."""
    with locked(path, action="repair") as fd:
        return _settle_jsonl_tail(fd, Path(path))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_DEFAULT_MODE = 0o666 & ~_umask()


def atomic_write_bytes(path: Path, data: bytes, mode: Optional[int] = None) -> None:
    """Write to a temporary file beside ``path`` (every byte: a short write is continued), fsync, and rename it over
    ``path``: readers see old or new, never half. On failure (a full disk) no temporary file is left, ``path`` is
    as before, and StorageError says ``cannot write PATH: reason``. ``mode``: the new file's permission bits."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {_reason(exc)}") from exc
    replaced = False
    try:
        with os.fdopen(fd, "wb", buffering=0) as handle:
            view = memoryview(data)
            while view:
                written = handle.write(view)
                if not written:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[written:]
            # mkstemp makes 0600 files; outputs get what any other file the user creates gets.
            os.fchmod(handle.fileno(), _DEFAULT_MODE if mode is None else mode)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        replaced = True
        _fsync_dir(path.parent)
    except OSError as exc:
        if not replaced:
            Path(tmp).unlink(missing_ok=True)
            raise StorageError(f"cannot write {path}: {_reason(exc)}; {path.name} is as it was") from exc
        raise StorageError(f"cannot write {path}: {_reason(exc)}") from exc


def atomic_write_text(path: Path, text: str, mode: Optional[int] = None) -> None:
    """``atomic_write_bytes`` of ``text`` in UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"), mode)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def append_lines(path: Path, lines: Iterable[str]) -> None:
    """Append JSON lines in one durable append (``append_bytes``): a crash or a full disk loses at most the batch
    being written, never a line already there. A torn last line left by an earlier crash is moved aside first, so
    the new lines never glue onto it."""
    path = Path(path)
    payload = "".join(line + "\n" for line in lines).encode("utf-8")
    if not payload:
        return
    with locked(path, create=True, action="append to") as fd:
        _settle_jsonl_tail(fd, path)
        append_bytes(fd, payload, path)


def repair_command(path: Path) -> str:
    """The command that repairs ``path``: ``s3eval repair RUN_DIR`` for a run's response logs and samples files,
    ``s3eval repair FILE`` for another JSONL file."""
    path = Path(path)
    if any(fnmatch.fnmatchcase(path.name, pattern) for pattern in RUN_FILE_PATTERNS):
        return f"s3eval repair {path.parent}"
    return f"s3eval repair {path}"


def repair_hint(path: Path) -> str:
    path = Path(path)
    return f"; run `{repair_command(path)}` to move bad lines aside to {path.name}.bad"


def leaderboard_repair_hint(path: Path) -> str:
    path = Path(path)
    return f"; run `s3eval repair --leaderboard {path}` to move bad rows aside to {path.name}.bad"


def decode_utf8(data: bytes, path: Path, hint: str = "", first_line: int = 1) -> str:
    """``data`` (the content of ``path`` from line ``first_line``) as text; bytes that are not UTF-8 are a
    StorageError: ``PATH:LINE: not valid UTF-8 (byte 0xff at column 3)`` + ``hint``."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = first_line + data.count(b"\n", 0, exc.start)
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise StorageError(
            f"{path}:{line}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at column {column}){hint}"
        ) from None


def csv_complete_part(fd: int, path: Path, data: bytes, hint: str, writable: bool = True) -> bytes:
    """The whole rows of a CSV file appended to under a lock (``data``: its content, ``fd`` under the caller's
    lock): an unterminated last row (a writer killed mid-append) is moved aside to ``<path>.torn`` with a notice,
    or left out with a notice when the file is not ``writable``. A quoted field still open at the end of the
    remaining rows (a row torn inside quotes) is a StorageError naming its line + ``hint``."""
    path = Path(path)
    keep = len(data) if not data or data.endswith(b"\n") else data.rfind(b"\n") + 1
    if data.count(b'"', 0, keep) % 2:
        line, parity = 1, 0
        for number, text in enumerate(data[:keep].split(b"\n"), start=1):
            if text.count(b'"') % 2:
                if not parity:
                    line = number
                parity ^= 1
        raise StorageError(f"{path}:{line}: a quoted field opened on this line is never closed (a torn row){hint}")
    if keep < len(data):
        if writable:
            set_aside_tail(fd, path, keep, data[keep:], "a torn last row")
        else:
            notice(f"{path}: left out a torn last row ({len(data) - keep} bytes); the file is read-only, so it stays")
    return data[:keep]


def read_csv_rows_bytes(path: Path, hint: str) -> bytes:
    """The whole rows of a locked-append CSV file (``csv_complete_part``), read under its lock: exclusive when the
    file is writable (so a torn last row can be moved aside), shared otherwise."""
    path = Path(path)
    writable = os.access(path, os.W_OK)
    with locked(path, shared=not writable, action="read") as fd:
        return csv_complete_part(fd, path, read_fd(fd), hint, writable)


def read_json(path: Path) -> Any:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {_reason(exc)}") from exc
    text = decode_utf8(data, path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise StorageError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno})") from exc
    except RecursionError as exc:
        raise StorageError(f"{path}: not valid JSON (nested too deeply)") from exc


def read_jsonl(path: Path, hint: Optional[str] = None) -> Iterator[dict]:
    """Yield the objects of a JSONL file. A torn last line (no newline after it: a crash mid-write) is skipped; a
    broken line elsewhere (not UTF-8, not JSON, not an object) is a StorageError naming file:line, followed by
    ``hint`` (default: the `s3eval repair` command that moves bad lines aside)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {_reason(exc)}") from exc
    if hint is None:
        hint = repair_hint(path)
    lines = data.split(b"\n")
    last = len(lines) - 1
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        torn = number - 1 == last  # no newline after it: the writer was interrupted
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            if torn:
                return
            decode_utf8(raw, path, hint, first_line=number)  # raises, naming the line and column
            raise
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            if torn:
                return
            raise StorageError(f"{path}:{number}: not valid JSON ({exc.msg}){hint}") from exc
        except RecursionError as exc:
            raise StorageError(f"{path}:{number}: not valid JSON (nested too deeply){hint}") from exc
        if not isinstance(obj, dict):
            if torn:
                return
            raise StorageError(f"{path}:{number}: expected a JSON object{hint}")
        yield obj
