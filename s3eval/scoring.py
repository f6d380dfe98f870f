"""Score records with the shared, versioned metrics, in canonical order (the parser's random fallback is one
stream per task, exactly like the official MMMU script's module-level ``random``).

A record names its metric (``Record.metric``); ``None`` is the shared answer parser by answer type, the
MMMU protocol. Metrics joined with ``+`` are averaged: the AI Journey contest scores each answer by
(METEOR + hidden metric) / 2, here ``meteor+likelihood_proxy``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Optional, Sequence

from . import answer_parser as ap
from .errors import S3evalError
from .metrics import circular, likelihood, meteor, short_answer, token_set, vqa_accuracy
from .registry import did_you_mean
from .types import Record, letters_for


class MetricError(S3evalError, ValueError):
    pass


RIGHT_WRONG = "right_wrong"
GRADED = "graded"
MetricKind = Literal["right_wrong", "graded"]
KINDS = (RIGHT_WRONG, GRADED)


@dataclass(frozen=True, kw_only=True)
class Metric:
    """A per-item metric as declared where it is defined (``@metric``); readers read these fields."""

    name: str
    version: str
    # right_wrong: every item scores 0 or 1 and ``Record.correct`` is meaningful; graded: a value in [0, 1].
    kind: MetricKind
    # How item values combine into the task's accuracy: "mean" over the scored items (Σ score / n).
    aggregation: str = "mean"
    needs_likelihood: bool = False  # scores candidates rather than (or besides) the generated response
    description: str
    # (record, fallback rng) -> the value; may set ``parsed`` / ``parse_rule`` / ``fallback`` on the record
    value: Callable[[Record, object], Optional[float]]


_METRICS: dict[str, Metric] = {}


def metric(*, name: str, version: str, kind: MetricKind, description: str, needs_likelihood: bool = False,
           aggregation: str = "mean") -> Callable[[Callable], Callable]:  # fmt: skip
    """Declare the decorated ``(record, rng) -> value`` function as the metric ``name``."""
    if kind not in KINDS:
        raise ValueError(f"metric {name!r}: kind must be one of {KINDS}, got {kind!r}")

    def wrap(fn: Callable[[Record, object], Optional[float]]) -> Callable[[Record, object], Optional[float]]:
        if name in _METRICS:
            raise ValueError(f"metric {name!r} is declared twice")
        _METRICS[name] = Metric(name=name, version=version, kind=kind, aggregation=aggregation,
                                needs_likelihood=needs_likelihood, description=description, value=fn)  # fmt: skip
        return fn

    return wrap


def _golds(record: Record) -> list[str]:
    return [record.gold] if isinstance(record.gold, str) else list(record.gold)


def _gold(record: Record):
    return record.gold if isinstance(record.gold, str) else tuple(record.gold)


@metric(name="parser", version=ap.PARSER_VERSION, kind=RIGHT_WRONG,
        description="the shared MMMU answer parser: letters for multiple choice (seeded random fallback), "
                    "numbers/strings for open questions")  # fmt: skip
def _parser(record: Record, rng) -> Optional[float]:
    if record.answer_type == "choice":
        if record.response_kind == "prediction":
            # Official eval-only input: the letter is taken as given, never parsed.
            record.parsed, record.parse_rule = record.response, "given"
        else:
            letters = letters_for(len(record.choices))
            result = ap.parse_choice(record.response, letters, dict(zip(letters, record.choices)), rng)
            record.parsed, record.parse_rule, record.fallback = result.answer, result.rule, result.fallback
        return None if record.gold is None else float(ap.score_choice(_gold(record), record.parsed))
    record.parsed, record.parse_rule = ap.parse_open(record.response), "open"
    return None if record.gold is None else float(ap.score_open(_gold(record), record.parsed))


@metric(name="circular_choice", version=circular.VERSION, kind=RIGHT_WRONG,
        description="one rotation of a circular (MMBench) question: the letter read as VLMEvalKit's exact matching "
                    "reads it; an answer that cannot be read fails the rotation (no random fallback)")  # fmt: skip
def _circular_choice(record: Record, rng) -> Optional[float]:
    record.parsed, record.parse_rule = circular.read_choice(record.response or "", record.choices)
    return None if record.gold is None else float(record.parsed is not None and record.parsed in _golds(record))


@metric(name="choice_likelihood", version=likelihood.VERSION, kind=RIGHT_WRONG, needs_likelihood=True,
        description="multiple choice by likelihood: the option text with the lowest mean NLL is the answer")
def _choice_likelihood(record: Record, rng) -> Optional[float]:
    best = likelihood.best_candidate(record.candidate_nll)
    record.parsed = None if best is None else letters_for(len(record.choices))[best]
    record.parse_rule = "likelihood"
    if record.gold is None:
        return None
    return float(record.parsed is not None and record.parsed in _golds(record))


@metric(name="likelihood_proxy", version=likelihood.VERSION, kind=RIGHT_WRONG, needs_likelihood=True,
        description="PROXY of the AI Journey hidden metric: 1 if the reference answer is more likely (lower mean "
                    "NLL) than every distractor")  # fmt: skip
def _likelihood_proxy(record: Record, rng) -> Optional[float]:
    return likelihood.reference_wins(record.candidate_nll)


def _text_metric(fn: Callable[[str, list[str], Record], float]) -> Callable[[Record, object], Optional[float]]:
    def value(record: Record, rng) -> Optional[float]:
        record.parsed = record.response
        return None if record.gold is None else float(fn(record.response or "", _golds(record), record))

    return value


for _version, _about in vqa_accuracy.VERSIONS.items():
    metric(name=f"vqa_accuracy_{_version}", version=vqa_accuracy.implementation_version(_version), kind=GRADED,
           description=f"VQA soft accuracy as the official vqaEval.py {_about}: min(1, matches/3), leave-one-out "
                       "mean")(_text_metric(lambda p, golds, r, v=_version: vqa_accuracy.soft_accuracy(p, golds, v)))
metric(name="exact_match", version=short_answer.VERSION, kind=RIGHT_WRONG,
       description="normalised exact match (case, punctuation, yes/no synonyms), any gold")(
    _text_metric(lambda p, golds, r: short_answer.exact_match(p, golds)))
metric(name="token_set", version=token_set.VERSION, kind=RIGHT_WRONG,
       description="token-set string match: all answer tokens present, no token of a wrong choice")(
    _text_metric(lambda p, golds, r: max(token_set.token_set_match(p, g, r.choices) for g in golds)))
metric(name="meteor", version=meteor.VERSION, kind=GRADED, description="METEOR against the references (best reference)")(
    _text_metric(lambda p, golds, r: meteor.meteor(p, golds)))


def metrics() -> dict[str, Metric]:
    return _METRICS


# Records written before a metric was split into versions name it without one.
LEGACY_NAMES = {"vqa_accuracy": f"vqa_accuracy_{vqa_accuracy.LEGACY_VERSION}"}


def resolve(name: Optional[str]) -> list[Metric]:
    """The metrics a record's metric name stands for (``a+b`` for an average); a clear error if unknown."""
    table = metrics()
    parts = [LEGACY_NAMES.get(p, p) for p in (name or "parser").split("+")]
    for part in parts:
        if part not in table:
            raise MetricError(f"unknown metric {part!r}: {did_you_mean(part, sorted(table))}")
    return [table[p] for p in parts]


