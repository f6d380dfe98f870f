"""The in-process API for training loops: ``evaluate(model, tasks, output_dir)`` runs tasks on a model the caller
already holds (``LiveS3Model.wrap`` around the training process's own modules, or any ``Model``) and writes the
same run directory ``s3eval run`` writes."""

from __future__ import annotations

import contextlib
from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from .config import ConfigError, RunConfig, TaskSpec
from .models.base import Model
from .runner import RunOutcome, run

TaskArg = Union[str, TaskSpec, Mapping[str, Any]]
# Settings a caller may pass; the model and its arguments come from the model object.
_SETTINGS = {f.name for f in fields(RunConfig)} - {"model", "model_args", "tasks", "output_dir"}


def evaluate(model: Model, tasks: Sequence[TaskArg], output_dir: Union[str, Path], *, step: Optional[int] = None,
             leaderboard: Optional[str] = None, show_progress: bool = False, **settings: Any) -> RunOutcome:  # fmt: skip
    """Evaluate ``model`` on ``tasks`` (names, ``TaskSpec``s or ``{"name": …, "args": {…}}``) and write the run
    directory under ``output_dir``; returns the outcome (``.tasks``: one ``TaskResult`` per task, ``.scores``: the
    headline per task). ``step`` labels the run (``<model name>-step-<step>``; default: named after the weights'
    fingerprint). ``settings``: any other run setting (``limit``, ``media``, ``batch_size``, ``max_new_tokens``, …, as
    in a run config). No leaderboard row unless ``leaderboard`` names a CSV. A model built by
    ``LiveS3Model.wrap`` is fingerprinted afresh, put in eval mode for the evaluation and restored after it."""
    if not isinstance(model, Model):
        raise ConfigError(f"evaluate needs an s3eval model, got {type(model).__name__}: wrap training modules with "
                          "s3eval.models.s3.live.LiveS3Model.wrap(lm=…, projector=…, tokenizer=…, imagebind=…)")
    unknown = sorted(set(settings) - _SETTINGS)
    if unknown:
        from .registry import did_you_mean

        raise ConfigError(f"evaluate has no setting {unknown[0]!r}: {did_you_mean(unknown[0], sorted(_SETTINGS))}")
    refresh = getattr(model, "refresh", None)
    identity = refresh(step) if refresh else model.identity
    name = settings.pop("run_name", None)
    if name is None:
        name = f"{identity.name}-step-{step}" if step is not None else f"{identity.name}-{(identity.checkpoint_hash or 'run')[:12]}"
    config = RunConfig(model=identity.name, model_args={}, tasks=[_spec(t) for t in tasks],
                       output_dir=str(output_dir), leaderboard=leaderboard, run_name=name, **settings)  # fmt: skip
    evaluating = getattr(model, "evaluating", None)
    with evaluating() if evaluating else contextlib.nullcontext():
        outcome = run(config, model=model, show_progress=show_progress)
    assert outcome is not None  # single process
    return outcome


def _spec(task: TaskArg) -> TaskSpec:
    if isinstance(task, TaskSpec):
        return task
    if isinstance(task, str):
        return TaskSpec(task)
    if isinstance(task, Mapping) and isinstance(task.get("name"), str):
        return TaskSpec(task["name"], dict(task.get("args") or {}))
    raise ConfigError(f"a task is a name, a TaskSpec or {{'name': …, 'args': {{…}}}}, got {task!r}")
