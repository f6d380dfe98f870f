"""The model interface the runner talks to."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence, Union

from ..errors import S3evalError
from ..registry import did_you_mean
from ..types import LikelihoodRequest, LikelihoodResult, Request, Response


class ModelError(S3evalError, ValueError):
    """Bad model arguments or files; the message names the culprit and the fix."""


# on_batch(indices, results): results for requests[i] for i in indices, called as each batch completes.
OnBatch = Callable[[list[int], list[Any]], None]
BatchSize = Union[int, str, None]  # a whole number, "auto", or None (the backend's default)


def batch_arg(args: Mapping[str, Any], name: str = "batch_size") -> BatchSize:
    """A batch-size model argument: ``auto`` or a whole number of at least 1 (``--model-arg batch_size=8``)."""
    value = args.get(name)
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    return int_arg(args, name, None, minimum=1)


def int_arg(args: Mapping[str, Any], name: str, default: Optional[int], minimum: Optional[int] = None) -> Optional[int]:
    """A whole-number model argument, given as a number or as text (``--model-arg batch_size=8``)."""
    value = args.get(name, default)
    if value is None:
        return None
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        number = int(value) if isinstance(value, (int, float)) else int(str(value).strip())
    except (TypeError, ValueError, OverflowError):
        raise ModelError(f"model argument {name} must be a whole number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ModelError(f"model argument {name} must be at least {minimum}, got {number}")
    return number


def float_arg(args: Mapping[str, Any], name: str, default: float, minimum: Optional[float] = None) -> float:
    """A finite numeric model argument, given as a number or as text (``--model-arg delay=0.5``)."""
    value = args.get(name, default)
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value) if isinstance(value, (int, float)) else float(str(value).strip())
        if not math.isfinite(number):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise ModelError(f"model argument {name} must be a number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ModelError(f"model argument {name} must be at least {minimum:g}, got {number:g}")
    return number


@dataclass(frozen=True)
class ModelIdentity:
    """What makes two runs' models the same: written to results and the leaderboard."""

    name: str
    checkpoint: Optional[str] = None
    checkpoint_hash: Optional[str] = None
    details: Mapping[str, Any] = field(default_factory=dict)


class Model(ABC):
    identity: ModelIdentity
    # Argument names accepted by from_args, with their help text (shown by `s3eval run --help`).
    arguments: Mapping[str, str] = {}
    supports_likelihood: bool = False  # whether ``loglikelihood`` is implemented
    # Requests the backend runs at once (its GPU batch): a whole number, "auto" or None (the backend's default).
    # The runner sets it from --batch-size (``set_batch_size``); it never changes results, only speed.
    batch_size: BatchSize = None

    @classmethod
    @abstractmethod
    def from_args(cls, args: dict[str, Any]) -> "Model":
        ...

    @classmethod
    def check_args(cls, name: str, args: Mapping[str, Any], required: Sequence[str] = ()) -> None:
        for key in args:
            if key not in cls.arguments:
                raise ModelError(f"model {name!r} has no argument {key!r}: {did_you_mean(key, list(cls.arguments))}")
        for key in required:
            if key not in args:
                raise ModelError(f"model {name!r} needs --model-arg {key}=… ({cls.arguments[key]})")

    @abstractmethod
    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """One response per request, in the order given."""

    def loglikelihood(self, requests: Sequence[LikelihoodRequest]) -> list[LikelihoodResult]:
        """Log-probability of each continuation after its prompt; backends that cannot score raise."""
        raise ModelError(f"model {self.identity.name!r} does not support likelihood scoring")

    def set_batch_size(self, size: BatchSize) -> None:
        """The GPU batch: a whole number of requests, or "auto" (the backend finds it); None keeps the default."""
        if size is not None:
            self.batch_size = size

    def generate_streaming(self, requests: Sequence[Request], on_batch: OnBatch) -> list[Response]:
        """As ``generate``, calling ``on_batch(indices, responses)`` as each batch completes, so the caller can
        store every batch durably while the next runs. The default runs ``generate`` on batches of
        ``batch_size`` requests (all at once when it is None or "auto"); backends with their own batching
        override it and call ``on_batch`` per GPU batch."""
        return _in_batches(self.generate, requests, self.batch_size, on_batch)

    def loglikelihood_streaming(
        self, requests: Sequence[LikelihoodRequest], on_batch: OnBatch
    ) -> list[LikelihoodResult]:
        """As ``loglikelihood``, calling ``on_batch(indices, results)`` as each batch completes."""
        return _in_batches(self.loglikelihood, requests, self.batch_size, on_batch)


def _in_batches(call: Callable[[list], list], items: Sequence[Any], size: BatchSize, on_batch: OnBatch) -> list:
    step = size if isinstance(size, int) and not isinstance(size, bool) else max(1, len(items))
    out: list = []
    for start in range(0, len(items), step):
        chunk = list(items[start : start + step])
        results = call(chunk)
        if len(results) != len(chunk):
            raise RuntimeError(f"model returned {len(results)} results for {len(chunk)} requests")
        on_batch(list(range(start, start + len(chunk))), list(results))
        out.extend(results)
    return out
