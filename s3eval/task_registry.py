"""Registry of task factories. Task plugins live in the top-level ``tasks`` package and register themselves
with ``@register_task``; ``discover`` imports them on first use. Plugins must stay light at import time
(no torch, no data loading) so that ``s3eval tasks`` is instant."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any, Callable, Mapping

from .names import InvalidNameError, check_name
from .registry import Registry, did_you_mean
from .task import Task, TaskError, TaskInfo, TaskOptions

TaskFactory = Callable[[TaskOptions], Task]

_FACTORIES: Registry[TaskFactory] = Registry("task")
_INFOS: dict[str, TaskInfo] = {}
_discovered = False


def register_task(info: TaskInfo) -> Callable[[TaskFactory], TaskFactory]:
    check_name(info.name, "task name")  # it names the task's files in a run directory

    def wrap(factory: TaskFactory) -> TaskFactory:
        _FACTORIES.register(info.name, factory)
        _INFOS[info.name] = info
        return factory

    return wrap


def discover() -> None:
    global _discovered
    if _discovered:
        return
    package = importlib.import_module("tasks")
    for module in pkgutil.iter_modules(package.__path__, prefix="tasks."):
        importlib.import_module(module.name)
    _discovered = True


def task_infos() -> list[TaskInfo]:
    discover()
    return [_INFOS[name] for name in _FACTORIES.names()]


def build_task(name: str, options: TaskOptions) -> Task:
    discover()
    factory = _FACTORIES.get(name)
    options.check_known(_INFOS[name])
    return factory(options)


# Task definition files: YAML that declares tasks of a format a plugin provides (e.g. a question-answering set
# in the documented JSONL layout), so registering a user's own set needs no Python.
DefinitionBuilder = Callable[[Mapping[str, Any], Path], tuple[TaskInfo, TaskFactory]]
_FORMATS: Registry[DefinitionBuilder] = Registry("task definition format")
DEFAULT_FORMAT = "vqa"
_DEFINED: dict[str, Any] = {}  # task name -> the definition that registered it


def register_definition_format(name: str, builder: DefinitionBuilder) -> None:
    _FORMATS.register(name, builder)


def load_definitions(path: Path) -> list[str]:
    """Register every task the YAML file declares (``tasks:`` list, a list, or one mapping); relative paths in
    it are relative to the file. Returns the task names."""
    import yaml

    discover()
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TaskError(f"cannot read task definitions {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise TaskError(f"task definitions {path} are not valid YAML: {exc}") from exc
    entries = data.get("tasks") if isinstance(data, Mapping) and "tasks" in data else data
    if isinstance(entries, Mapping):
        entries = [entries]
    if not isinstance(entries, list) or not entries:
        raise TaskError(f"{path}: expected a `tasks:` list of task definitions (each with name, path, …)")
    names = []
    for number, entry in enumerate(entries, start=1):
        where = f"{path}: task {number}"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise TaskError(f"{where}: a definition is a mapping with at least `name`, got {entry!r}")
        try:
            check_name(entry["name"], "`name`")
        except InvalidNameError as exc:
            raise TaskError(f"{where}: {exc}") from exc
        fmt = str(entry.get("format", DEFAULT_FORMAT))
        if fmt not in _FORMATS:
            raise TaskError(f"{where}: unknown format {fmt!r}: {did_you_mean(fmt, _FORMATS.names())}")
        identity = (fmt, dict(entry), str(path.resolve().parent))
        name = entry["name"]
        if name in _FACTORIES:
            if _DEFINED.get(name) == identity:
                names.append(name)  # the same file loaded again (e.g. run, then rescore in one process)
                continue
            raise TaskError(f"{where}: task {name!r} is already registered; choose another name")
        try:
            info, factory = _FORMATS.get(fmt)(entry, path.resolve().parent)
        except TaskError as exc:
            raise TaskError(f"{where} ({name}): {exc}") from exc
        register_task(info)(factory)
        _DEFINED[name] = identity
        names.append(name)
    return names
