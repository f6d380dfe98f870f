"""Typed records that flow through a run: samples, model requests and responses, per-sample results."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Optional, Sequence, Union

AnswerType = Literal["choice", "open"]
Gold = Union[str, tuple[str, ...], None]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def letters_for(n: int) -> tuple[str, ...]:
    """Option letters A, B, C, … for ``n`` options (the official MMMU numbering)."""
    return tuple(chr(ord("A") + i) for i in range(n))


@dataclass(frozen=True)
class Media:
    """One image or audio clip of a sample, given either as bytes or as a file path."""

    kind: Literal["image", "audio"]
    name: str  # its name inside the sample, e.g. "image_2"
    path: Optional[str] = None
    data: Optional[bytes] = field(default=None, repr=False)

    def read_bytes(self) -> bytes:
        if self.data is not None:
            return self.data
        if self.path is None:
            raise ValueError(f"media {self.name!r} has neither bytes nor a path")
        return Path(self.path).read_bytes()

    def content_hash(self) -> str:
        return sha256_hex(self.read_bytes())


@dataclass(frozen=True)
class Sample:
    """One evaluation item as a task provides it. ``error`` marks a row that could not be loaded."""

    id: str
    text: str
    answer_type: AnswerType
    choices: tuple[str, ...] = ()
    gold: Gold = None  # None where the split withholds answers
    media: tuple[Media, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    error: Optional[str] = None

    @property
    def letters(self) -> tuple[str, ...]:
        return letters_for(len(self.choices))


@dataclass(frozen=True)
class Request:
    """What a model is asked to do for one sample: generate after ``prompt`` with ``media`` in that order."""

    task: str
    sample_id: str
    prompt: str
    media: tuple[Media, ...] = ()
    max_new_tokens: Optional[int] = None  # None: the model's default

    @property
    def prompt_hash(self) -> str:
        return sha256_hex(self.prompt.encode("utf-8"))


@dataclass(frozen=True)
class Response:
    text: Optional[str]
    error: Optional[str] = None
    seconds: float = 0.0
    error_kind: str = "model"  # "media" when an image or audio could not be decoded


@dataclass(frozen=True)
class LikelihoodRequest:
    """Score ``continuation`` as the model's answer to ``request`` (its prompt and media)."""

    request: Request
    continuation: str


@dataclass(frozen=True)
class LikelihoodResult:
    logprob: float  # natural-log probability of the continuation tokens, summed
    n_tokens: int
    error: Optional[str] = None

    @property
    def mean_nll(self) -> float:
        return -self.logprob / self.n_tokens

    @property
    def perplexity(self) -> float:
        """e^(mean NLL): perplexity as usually defined (and as the AI Journey contest's METRICS.md states)."""
        return math.exp(self.mean_nll)

    @property
    def perplexity_exp2(self) -> float:
        """2^(mean natural-log NLL): what the released S³ `get_ppl` returns. Monotonic in the perplexity, so
        rankings agree; e^NLL = value^(1/ln 2)."""
        return 2.0**self.mean_nll


@dataclass
class Record:
    """The per-sample result written to ``samples_<task>.jsonl``; enough to rescore without the dataset."""

    task: str
    sample_id: str
    answer_type: AnswerType
    choices: list[str]
    gold: Any  # str, list of str, or None
    groups: dict[str, str]
    prompt_hash: Optional[str] = None
    media_hashes: list[str] = field(default_factory=list)
    response: Optional[str] = None
    # "generated": a free-text response to parse; "prediction": an already-final prediction (an official
    # eval-only file), used verbatim for choice items and re-parsed for open ones, as the official script does.
    response_kind: Literal["generated", "prediction"] = "generated"
    parsed: Any = None
    parse_rule: Optional[str] = None
    parser: Optional[str] = None
    parser_version: Optional[str] = None
    fallback: bool = False
    correct: Optional[bool] = None  # None where there is no gold
    error: Optional[str] = None
    # "data" (bad row), "media" (undecodable image/audio), "model" (generation failed), "missing" (rescore)
    error_kind: Optional[str] = None
    seconds: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Record":
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown record fields {unknown}")
        return cls(**dict(data))


def gold_from_json(value: Any) -> Gold:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Sequence):
        return tuple(str(v) for v in value)
    raise ValueError(f"gold must be a string or a list of strings, got {value!r}")
