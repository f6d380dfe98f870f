"""One process per run directory: an advisory ``flock`` on ``RUN_DIR/.lock``, taken without waiting.

The holder writes who it is into the lock file (pid, host, start time, command), so a second process is refused
with a message naming it::

    results/runs/X is in use by pid 123 on host h since 2026-01-01T10:00:00+00:00; wait for it or stop it

The kernel drops the lock when the holder exits, however it exits (SIGKILL included), so a lock is never stale;
the ``.lock`` file itself stays (removing it could let two processes lock two different files). Under torchrun
only rank 0 holds it. Holding is re-entrant within one process."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterator, Optional

from .errors import S3evalError
from .storage import StorageError

LOCK_NAME = ".lock"

# Run directories this process holds: real path → [descriptor, depth, pid].
_held: dict[str, list] = {}


class RunLockedError(S3evalError):
    """Another process holds the run directory."""


def lock_path(run_dir: Path) -> Path:
    return Path(run_dir) / LOCK_NAME


def holder(run_dir: Path) -> Optional[dict]:
    """What the lock file says about the process holding (or that last held) ``run_dir``: ``pid``, ``host``,
    ``since``, ``command``; None when it says nothing readable."""
    try:
        info = json.loads(lock_path(run_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and {"pid", "host", "since"} <= set(info) else None


def _busy(run_dir: Path) -> RunLockedError:
    info = None
    for _ in range(20):  # the holder may have just locked and not yet written who it is
        info = holder(run_dir)
        if info is not None:
            break
        time.sleep(0.025)
    if info is None:
        return RunLockedError(f"{run_dir} is in use by another process; wait for it or stop it")
    return RunLockedError(
        f"{run_dir} is in use by pid {info['pid']} on host {info['host']} since {info['since']}; "
        "wait for it or stop it"
    )


@contextmanager
def hold(run_dir: Path, command: Optional[str] = None) -> Iterator[Path]:
    """Hold ``run_dir`` (an existing directory) for this process until the block ends; yields the lock file.
    Another process holding it: RunLockedError naming that process. ``command``: what to record as this
    process's command (default: its command line)."""
    run_dir = Path(run_dir)
    key = os.path.realpath(run_dir)
    mine = _held.get(key)
    if mine is not None and mine[2] == os.getpid():
        mine[1] += 1
        try:
            yield lock_path(run_dir)
        finally:
            mine[1] -= 1
        return
    path = lock_path(run_dir)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StorageError(f"cannot lock {run_dir}: cannot open {path}: {exc.strerror or exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise _busy(run_dir) from None
    except OSError as exc:
        os.close(fd)
        raise StorageError(f"cannot lock {run_dir}: {exc.strerror or exc}") from exc
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": command if command is not None else " ".join(sys.argv),
    }
    try:
        os.ftruncate(fd, 0)
        data, offset = (json.dumps(info) + "\n").encode("utf-8"), 0
        while offset < len(data):  # pwrite, not write: the run's own appends are the only os.write calls
            written = os.pwrite(fd, data[offset:], offset)
            if not written:
                break
            offset += written
    except OSError:
        pass  # who holds it is a courtesy for the message; the lock itself holds
    _held[key] = [fd, 1, os.getpid()]
    try:
        yield path
    finally:
        del _held[key]
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        os.close(fd)  # releases the lock
