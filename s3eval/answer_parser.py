"""The one shared answer parser: multiple-choice letters and open answers.

The rules replicate the official MMMU evaluation (`eval_utils.py`, unchanged since MMMU@78e9c75) byte for
byte, quirks included, because a score is only comparable to published numbers if every response is parsed
the same way. Any behavioural change here must bump ``PARSER_VERSION``: the version is written into every
per-sample record, results file and leaderboard row.

Quirks kept on purpose (see ``tests/test_answer_parser.py`` for a case of each):
- end stripping removes one character type at a time, never whitespace;
- the article "A" matches the space rule; lowercase letters never match;
- option text is matched only when the padded response has more than 5 whitespace tokens;
- ties go to the candidate whose last occurrence starts latest (first candidate on equal positions);
- an unparseable response gets a random letter from a caller-owned RNG (the official script seeds the
  module-level ``random`` with 42 once, so callers must draw in the official order to reproduce it);
- open answers: indicator words are plain substrings, numbers are rounded to 2 decimals, strings match
  by containment, and strings never match floats.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Mapping, Sequence, Union

PARSER_NAME = "s3eval-answer-parser"
PARSER_VERSION = "1.0.0"

# The official script seeds Python's module-level `random` with this value at import time.
OFFICIAL_FALLBACK_SEED = 42

_END_STRIP_CHARS = (",", ".", "!", "?", ";", ":", "'")
_MIN_TOKENS_FOR_CONTENT_RULE = 5  # the content rule needs strictly more tokens than this

OpenValue = Union[str, float]


@dataclass(frozen=True)
class ChoiceParse:
    """Outcome of parsing one multiple-choice response."""

    answer: str
    rule: str  # "bracket", "space", "content" or "fallback"
    candidates: tuple[str, ...]

    @property
    def fallback(self) -> bool:
        return self.rule == "fallback"


def new_fallback_rng(seed: int = OFFICIAL_FALLBACK_SEED) -> random.Random:
    """A dedicated RNG that draws exactly like the official script's seeded module-level `random`."""
    return random.Random(seed)


def parse_choice(
    response: str,
    letters: Sequence[str],
    option_texts: Mapping[str, str],
    rng: random.Random,
) -> ChoiceParse:
    """Parse a multiple-choice response into one of ``letters`` (official rules).

    ``rng`` is consumed (one ``choice`` call) only when no rule finds a candidate.
    """
    for char in _END_STRIP_CHARS:
        response = response.strip(char)
    padded = f" {response} "

    candidates = [letter for letter in letters if f"({letter})" in padded]
    rule = "bracket"
    if not candidates:
        candidates = [letter for letter in letters if f" {letter} " in padded]
        rule = "space"
    if not candidates and len(padded.split()) > _MIN_TOKENS_FOR_CONTENT_RULE:
        lowered = padded.lower()
        candidates = [letter for letter, text in option_texts.items() if text.lower() in lowered]
        rule = "content"
    if not candidates:
        return ChoiceParse(answer=rng.choice(list(letters)), rule="fallback", candidates=())
    if len(candidates) == 1:
        return ChoiceParse(answer=candidates[0], rule=rule, candidates=tuple(candidates))

    if rule == "bracket":
        positions = [padded.rfind(f"({c})") for c in candidates]
    elif rule == "space":
        positions = [padded.rfind(f" {c} ") for c in candidates]
    else:
        lowered = padded.lower()
        positions = [lowered.rfind(option_texts[c].lower()) for c in candidates]
    best = max(range(len(candidates)), key=lambda i: (positions[i], -i))
    return ChoiceParse(answer=candidates[best], rule=rule, candidates=tuple(candidates))


def score_choice(gold: str | Sequence[str], prediction: str) -> bool:
    """Exact letter match; a list gold accepts any of its elements."""
    if isinstance(gold, str):
        return gold == prediction
    return any(g == prediction for g in gold)