def version_of(name: Optional[str]) -> str:
    return "+".join(m.version for m in resolve(name))


def kind_of(name: Optional[str]) -> MetricKind:
    """right_wrong when every part of the (possibly combined) metric is; their average is graded otherwise."""
    return RIGHT_WRONG if all(m.kind == RIGHT_WRONG for m in resolve(name)) else GRADED


def score_records(records: Sequence[Record], seed: int = ap.OFFICIAL_FALLBACK_SEED) -> None:
    """Fill ``parsed``, ``parse_rule``, ``fallback``, ``score``, ``scores`` and ``correct`` of every record,
    in the given order. A failed record scores 0 (counted wrong)."""
    rng = ap.new_fallback_rng(seed)
    for record in records:
        parts = resolve(record.metric)
        record.parser, record.parser_version = ap.PARSER_NAME, ap.PARSER_VERSION
        record.metric_version = "+".join(m.version for m in parts)
        record.parsed, record.parse_rule, record.fallback, record.scores = None, None, False, {}
        binary = all(m.kind == RIGHT_WRONG for m in parts)
        if record.error is not None or (record.response is None and not all(m.needs_likelihood for m in parts)):
            # A failed sample counts as wrong (a bad row may have lost its gold too).
            record.score, record.correct = 0.0, False if binary else None
            continue
        values = [m.value(record, rng) for m in parts]
        if len(parts) > 1:
            record.scores = {m.name: v for m, v in zip(parts, values) if v is not None}
        if any(v is None for v in values):
            # No gold (a withheld split), or a candidate the backend could not score.
            record.score = None if record.gold is None else 0.0
            record.correct = None if record.gold is None or not binary else False
            continue
        record.score = sum(values) / len(values)  # type: ignore[arg-type]
        record.correct = (record.score == 1.0) if binary else None
