"""The model interface the runner talks to."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from ..errors import S3evalError
from ..registry import did_you_mean
from ..types import LikelihoodRequest, LikelihoodResult, Request, Response


class ModelError(S3evalError, ValueError):
    """Bad model arguments or files; the message names the culprit and the fix."""


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
