"""The typed result model: what a scored task is (its metric, kind, unit, headline and the arguments it was built
with) decided once, here, and written to ``results.json``. The leaderboard, ``report``, ``gate``, ``compare`` and
``rescore`` read these fields; none of them infers a fact (e.g. "graded") from the numbers.

- ``kind`` of the per-item metric: ``right_wrong`` (0 or 1 per item) or ``graded`` (a value in [0, 1]).
- ``unit``: what counts as one independent observation — ``item``, ``question`` (the rotations of one circular
  question) or ``dialog`` (the turns of one dialog). Intervals and resampling go by unit.
- ``Headline``: the task's main number, with its definition, its unit, how units combine (``mean``: the mean of
  the unit scores; ``weighted``: anything else, e.g. the contest's integral over dialog types) and its interval,
  and how to recompute it per unit (``unit_score``, ``strata``, ``strata_weights``; ``s3eval.paired``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Mapping, Optional, Sequence

import numpy as np

from .aggregate import group_kinds_of, summarize
from .errors import S3evalError
from .scoring import GRADED, RIGHT_WRONG, MetricKind, kind_of, version_of
from .stats import bootstrap_means, wilson_interval
from .types import Record

if TYPE_CHECKING:
    from .task import Task

Unit = Literal["item", "question", "dialog"]
MEAN = "mean"
WEIGHTED = "weighted"
BOOTSTRAP_RESAMPLES = 2000  # enough for a percentile interval's second digit
BOOTSTRAP_SEED = 0


class ResultsError(S3evalError, ValueError):
    pass


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    method: str  # "wilson" (k of n independent right/wrong units) or "bootstrap" (percentile, over units)
    level: float = 0.95


@dataclass(frozen=True)
class Headline:
    metric: str  # its name: accuracy, circular_accuracy, integral, …
    score: Optional[float]
    definition: str  # one sentence a reader can check the number against
    kind: MetricKind  # right_wrong: the score is k of n_units; graded: a mean (or weighting) of graded values
    unit: Unit
    n_units: int
    aggregation: str = MEAN  # MEAN: score = mean of the unit scores, so an interval over units is valid
    interval: Optional[Interval] = None
    details: Mapping[str, Any] = field(default_factory=dict)  # task-specific extras (by_type, rotation_accuracy, …)
    # Recorded so that paired tools recompute the headline per unit instead of guessing it from the task:
    # UNIT_MEAN (the mean of the unit's scored records' scores) or UNIT_ALL (1 if every record of the unit is right,
    # else 0). None: written before it was recorded (for item headlines it can only have been the mean).
    unit_score: Optional[str] = None
    # Weighted headlines: the record group kind whose values weight the units (e.g. dialog_type), and each value's
    # weight; headline = Σ over the values present of weight × mean of that value's unit scores. A unit whose
    # value has no weight is not part of the headline.
    strata: Optional[str] = None
    strata_weights: Mapping[str, float] = field(default_factory=dict)


UNIT_MEAN = "mean"
UNIT_ALL = "all"


def mean_headline(metric: str, unit_scores: Mapping[str, float], *, kind: MetricKind, unit: Unit, definition: str,
                  details: Optional[Mapping[str, Any]] = None, unit_score: str = UNIT_MEAN) -> Headline:  # fmt: skip
    """A headline that is the mean of per-unit scores, with its 95 % interval: Wilson for right/wrong scores of
    independent units, a percentile bootstrap over units (seeded) for graded ones. ``unit_score``: how the
    caller made a unit's score from its records (UNIT_MEAN or UNIT_ALL)."""
    values = list(unit_scores.values())
    score = sum(values) / len(values) if values else None
    interval = None
    if values and kind == RIGHT_WRONG:
        interval = Interval(*wilson_interval(round(sum(values)), len(values)), method="wilson")
    elif values:
        means = bootstrap_means(np.asarray(values, dtype=float), BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED)
        interval = Interval(float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975)), method="bootstrap")
    return Headline(metric, score, definition, kind, unit, len(values), MEAN, interval, dict(details or {}),
                    unit_score=unit_score)


def item_kind(records: Sequence[Record]) -> MetricKind:
    """The kind of the records' per-item metric as declared (graded if any record's metric is)."""
    return GRADED if any(kind_of(name) == GRADED for name in {r.metric for r in records}) else RIGHT_WRONG


@dataclass
class TaskResult:
    """One scored task of a run, as written under ``results.json["tasks"][task]``."""

    task: str
    arguments: dict[str, Any]  # the task's arguments as built (``--task-arg``, config ``args``), for rescore
    data: Optional[str]  # the data location it was built with
    settings: dict[str, Any]
    metric: str  # the per-item metric (``Record.metric``; ``parser`` for the shared answer parser)
    metric_version: str
    kind: MetricKind  # of the per-item metric
    unit: Unit  # the independent unit for pairing and resampling
    has_gold: bool
    leaderboard_group: Optional[str]
    summary: dict[str, Any]  # {"overall": counts and accuracies, "groups": {kind: {value: …}}}
    headline: Headline
    records: str  # the per-sample file's name in the run directory
    extra_files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, task: str, data: Mapping[str, Any], where: str) -> "TaskResult":
        """Read a task entry of ``results.json``. Entries written before this model existed are refused rather than
        guessed at: re-running their command (every response is reused) writes them anew."""
        if "headline" in data and "kind" in data:
            values = dict(data)
            values["headline"] = Headline(**{**data["headline"], "interval": _interval(data["headline"])})
            return cls(**values)
        raise ResultsError(f"{where}: task {task!r} was written by an older s3eval without the result model; run the "
                           f"run's command again: it reuses every response and rewrites results.json")  # fmt: skip


def _interval(headline: Mapping[str, Any]) -> Optional[Interval]:
    value = headline.get("interval")
    return None if value is None else Interval(**value)


def records_file_name(task: str) -> str:
    """The per-sample file of ``task`` in a run directory (``TaskResult.records``)."""
    return f"samples_{task}.jsonl"


def build_result(task: "Task", records: Sequence[Record], *, arguments: Mapping[str, Any], data: Optional[str],
                 records_file: str, extra_files: Sequence[str] = ()) -> TaskResult:  # fmt: skip
    """The result of ``task`` over its scored ``records``: the one place run and rescore assemble it."""
    kinds = list(task.group_kinds) or group_kinds_of(records)
    summary = summarize(records, kinds, task.group_order)
    metrics = sorted({r.metric or "parser" for r in records}) or ["parser"]
    return TaskResult(
        task=task.name, arguments=dict(arguments), data=data, settings=task.settings(), metric="|".join(metrics),
        metric_version="|".join(version_of(m) for m in metrics), kind=item_kind(records), unit=task.unit,
        has_gold=task.has_gold, leaderboard_group=task.leaderboard_group, summary=summary,
        headline=task.headline(records), records=records_file, extra_files=list(extra_files),
    )  # fmt: skip
