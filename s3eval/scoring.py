"""Parse and score records with the shared answer parser, in canonical order (the fallback RNG is one stream
per task, exactly like the official script's module-level ``random``)."""

from __future__ import annotations

from typing import Sequence

from . import answer_parser as ap
from .types import Record, letters_for


def score_records(records: Sequence[Record], seed: int = ap.OFFICIAL_FALLBACK_SEED) -> None:
    """Fill ``parsed``, ``parse_rule``, ``fallback`` and ``correct`` of every record, in the given order."""
    rng = ap.new_fallback_rng(seed)
    for record in records:
        record.parser, record.parser_version = ap.PARSER_NAME, ap.PARSER_VERSION
        record.parsed, record.parse_rule, record.fallback = None, None, False
        if record.error is not None or record.response is None:
            record.correct = False  # a failed sample counts as wrong (a bad row may have lost its gold too)
            continue
        if record.answer_type == "choice":
            _score_choice(record, rng)
        else:
            record.parsed = ap.parse_open(record.response)
            record.parse_rule = "open"
            record.correct = None if record.gold is None else ap.score_open(_gold(record), record.parsed)


def _score_choice(record: Record, rng) -> None:
    if record.response_kind == "prediction":
        # Official eval-only input: the letter is taken as given, never parsed.
        record.parsed, record.parse_rule = record.response, "given"
    else:
        letters = letters_for(len(record.choices))
        result = ap.parse_choice(record.response, letters, dict(zip(letters, record.choices)), rng)
        record.parsed, record.parse_rule, record.fallback = result.answer, result.rule, result.fallback
    record.correct = None if record.gold is None else ap.score_choice(_gold(record), record.parsed)


def _gold(record: Record):
    return record.gold if isinstance(record.gold, str) else tuple(record.gold)
