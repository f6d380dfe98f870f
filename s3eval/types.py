"""Typed records that flow through a run: samples, model requests and responses, per-sample results."""

from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Optional, Sequence, Union

AnswerType = Literal["choice", "open"]
Gold = Union[str, tuple[str, ...], None]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@functools.lru_cache(maxsize=None)
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
    """One evaluation item as a task provides it. ``error`` marks a row that could not be loaded.

    Dialog turns are samples too: ``follows`` names the previous turn's sample, whose request and the model's
    answer to it become this turn's history, and ``unit`` names the dialog. Rotated copies of one multiple-choice
    question (circular evaluation) share a ``unit`` as well."""

    id: str
    text: str
    answer_type: AnswerType
    choices: tuple[str, ...] = ()
    gold: Gold = None  # None where the split withholds answers
    media: tuple[Media, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    error: Optional[str] = None
    follows: Optional[str] = None
    unit: Optional[str] = None

    @property
    def letters(self) -> tuple[str, ...]:
        return letters_for(len(self.choices))


Part = Union[str, Media]


@dataclass(frozen=True)
class Turn:
    """An earlier replica of a dialog (its parts in order) and the model's answer to it."""

    parts: tuple[Part, ...]
    answer: str


@dataclass(frozen=True)
class Request:
    """What a model is asked to do for one sample: answer the user replica ``prompt`` + ``media`` after the
    dialog ``history``, and/or score each of ``candidates`` as the answer.

    By default the replica is the prompt text followed by the media in order; ``parts`` gives another order
    (text and media interleaved, as a dialog replica lists them) and must hold exactly ``media`` in order, its
    texts joined by newlines being ``prompt`` (``Request.of_parts`` builds such a request)."""

    task: str
    sample_id: str
    prompt: str
    media: tuple[Media, ...] = ()
    max_new_tokens: Optional[int] = None  # None: the model's default
    parts: tuple[Part, ...] = ()
    history: tuple[Turn, ...] = ()
    candidates: tuple[str, ...] = ()  # continuations to score by likelihood
    generate: bool = True  # False: only the candidates are scored

    def __post_init__(self) -> None:
        if self.parts and tuple(p for p in self.parts if isinstance(p, Media)) != self.media:
            raise ValueError(f"request {self.sample_id}: `parts` must hold exactly `media`, in order")

    @classmethod
    def of_parts(cls, task: str, sample_id: str, parts: Sequence[Part], **kwargs: Any) -> "Request":
        texts = [p for p in parts if isinstance(p, str)]
        media = tuple(p for p in parts if isinstance(p, Media))
        return cls(task, sample_id, "\n".join(texts), media, parts=tuple(parts), **kwargs)

    def query(self) -> tuple[Part, ...]:
        """The user replica in order: ``parts``, or the prompt text then the media."""
        if self.parts:
            return self.parts
        return ((self.prompt,) if self.prompt else ()) + self.media

    @property
    def prompt_hash(self) -> str:
        """Hash of what the task asks (the replica's text and layout), without the history: comparable across
        models even where their earlier answers differ."""
        if not self.parts:
            return sha256_hex(self.prompt.encode("utf-8"))
        layout = [p if isinstance(p, str) else f"<{p.kind}>" for p in self.parts]
        return sha256_hex(json.dumps(layout, ensure_ascii=False).encode("utf-8"))

    def history_hash(self) -> Optional[str]:
        """Hash of the history's texts, media contents and answers; None without history."""
        if not self.history:
            return None
        turns = [[[p if isinstance(p, str) else p.content_hash() for p in t.parts], t.answer] for t in self.history]
        return sha256_hex(json.dumps(turns, ensure_ascii=False).encode("utf-8"))


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
    error_kind: str = "model"  # as Response.error_kind: "media" or "data" where the input, not the model, failed

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
    unit: Optional[str] = None  # the dialog, or the question whose rotations these are
    # The metric (``s3eval.metrics``) that scores the record; None: the shared parser by answer type (``parser``).
    metric: Optional[str] = None
    metric_version: Optional[str] = None
    score: Optional[float] = None  # the metric's value in [0, 1]; for binary metrics 1.0 iff correct
    scores: dict[str, float] = field(default_factory=dict)  # components of a combined metric
    candidates: list[str] = field(default_factory=list)  # continuations scored by likelihood
    candidate_nll: list[Optional[float]] = field(default_factory=list)  # mean natural-log NLL per candidate

    def to_json(self) -> str:
        # vars(), not asdict(): the fields are JSON values already, and asdict's deep copy was ~45 % of writing
        # 200,000 records (bench/results/scale-200000-profile.txt). Same bytes.
        return json.dumps(vars(self), ensure_ascii=False, sort_keys=True)

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
