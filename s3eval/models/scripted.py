"""Scripted fake models: they let the whole pipeline run, and be tested, without weights."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..provenance import canonical_hash, tree_fingerprint
from ..storage import StorageError, read_json, read_jsonl
from ..types import LikelihoodRequest, LikelihoodResult, Request, Response
from .base import Model, ModelError, ModelIdentity, float_arg


class ConstantModel(Model):
    """Answers every request with the same text (e.g. ``A``). Likelihoods are scripted to match: a candidate
    equal to the answer (ignoring case and surrounding space) costs 0 nats per token, any other 1 nat per token,
    with one token per whitespace-separated word."""

    arguments = {
        "answer": "the text returned for every request (default: A)",
        "delay": "seconds to sleep per request, to imitate a slow model (fault-injection tests)",
    }

    def __init__(self, answer: str = "A", delay: float = 0.0) -> None:
        self.answer, self.delay = answer, delay
        self.identity = ModelIdentity(
            name="constant", checkpoint_hash=canonical_hash({"answer": answer}), details={"answer": answer}
        )

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> "ConstantModel":
        cls.check_args("constant", args)
        return cls(str(args.get("answer", "A")), float_arg(args, "delay", 0.0, minimum=0.0))

    supports_likelihood = True

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        if self.delay:
            time.sleep(self.delay * len(requests))
        return [Response(text=self.answer) for _ in requests]

    def loglikelihood(self, requests: Sequence[LikelihoodRequest]) -> list[LikelihoodResult]:
        out = []
        for request in requests:
            n = max(1, len(request.continuation.split()))
            same = request.continuation.strip().lower() == self.answer.strip().lower()
            out.append(LikelihoodResult(logprob=0.0 if same else -float(n), n_tokens=n))
        return out


class ReplayModel(Model):
    """Replays saved responses by sample id: from a JSON object ``{id: response}`` or from s3eval per-sample
    JSONL (its ``sample_id`` and ``response`` fields). An id without a response becomes a model error."""

    arguments = {"responses": "path to a {id: response} JSON file or an s3eval samples_*.jsonl file"}

    def __init__(self, responses_path: Path) -> None:
        self.responses = _load_responses(responses_path)
        self.identity = ModelIdentity(
            name="replay",
            checkpoint=str(responses_path),
            checkpoint_hash=tree_fingerprint([responses_path]),
        )

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> "ReplayModel":
        cls.check_args("replay", args, required=["responses"])
        return cls(Path(args["responses"]))

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        out = []
        for request in requests:
            text = self.responses.get(request.sample_id)
            if text is None:
                out.append(Response(text=None, error=f"replay file has no response for {request.sample_id!r}"))
            else:
                out.append(Response(text=text))
        return out


def _load_responses(path: Path) -> Mapping[str, str]:
    if not path.is_file():
        raise ModelError(f"replay responses file {path} does not exist")
    if path.suffix == ".jsonl":
        try:
            return {
                str(row["sample_id"]): row["response"]
                for row in read_jsonl(path)
                if row.get("response") is not None
            }
        except (KeyError, StorageError) as exc:
            raise ModelError(f"{path}: not an s3eval samples file ({exc})") from exc
    try:
        data = read_json(path)
    except StorageError as exc:
        raise ModelError(str(exc)) from exc
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ModelError(f"{path}: expected a JSON object mapping sample ids to response strings")
    return data
