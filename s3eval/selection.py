"""Which samples of a task a run (or a viewer) takes: all of them, the first N (``--limit``), N spread across the
task's groups (``--limit N --stratified``), or the items named (``--samples ID…``, ``@file``).

- Named items: an id names a sample (``validation_Art_3``, a dialog turn ``d1/2``) or a whole unit (a dialog
  ``d1``, every rotation of a circular question). A dialog turn brings its earlier turns along, since the model
  answers it after them. The order stays canonical (the random parse fallback is drawn in that order).
- Stratified: whole units (an item; a dialog; a circular question's rotations), dealt round-robin over the groups
  of the task's first group kind (MMMU subjects, a set's categories, dialog types) in canonical order — the first
  unit of every group, then the second, … — until N units are taken; kept in canonical order. Deterministic: the
  same N gives the same items, and a larger N only adds items.
- ``--limit`` without ``--stratified`` keeps its meaning: the first N samples in canonical order.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Optional, Sequence

from .errors import S3evalError
from .types import Sample

if TYPE_CHECKING:
    from .config import RunConfig
    from .task import Task


class SelectionError(S3evalError, ValueError):
    pass


def read_ids(tokens: Iterable[str]) -> list[str]:
    """Sample ids from command-line tokens: an id, several separated by commas, or ``@FILE`` (ids separated by
    newlines, commas or spaces; ``#`` starts a comment). Order kept, duplicates dropped."""
    out: dict[str, None] = {}
    for token in tokens:
        if token.startswith("@"):
            path = Path(token[1:])
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or exc
                raise SelectionError(f"cannot read sample ids from {path}: {reason}") from exc
            lines = [line.split("#", 1)[0] for line in text.splitlines()]
            pieces = [p for line in lines for p in line.replace(",", " ").split()]
            if not pieces:
                raise SelectionError(f"{path} lists no sample ids")
        else:
            pieces = [p.strip() for p in token.split(",")]
        out.update((p, None) for p in pieces if p)
    return list(out)


def _unit(sample: Sample) -> str:
    return sample.unit or sample.id


def by_ids(samples: Sequence[Sample], ids: Iterable[str]) -> list[Sample]:
    """The samples named by ``ids`` (sample ids or unit ids), with the earlier turns of named dialog turns, in
    canonical order. Ids this task does not have are ignored (``check`` reports ids no task has)."""
    wanted = set(ids)
    by_id = {s.id: s for s in samples}
    keep = {s.id for s in samples if s.id in wanted or (s.unit is not None and s.unit in wanted)}
    for sample_id in list(keep):
        previous = by_id[sample_id].follows
        while previous is not None and previous in by_id and previous not in keep:
            keep.add(previous)
            previous = by_id[previous].follows
    return [s for s in samples if s.id in keep]


def stratified(samples: Sequence[Sample], n: int, group_of: Callable[[Sample], str]) -> list[Sample]:
    """``n`` whole units dealt round-robin over the groups (a unit's group: its first sample's), in canonical
    order."""
    units: dict[str, list[Sample]] = {}
    for sample in samples:
        units.setdefault(_unit(sample), []).append(sample)
    groups: dict[str, list[str]] = {}
    for unit, members in units.items():
        groups.setdefault(group_of(members[0]), []).append(unit)
    chosen: set[str] = set()
    depth = 0
    while len(chosen) < n and any(depth < len(g) for g in groups.values()):
        for members in groups.values():
            if depth < len(members) and len(chosen) < n:
                chosen.add(members[depth])
        depth += 1
    return [s for s in samples if _unit(s) in chosen]


def select(samples: Sequence[Sample], limit: Optional[int] = None, stratify: bool = False,
           ids: Optional[Sequence[str]] = None,
           group_of: Optional[Callable[[Sample], str]] = None) -> list[Sample]:  # fmt: skip
    """The samples a run takes: those named by ``ids`` (all if None), then ``limit`` of them — the first N, or with
    ``stratify`` N units spread over the groups ``group_of`` gives."""
    chosen = list(samples) if ids is None else by_ids(samples, ids)
    if not limit:
        return chosen
    if stratify:
        return stratified(chosen, limit, group_of or (lambda s: ""))
    return chosen[:limit]


def group_of(task: "Task") -> Callable[[Sample], str]:
    """The stratum of a sample: its group of the task's first (most specific) group kind."""
    kind = task.group_kinds[0] if task.group_kinds else None
    if kind is None:
        return lambda sample: ""
    return lambda sample: str(task.groups(sample).get(kind, ""))


def for_task(task: "Task", samples: Sequence[Sample], config: "RunConfig") -> list[Sample]:
    """The samples of ``task`` that a run of ``config`` takes (``--samples``, ``--limit``, ``--stratified``)."""
    return select(samples, config.limit, config.stratified, config.samples, group_of(task))


def check(ids: Optional[Sequence[str]], tasks: Sequence["Task"], selected: Sequence[Sequence[Sample]]) -> None:
    """With ``--samples``: every id must name an item of some task, and every task must get at least one item."""
    if ids is None:
        return
    found = {name for samples in selected for s in samples for name in (s.id, s.unit) if name is not None}
    missing = [i for i in ids if i not in found]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise SelectionError(f"--samples: no task of the run has {shown} "
                             f"(tasks: {', '.join(t.name for t in tasks)})")  # fmt: skip
    empty = [t.name for t, samples in zip(tasks, selected) if not samples]
    if empty:
        raise SelectionError(f"--samples: task(s) {', '.join(empty)} have none of the given items; "
                             f"run only the tasks the ids belong to")  # fmt: skip
