"""Reading MMMU rows with the `datasets` library from
(a) a local snapshot of the hub repo `MMMU/MMMU` (one folder per subject holding ``<split>-*.parquet``),
(b) the hub id when online, or
(c) the Hugging Face datasets cache when offline (``offline=true``: no network is tried).
"""

from __future__ import annotations

import contextlib
import functools
import socket
import urllib.parse
from pathlib import Path
from typing import Any, Iterator, Optional

from tqdm import tqdm

from s3eval.task import TaskError

DEFAULT_HUB_ID = "MMMU/MMMU"


@contextlib.contextmanager
def _hub_offline(enabled: bool) -> Iterator[None]:
    """Switch datasets/huggingface_hub to offline mode for one call, and back (their flags are module state)."""
    if not enabled:
        yield
        return
    import datasets
    import huggingface_hub

    saved = datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = huggingface_hub.constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE = saved


def describe_source(data: Optional[str], offline: bool) -> str:
    if _is_local(data):
        return f"local snapshot {data}"
    return f"hub {data or DEFAULT_HUB_ID}" + (" (offline: datasets cache)" if offline else "")


def _rows(dataset) -> list[dict[str, Any]]:
    # Raw arrow rows keep images as {bytes, path} structs: nothing is decoded here.
    return dataset.with_format("arrow")[:].to_pylist()


def load_snapshot_subject(root: Path, subject: str, split: str, cache_dir: Optional[str]) -> list[dict[str, Any]]:
    import datasets

    folder = root / subject
    files = sorted(folder.glob(f"{split}-*.parquet"))
    if not files:
        if not folder.is_dir():
            raise TaskError(
                f"{root} has no folder {subject!r}: --data must be a snapshot of MMMU/MMMU with one folder per "
                f"subject (or select subjects with --task-arg subjects=…)"
            )
        raise TaskError(f"{folder} has no {split}-*.parquet file: this snapshot lacks the {split!r} split")
    try:
        dataset = datasets.load_dataset(
            "parquet", data_files={split: [str(f) for f in files]}, split=split, cache_dir=cache_dir
        )
    except Exception as exc:  # datasets raises many types for unreadable files
        raise TaskError(f"cannot read {folder}/{split}-*.parquet: {type(exc).__name__}: {exc}") from exc
    return _rows(dataset)


@functools.lru_cache(maxsize=None)
def _hub_host_reachable(host: str, port: int) -> Optional[str]:
    """None if a TCP connection to the hub opens within a few seconds, else why not. Probed once per process: the
    hub client would otherwise retry for half a minute, printing tracebacks, before giving up."""
    try:
        socket.create_connection((host, port), timeout=5).close()
        return None
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__


def _require_hub(hub_id: str) -> None:
    import huggingface_hub

    endpoint = urllib.parse.urlsplit(huggingface_hub.constants.ENDPOINT)
    why = _hub_host_reachable(endpoint.hostname or "huggingface.co", endpoint.port or 443)
    if why is not None:
        raise TaskError(f"cannot reach the Hugging Face hub for {hub_id!r} ({endpoint.hostname}: {why}); offline, "
                        f"pass --data DIR (a local snapshot, e.g. ../shared/mmmu_mini) or --task-arg offline=true "
                        f"to read the datasets cache")  # fmt: skip


def load_hub_subject(
    hub_id: str, subject: str, split: str, cache_dir: Optional[str], offline: bool
) -> list[dict[str, Any]]:
    import datasets

    if not offline:
        _require_hub(hub_id)
    try:
        with _hub_offline(offline):
            dataset = datasets.load_dataset(hub_id, subject, split=split, cache_dir=cache_dir)
    except ConnectionError as exc:
        if offline:
            raise TaskError(
                f"cannot load {hub_id} config {subject!r} split {split!r} (is it in the datasets cache? pass "
                f"--task-arg cache_dir=… if it is elsewhere): {exc}"
            ) from exc
        raise TaskError(
            f"cannot reach {hub_id!r} on the Hugging Face hub ({exc}). Offline, use --task-arg offline=true to "
            f"read the datasets cache, or --data DIR for a local snapshot"
        ) from exc
    except Exception as exc:
        hint = " (is it in the datasets cache? pass --task-arg cache_dir=… if it is elsewhere)" if offline else ""
        raise TaskError(f"cannot load {hub_id} config {subject!r} split {split!r}{hint}: {type(exc).__name__}: {exc}") from exc
    return _rows(dataset)


def _is_local(data: Optional[str]) -> bool:
    return bool(data) and (Path(data).exists() or data.startswith((".", "/", "~")))  # type: ignore[union-attr]


def load_rows(
    data: Optional[str], subjects: tuple[str, ...], split: str, cache_dir: Optional[str], offline: bool
) -> list[dict[str, Any]]:
    """Rows of the selected subjects, subjects in the given order and rows in file order."""
    import datasets

    local = _is_local(data)
    root = Path(data).expanduser() if local else None  # type: ignore[arg-type]
    if root is not None and not root.is_dir():
        raise TaskError(f"--data {data}: no such folder")
    rows: list[dict[str, Any]] = []
    # One bar over subjects instead of datasets' bar per subject.
    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        for subject in tqdm(subjects, desc=f"loading MMMU {split}", unit="subject", disable=None, leave=False):
            if root is not None:
                rows.extend(load_snapshot_subject(root, subject, split, cache_dir))
            else:
                rows.extend(load_hub_subject(data or DEFAULT_HUB_ID, subject, split, cache_dir, offline))
    finally:
        if was_enabled:
            datasets.enable_progress_bars()
    return rows
