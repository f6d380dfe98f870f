"""Registry of task factories. Task plugins live in the top-level ``tasks`` package and register themselves
with ``@register_task``; ``discover`` imports them on first use. Plugins must stay light at import time
(no torch, no data loading) so that ``s3eval tasks`` is instant."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

from .registry import Registry
from .task import Task, TaskInfo, TaskOptions

TaskFactory = Callable[[TaskOptions], Task]

_FACTORIES: Registry[TaskFactory] = Registry("task")
_INFOS: dict[str, TaskInfo] = {}
_discovered = False


def register_task(info: TaskInfo) -> Callable[[TaskFactory], TaskFactory]:
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
