"""Checkpoint sweeps: the checkpoints of one training run evaluated with the base model and ImageBind loaded once.

Each checkpoint is an ordinary run (``runner.run``) with its own run directory, named exactly as ``s3eval run
--checkpoint CKPT`` names it, and its own leaderboard rows: an interrupted sweep resumes checkpoint by checkpoint
and response by response, and a finished checkpoint loads no weights at all. Between checkpoints only the
tokenizer, the LoRA adapter (with its full embed_tokens/lm_head copies) and the projector are swapped
(``S3Model.switch_checkpoint``); ImageBind is frozen in training, so its features are kept across the sweep and every
image and sound is encoded once. A checkpoint that fails validation is reported and skipped.

The summary (``sweep_report``) pairs each checkpoint with the previous one and with the best, per task, by unit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Sequence

from .config import ConfigError, RunConfig
from .errors import S3evalError
from .models.base import ModelError
from .provenance import canonical_hash
from .results import TaskResult
from .storage import atomic_write_json

if TYPE_CHECKING:
    from .runner import RunOutcome


class SweepError(S3evalError, ValueError):
    pass


_STEP = re.compile(r"(?:^|[-_])(\d+)$")


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    step: int


def read_step(path: Path) -> Optional[int]:
    """The training step a checkpoint folder's name ends in (``checkpoint-1200``, ``step_300``, ``ckpt-5``)."""
    found = _STEP.search(Path(path).name)
    return int(found.group(1)) if found else None


def checkpoints_from(paths: Sequence[Path], steps: Optional[Sequence[int]] = None) -> list[Checkpoint]:
    """The checkpoints in step order; steps are read from the folder names unless given (one per folder)."""
    if not paths:
        raise SweepError("no checkpoints: name checkpoint folders, give --glob 'run/checkpoint-*' or builtin:NAME")
    if steps is not None and len(steps) != len(paths):
        raise SweepError(f"--steps gives {len(steps)} steps for {len(paths)} checkpoints: give one per checkpoint")
    out = []
    for i, path in enumerate(paths):
        step = steps[i] if steps is not None else read_step(path)
        if step is None:
            raise SweepError(f"{path}: no step in the folder name (expected e.g. checkpoint-1200); pass --steps")
        out.append(Checkpoint(Path(path), step))
    seen: dict[int, Path] = {}
    for c in out:
        if c.step in seen:
            raise SweepError(f"{seen[c.step]} and {c.path} are both step {c.step}: one checkpoint per step")
        seen[c.step] = c.path
    return sorted(out, key=lambda c: c.step)


def resolve_checkpoints(given: Sequence[str], glob: Optional[str], steps: Optional[Sequence[int]],
                        base: Optional[str]) -> tuple[list[Checkpoint], Optional[str]]:  # fmt: skip
    """(checkpoints, base) from the command line: folders, a glob pattern, or one ``builtin:NAME`` series (which
    brings its own base unless ``base`` is given)."""
    if len(given) == 1 and given[0].startswith("builtin:"):
        if glob:
            raise SweepError("give either a built-in series or --glob, not both")
        from .models.s3.spec import resolve_builtin_sweep

        folders, built_base = resolve_builtin_sweep(given[0])
        return checkpoints_from(folders, steps), base or str(built_base)
    paths = [Path(p) for p in given]
    if glob:
        import glob as globbing

        matched = sorted(Path(p) for p in globbing.glob(glob) if Path(p).is_dir())
        if not matched:
            raise SweepError(f"--glob {glob!r} matches no folder")
        paths += matched
    missing = [p for p in paths if not p.is_dir()]
    if missing:
        raise SweepError(f"{missing[0]}: no such checkpoint folder")
    return checkpoints_from(paths, steps), base


DONE, SKIPPED = "done", "skipped"


@dataclass
class Entry:
    """One checkpoint of the sweep: its run (``run_dir``, per-task results) or why it was skipped."""

    checkpoint: Checkpoint
    status: str  # DONE or SKIPPED
    reason: str = ""
    run_dir: Optional[Path] = None
    results: dict[str, TaskResult] = field(default_factory=dict)
    outcome: Optional[RunOutcome] = None


