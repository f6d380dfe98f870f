"""The task plugin interface. A task turns a dataset into samples, samples into model requests, and says how
records are grouped for aggregation; parsing and scoring are shared (``s3eval.scoring``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from .aggregate import record_score
from .errors import S3evalError
from .registry import did_you_mean
from .results import Headline, Unit, item_kind, mean_headline
from .scoring import RIGHT_WRONG
from .types import Record, Request, Sample


class TaskError(S3evalError, ValueError):
    """Bad task input (arguments, data, files); the message names the culprit and the fix."""


@dataclass(frozen=True)
class TaskInfo:
    """Static facts about a registered task, available without loading any data."""

    name: str
    description: str
    size: Optional[int]  # samples in the full split, if known
    metric: str
    data_source: str
    arguments: Mapping[str, str] = field(default_factory=dict)  # accepted --task-arg names and their help


@dataclass(frozen=True)
class TaskOptions:
    """What the user passes to a task: a data location override and free-form task arguments."""

    data: Optional[str] = None
    args: Mapping[str, Any] = field(default_factory=dict)

    def check_known(self, info: TaskInfo) -> None:
        for key in self.args:
            if key not in info.arguments:
                raise TaskError(
                    f"task {info.name!r} has no argument {key!r}: {did_you_mean(key, list(info.arguments))}"
                )


def default_headline(records: Sequence[Record], metric: str = "accuracy") -> Headline:
    """The mean per-item score over the scored items (failed items count 0; items without a gold are left out)."""
    kind = item_kind(records)
    scores = {r.sample_id: record_score(r) for r in records if r.score is not None or r.correct is not None}
    what = "share of items answered right" if kind == RIGHT_WRONG else "mean per-item score"
    return mean_headline(metric, scores, kind=kind, unit="item",
                         definition=f"{what}; failed items count 0, parser fallbacks as drawn")  # fmt: skip


class Task(ABC):
    info: TaskInfo
    # Group kinds used for aggregation, most specific first (e.g. subject, discipline).
    group_kinds: tuple[str, ...] = ()
    # The group kind whose accuracies go into the leaderboard row.
    leaderboard_group: Optional[str] = None
    has_gold: bool = True
    # Display order of group values per kind (e.g. disciplines as the official table lists them).
    group_order: Mapping[str, Sequence[str]] = {}
    # The independent unit: "item", or "question"/"dialog" where several records belong together (``Sample.unit``).
    unit: Unit = "item"

    @property
    def name(self) -> str:
        return self.info.name

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """Everything that changes prompts or golds (split, prompt mode, answer-key version, …); recorded."""

    @abstractmethod
    def samples(self) -> list[Sample]:
        """All samples in canonical order; the random parse fallback is consumed in this order."""

    @abstractmethod
    def build_request(self, sample: Sample) -> Request:
        ...

    @abstractmethod
    def groups(self, sample: Sample) -> dict[str, str]:
        ...

    def metric_for(self, sample: Sample) -> Optional[str]:
        """The metric (``s3eval.scoring``) that scores this sample; None: the shared parser by answer type."""
        return None

    def headline(self, records: Sequence[Record]) -> Headline:
        """The task's main number for the leaderboard, with its definition, unit and interval, e.g. circular
        accuracy or a weighted integral score. Default: the mean per-item score."""
        return default_headline(records)

    def write_outputs(self, records: Sequence[Record], run_dir: Path) -> list[Path]:
        """Extra files for the run directory (e.g. a leaderboard submission); none by default."""
        return []

    def import_predictions(self, path: Path, answer_key: Optional[Path]) -> list[Record]:
        """Read predictions in a format foreign to s3eval (for ``rescore``), in canonical order."""
        raise TaskError(f"task {self.name!r} cannot import {path}: it reads only s3eval's own records")