# ----------------------------------------------------------------------------------------------- open answers

_INDICATORS = ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ")
_LAST_PIECE_EXTRA_INDICATOR = "="
_TRIVIAL_TAILS = frozenset({":", ",", ".", "!", "?", ";", "'"})
# Lowercase text never has an uppercase letter after ". ", so in practice only newlines split.
_PIECE_SPLIT = re.compile(r"\.\s(?=[A-Z])|\n")
_NUMBER_WITH_COMMAS = re.compile(r"-?\b\d{1,3}(?:,\d{3})+\b")
_NUMBER_SCIENTIFIC = re.compile(r"-?\d+(?:\.\d+)?[eE][+-]?\d+")
_NUMBER_SIMPLE = re.compile(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])")


def _as_number(text: str) -> float | None:
    # Python float() semantics on purpose: "inf", "nan", "1e5", "1_000" and non-ASCII digits all parse.
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def normalize_open_value(text: str) -> list[OpenValue]:
    """Official normalisation: numbers become floats rounded to 2 decimals, other strings are lowercased and
    a single character becomes two padded variants (so "a" cannot match inside every word)."""
    text = text.strip()
    number = _as_number(text)
    if number is not None:
        return [round(number, 2)]
    text = text.lower()
    if len(text) == 1:
        return [" " + text, text + " "]
    return [text]


def extract_numbers(text: str) -> list[str]:
    """All number strings found by the three official patterns, in pattern order (fragments included)."""
    return (
        _NUMBER_WITH_COMMAS.findall(text)
        + _NUMBER_SCIENTIFIC.findall(text)
        + _NUMBER_SIMPLE.findall(text)
    )


def key_subresponses(response: str) -> list[str]:
    """The tails after indicator words that probably hold the answer; the whole text if none."""
    normalized = response.strip().strip(".").lower()
    pieces = _PIECE_SPLIT.split(normalized)
    keys: list[str] = []
    for index, piece in enumerate(pieces):
        indicators = _INDICATORS
        if index == len(pieces) - 1:
            indicators = _INDICATORS + (_LAST_PIECE_EXTRA_INDICATOR,)
        shortest: str | None = None
        for indicator in indicators:
            if indicator not in piece:
                continue
            tail = piece.split(indicator)[-1].strip()
            # An empty best is falsy, so the next indicator found replaces it whatever its length.
            if not shortest or len(tail) < len(shortest):
                shortest = tail
        if shortest and shortest.strip() not in _TRIVIAL_TAILS:
            keys.append(shortest)
    return keys or [normalized]


def _sort_key(value: OpenValue) -> tuple[int, str]:
    return (0, repr(value)) if isinstance(value, float) else (1, value)


def parse_open(response: str) -> list[OpenValue]:
    """Candidate answers of an open response: key sub-responses, the numbers in them, normalised and
    de-duplicated. The official code returns them in set order; the result is sorted here so that records
    are deterministic (the order never affects scoring)."""
    keys = key_subresponses(response)
    raw = list(keys)
    for key in keys:
        raw.extend(extract_numbers(key))
    values: list[OpenValue] = []
    for item in raw:
        values.extend(normalize_open_value(item))
    unique: dict[tuple[type, OpenValue], OpenValue] = {}
    for value in values:
        unique.setdefault((type(value), value), value)
    return sorted(unique.values(), key=_sort_key)


def score_open(gold: str | Sequence[str], predictions: Sequence[OpenValue]) -> bool:
    """Official open matching: a string prediction must contain a string gold; a float must equal a float gold."""
    golds: list[OpenValue] = []
    for item in [gold] if isinstance(gold, str) else gold:
        golds.extend(normalize_open_value(item))
    for prediction in predictions:
        if isinstance(prediction, str):
            if any(isinstance(g, str) and g in prediction for g in golds):
                return True
        elif prediction in golds:
            return True
    return False
