"""Score saved responses without a model: s3eval's own per-sample JSONL (a file or a run directory), or a
task's foreign prediction formats (e.g. official MMMU outputs) through ``Task.import_predictions``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from .errors import S3evalError
from .media_ablation import ABLATION_SETTINGS
from .registry import UnknownNameError
from .results import TaskResult, build_result, records_file_name
from .scoring import score_records
from .storage import StorageError, read_json, read_jsonl
from .task import Task, TaskError, TaskInfo, TaskOptions
from .task_registry import build_task, load_definitions
from .types import Record


class RescoreError(S3evalError, ValueError):
    pass


@dataclass
class Rescored:
    result: TaskResult
    records: list[Record]
    # How the task was rebuilt ("task rebuilt from the run's arguments [+ flags]" or "… from flags"), or why it
    # could not be (then settings, unit and grouping are the recorded ones and the headline the mean score).
    source: str


def own_record_files(path: Path) -> list[Path]:
    """The s3eval per-sample files at ``path`` (a ``samples_*.jsonl`` or a run directory); [] if none."""
    path = Path(path)
    if path.is_file() and path.suffix == ".jsonl":
        return [path]
    if path.is_dir():
        return sorted(path.glob("samples_*.jsonl"))
    return []


def load_own_records(files: Sequence[Path]) -> dict[str, list[Record]]:
    """Records per task, each task's records in file order (the canonical order they were written in)."""
    by_task: dict[str, list[Record]] = {}
    for file in files:
        for number, row in enumerate(read_jsonl(file), start=1):
            try:
                record = Record.from_dict(row)
            except (TypeError, ValueError) as exc:
                raise RescoreError(f"{file}: record {number} is not an s3eval record ({exc})") from exc
            by_task.setdefault(record.task, []).append(record)
    return by_task


class StoredTask(Task):
    """A task that cannot be rebuilt here (its definition file is gone, say), standing in with what its run
    recorded; it scores records but has no data."""

    def __init__(self, name: str, recorded: Mapping[str, Any]) -> None:
        self.info = TaskInfo(name=name, description="(as recorded)", size=None, metric="", data_source="")
        self.unit = recorded.get("unit", "item")
        self.leaderboard_group = recorded.get("leaderboard_group")
        self.has_gold = recorded.get("has_gold", True)
        self._settings = dict(recorded.get("settings", {}))

    def settings(self) -> dict[str, Any]:
        return self._settings

    def samples(self) -> list:
        raise TaskError(f"task {self.name!r} is only known from its records")

    def build_request(self, sample):
        raise TaskError(f"task {self.name!r} is only known from its records")

    def groups(self, sample) -> dict[str, str]:
        return {}


@dataclass(frozen=True)
class TaskOverrides:
    """What ``rescore`` was told on the command line; it overrides what the run recorded."""

    args: Mapping[str, Any] = field(default_factory=dict)
    data: Optional[str] = None


def _recorded(run_dir: Path) -> dict:
    path = run_dir / "results.json"
    return read_json(path) if path.is_file() else {}


def rebuild_task(name: str, run: Mapping[str, Any],
                 overrides: TaskOverrides) -> tuple[Task, dict, Optional[str], str]:  # fmt: skip
    """The task as its run (``results.json``) built it — recorded arguments and definition files, ``overrides``
    on top — with the arguments, data and a line saying how; used by ``rescore`` and ``view``."""
    recorded = run.get("tasks", {}).get(name, {})
    args = {**recorded.get("arguments", _config_args(run, name)), **overrides.args}
    data = overrides.data or recorded.get("data", run.get("config", {}).get("data"))
    given = ("the run's arguments" + (" + flags" if overrides.args else "")) if run else "flags"
    source = f"task rebuilt from {given}"
    for definition in run.get("definitions", []):
        if Path(definition).is_file():
            load_definitions(Path(definition))
    try:
        return build_task(name, TaskOptions(data=data, args=args)), args, data, source
    except (UnknownNameError, TaskError) as exc:
        return StoredTask(name, recorded), args, data, f"task not rebuilt ({exc}): scored with the recorded settings"


def _config_args(run: Mapping[str, Any], name: str) -> dict:
    """A task's arguments in a results.json written before TaskResult recorded them: from the run's config."""
    for spec in run.get("config", {}).get("tasks", []):
        if spec.get("name") == name:
            return dict(spec.get("args", {}))
    return {}


def rescore_records(task: Task, records: list[Record], seed: int, drop_missing: bool, *, arguments: Mapping[str, Any],
                    data: Optional[str], records_file: str, source: str) -> Rescored:  # fmt: skip
    if drop_missing:  # the official eval-only script silently leaves unpredicted ids out of the denominator
        records = [r for r in records if r.error_kind != "missing"]
    score_records(records, seed=seed)
    result = build_result(task, records, arguments=arguments, data=data, records_file=records_file)
    return Rescored(result, records, source)


def rescore_path(path: Path, task_name: Optional[str] = None, overrides: TaskOverrides = TaskOverrides(),
                 answer_key: Optional[Path] = None, seed: int = 42,
                 drop_missing: bool = False) -> list[Rescored]:  # fmt: skip
    """Rescore s3eval's own records (a run directory or a samples file), rebuilding each task from the arguments
    its run recorded; or a foreign prediction file of ``task_name``'s format."""
    files = own_record_files(path)
    if files:
        try:
            by_task = load_own_records(files)
        except StorageError as exc:
            raise RescoreError(str(exc)) from exc
        if task_name is not None:
            if task_name not in by_task:
                raise RescoreError(f"{path} holds no records of task {task_name!r} (it has {sorted(by_task)})")
            by_task = {task_name: by_task[task_name]}
        run = _recorded(files[0].parent)
        out = []
        for name, records in by_task.items():
            task, args, data, source = rebuild_task(name, run, overrides)
            rescored = rescore_records(task, records, seed, drop_missing, arguments=args, data=data,
                                       records_file=records_file_name(name), source=source)  # fmt: skip
            # The responses answered what the run sent: its media ablation stays part of what they score.
            sent = run.get("tasks", {}).get(name, {}).get("settings", {})
            rescored.result.settings.update({k: sent[k] for k in ABLATION_SETTINGS if k in sent})
            out.append(rescored)
        return out
    if not Path(path).exists():
        raise RescoreError(f"{path}: no such file or folder")
    if task_name is None:
        raise RescoreError(f"{path} is not s3eval output; name the task whose format it is with --task")
    task = build_task(task_name, TaskOptions(data=overrides.data, args=overrides.args))
    records = task.import_predictions(Path(path), answer_key)
    return [rescore_records(task, records, seed, drop_missing, arguments=overrides.args, data=overrides.data,
                            records_file=Path(path).name, source="task rebuilt from flags")]  # fmt: skip