@dataclass
class SweepOutcome:
    folder: Path
    entries: list[Entry]


def sweep_id(config: RunConfig, checkpoints: Sequence[Checkpoint]) -> str:
    """What the sweep is: its checkpoints and steps and everything but the checkpoint that decides results."""
    shared = replace(config, model_args={k: v for k, v in config.model_args.items() if k != "checkpoint"})
    return canonical_hash({"config": shared.result_hash(),
                           "checkpoints": [[str(c.path.resolve()), c.step] for c in checkpoints]})  # fmt: skip


def run_sweep(config: RunConfig, checkpoints: Sequence[Checkpoint], *, folder: Optional[Path] = None,
              show_progress: bool = True, fresh: bool = False, fail_fast: bool = False,
              on_entry: Optional[Callable[[Entry], None]] = None) -> SweepOutcome:  # fmt: skip
    """Evaluate ``config``'s tasks on every checkpoint (``config.model_args`` give the shared base and settings),
    loading the base once. Writes ``sweep.json`` in ``folder`` (default ``<output_dir>/sweep-<id>``) after every
    checkpoint; ``on_entry`` is told of each as it finishes."""
    from .runner import run

    if config.model != "s3":
        raise ConfigError(f"sweep evaluates S³ checkpoints: --model must be s3, got {config.model!r}")
    if config.run_name is not None:
        raise ConfigError("sweep names each checkpoint's run directory itself (as `s3eval run` does): drop --run-name")
    if not config.model_args.get("base"):
        raise ConfigError("sweep needs --base DIR: the Mistral-7B-v0.1 folder every checkpoint was trained on")
    config.validate()
    folder = Path(folder) if folder else Path(config.output_dir) / f"sweep-{sweep_id(config, checkpoints)[:12]}"
    folder.mkdir(parents=True, exist_ok=True)
    entries: list[Entry] = []
    model = None
    for checkpoint in checkpoints:
        args = {**config.model_args, "checkpoint": str(checkpoint.path)}
        try:
            model = _model_for(model, args)
        except ModelError as exc:
            if isinstance(exc, _HalfSwapped):
                model = None
            entry = Entry(checkpoint, SKIPPED, reason=str(exc).replace("\n", " "))
        else:
            outcome = run(replace(config, model_args=args), model=model, show_progress=show_progress, fresh=fresh,
                          fail_fast=fail_fast)  # fmt: skip
            assert outcome is not None  # single process
            entry = Entry(checkpoint, DONE, run_dir=outcome.run_dir, results={r.task: r for r in outcome.tasks},
                          outcome=outcome)  # fmt: skip
        entries.append(entry)
        _write_state(folder, config, entries)
        if on_entry is not None:
            on_entry(entry)
    return SweepOutcome(folder, entries)


def _model_for(previous, args: dict):
    """The model of the next checkpoint: the previous one with its checkpoint swapped, or built afresh (the first,
    or after a swap failed half-way and left the loaded model in doubt)."""
    from .models.s3.model import S3Model

    if previous is None:
        return S3Model.from_args(dict(args))
    try:
        return previous.switch_checkpoint(dict(args))
    except ModelError:
        raise  # refused before anything was swapped
    except Exception as exc:  # files that validated but failed to load: the shared weights may be half-swapped
        raise _HalfSwapped(f"{args['checkpoint']}: cannot load ({type(exc).__name__}: {exc})") from exc


class _HalfSwapped(ModelError):
    """A swap that failed after it began: the loaded model is in doubt and is loaded afresh for the next one."""


def _write_state(folder: Path, config: RunConfig, entries: Sequence[Entry]) -> None:
    atomic_write_json(folder / "sweep.json", {
        "config": config.to_dict(),
        "checkpoints": [
            {"path": str(e.checkpoint.path), "step": e.checkpoint.step, "status": e.status, "reason": e.reason,
             "run_dir": str(e.run_dir) if e.run_dir else None}
            for e in entries
        ],
    })  # fmt: skip
