"""Accuracy summaries: overall and per group, instance-weighted (Σ score / Σ n), as the official MMMU
aggregation does. For binary metrics the score is 1 per correct record, so this is the accuracy; for graded
metrics (VQA soft accuracy, METEOR) it is the mean score. Besides the official number every summary reports the fallback count, a strict accuracy
(fallbacks counted wrong), the expected accuracy (each fallback worth 1 / number of options) and the accuracy
over valid samples (load or model errors excluded)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Iterable, Mapping, Optional, Sequence

from .types import Record


@dataclass
class Tally:
    n: int = 0
    correct: int = 0
    score_sum: float = 0.0
    n_error: int = 0
    n_model_error: int = 0  # of n_error: generation failed (not the data, not a medium)
    n_missing: int = 0
    n_fallback: int = 0
    fallback_correct: int = 0
    fallback_expected: float = 0.0

    def add(self, record: Record) -> None:
        self.n += 1
        if record.error_kind == "missing":
            self.n_missing += 1
        elif record.error is not None:
            self.n_error += 1
            self.n_model_error += record.error_kind == "model"
        if record.correct:
            self.correct += 1
        self.score_sum += record_score(record)
        if record.fallback:
            self.n_fallback += 1
            self.fallback_correct += int(bool(record.correct))
            self.fallback_expected += _chance(record)

    def summary(self) -> dict:
        n_valid = self.n - self.n_error - self.n_missing
        strict = self.score_sum - self.fallback_correct
        return {
            **asdict(self),
            "n_valid": n_valid,
            "accuracy": _ratio(self.score_sum, self.n),
            "accuracy_valid": _ratio(self.score_sum, n_valid),
            "strict_accuracy": _ratio(strict, self.n),
            "expected_accuracy": _ratio(strict + self.fallback_expected, self.n),
        }


def record_score(record: Record) -> float:
    """The record's score; records written before graded metrics existed have only ``correct``."""
    if record.score is not None:
        return record.score
    return float(bool(record.correct))


def unit_means(records: Iterable[Record], value: Callable[[Record], float] = record_score) -> dict[str, float]:
    """Mean ``value`` (default: the score) per unit (a dialog, or a question's rotations), first-seen order;
    records without a unit are their own unit."""
    sums: dict[str, list[float]] = {}
    for record in records:
        sums.setdefault(record.unit or record.sample_id, []).append(value(record))
    return {unit: sum(values) / len(values) for unit, values in sums.items()}


def _chance(record: Record) -> float:
    """Probability that a uniformly random letter is right for this record."""
    if not record.choices or record.gold is None:
        return 0.0
    golds = {record.gold} if isinstance(record.gold, str) else set(record.gold)
    letters = [chr(ord("A") + i) for i in range(len(record.choices))]
    return sum(letter in golds for letter in letters) / len(letters)


def _ratio(a: float, b: int) -> Optional[float]:
    return a / b if b else None


def group_kinds_of(records: Iterable[Record]) -> list[str]:
    """The group kinds the records carry, in first-seen order."""
    kinds: list[str] = []
    for record in records:
        kinds.extend(k for k in record.groups if k not in kinds)
    return kinds


def summarize(
    records: Iterable[Record], group_kinds: Sequence[str], order: Mapping[str, Sequence[str]] = {}
) -> dict:
    """``{"overall": {...}, "groups": {kind: {value: {...}}}}``. Groups follow ``order[kind]`` where given
    (unlisted values last), else first-seen order."""
    overall = Tally()
    groups: dict[str, dict[str, Tally]] = {kind: {} for kind in group_kinds}
    for record in records:
        overall.add(record)
        for kind in group_kinds:
            value = record.groups.get(kind)
            if value is not None:
                groups[kind].setdefault(value, Tally()).add(record)
    def ranked(kind: str) -> list[str]:
        rank = {value: i for i, value in enumerate(order.get(kind, ()))}
        return sorted(groups[kind], key=lambda value: rank.get(value, len(rank)))

    return {
        "overall": overall.summary(),
        "groups": {kind: {v: groups[kind][v].summary() for v in ranked(kind)} for kind in group_kinds},
    }
