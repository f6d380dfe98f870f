"""The S³ model backend behind ``--model s3``: validates the release at construction (cheap), loads weights
on first use, and serves generation and likelihood requests in cost-sorted batches, results in input order."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional, Sequence

from ...provenance import tree_fingerprint
from ...types import LikelihoodRequest, LikelihoodResult, Request, Response
from ..base import Model, ModelError, ModelIdentity, int_arg
from . import engine
from .prompt import EMPTY_ANSWER_FALLBACK
from .spec import ARGUMENTS, S3Spec
from .validate import validate_release


def _checked_device(spec: S3Spec):
    """The torch device the spec names; a malformed or absent device is a one-line error before anything loads."""
    import torch

    from .loading import resolve_device

    try:
        device = resolve_device(spec)
    except (RuntimeError, ValueError):
        message = f"model argument device must be a torch device such as cpu or cuda:0, got {spec.device!r}"
        raise ModelError(message) from None
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        found = f"{torch.cuda.device_count()} CUDA device(s)" if torch.cuda.is_available() else "no CUDA"
        raise ModelError(f"model argument device is {spec.device or 'cuda'}, but this machine has {found}; "
                         "use --device cpu")  # fmt: skip
    return device


class S3Model(Model):
    arguments = {**ARGUMENTS, "batch_size": "requests per GPU batch inside one runner call (default: all of them)"}
    supports_likelihood = True

    def __init__(self, spec: S3Spec, batch_size: Optional[int] = None) -> None:
        self.spec = spec
        self.batch_size = batch_size
        device = _checked_device(spec)
        self.facts = validate_release(spec)
        self._components: Optional[engine.Components] = None
        self.backoffs = 0  # batch halvings after out-of-memory errors
        # Largest batch not known to exhaust memory: found automatically, starting from batch_size (or everything).
        self.memory_limit: Optional[int] = None
        release = [spec.tokenizer, spec.adapter, spec.projector, spec.imagebind, spec.base / "config.json"]
        from .loading import resolve_dtype

        self.identity = ModelIdentity(
            name="s3",
            checkpoint=str(spec.checkpoint),
            checkpoint_hash=tree_fingerprint(release),
            details={
                "spec": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(spec).items()},
                "device": str(device),
                "dtype": resolve_dtype(spec, device),
                "token_encodings": self.facts.token_encodings,
                "eos_id": self.facts.eos_id,
                "pad_id": self.facts.pad_id,
            },
        )

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> "S3Model":
        cls.check_args("s3", args)
        batch = int_arg(args, "batch_size", None, minimum=1)
        args.pop("batch_size", None)
        budget = int_arg(args, "max_new_tokens", None, minimum=1)  # S3Spec would raise a bare ValueError for "abc"
        args.pop("max_new_tokens", None)
        if budget is not None:
            args["max_new_tokens"] = budget
        return cls(S3Spec.from_args(args), batch)

    @property
    def components(self) -> engine.Components:
        if self._components is None:
            from .loading import load_components

            self._components = load_components(self.spec, self.facts)
        return self._components

    def _batches(self, prepared: Sequence[engine.Prepared]) -> list[list[int]]:
        size = self.batch_size or max(1, len(prepared))
        return engine.by_cost(prepared, min(size, self.memory_limit or size))

    def _with_backoff(self, indices: list[int], step) -> list:
        """Run ``step`` on a batch; on CUDA out-of-memory free the cache and retry each half (never drops items)."""
        import torch

        try:
            return step(indices)
        except torch.OutOfMemoryError:
            if len(indices) == 1:
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            middle = len(indices) // 2
            self.backoffs += 1
            # Later batches start at the size that can work, instead of failing again first.
            self.memory_limit = min(self.memory_limit or len(indices), len(indices) - middle)
            return self._with_backoff(indices[:middle], step) + self._with_backoff(indices[middle:], step)

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        c = self.components
        prepared = [engine.prepare(c, r, r.max_new_tokens or self.spec.max_new_tokens) for r in requests]
        texts: list[Optional[str]] = [None] * len(requests)
        seconds = [0.0] * len(requests)
        budgets = sorted({r.max_new_tokens or self.spec.max_new_tokens for r in requests})
        jobs = []  # (budget, indices) per GPU batch; requests with different budgets never share one
        for budget in budgets:
            group = [i for i, r in enumerate(requests) if (r.max_new_tokens or self.spec.max_new_tokens) == budget]
            usable = [i for i in group if prepared[i].error is None]
            jobs += [(budget, [usable[j] for j in batch]) for batch in self._batches([prepared[i] for i in usable])]
        # Media of the next batch are decoded and transformed in the background while this one generates.
        with ThreadPoolExecutor(max_workers=1) as ahead:
            upcoming = ahead.submit(engine.preprocess_batch, c, [prepared[i] for i in jobs[0][1]]) if jobs else None
            for k, (budget, indices) in enumerate(jobs):
                ready = upcoming.result()
                if k + 1 < len(jobs):
                    upcoming = ahead.submit(engine.preprocess_batch, c, [prepared[i] for i in jobs[k + 1][1]])
                t0 = time.perf_counter()

                def step(part: list[int], budget: int = budget, ready: dict = ready) -> list[str]:
                    return engine.generate(c, [prepared[i] for i in part], budget, preprocessed=ready)

                outputs = self._with_backoff(indices, step)
                share = (time.perf_counter() - t0) / len(indices)
                for i, text in zip(indices, outputs):
                    if prepared[i].error is None:
                        texts[i] = text or (EMPTY_ANSWER_FALLBACK if self.spec.empty_fallback else text)
                        seconds[i] = share
        return [
            Response(text=None, error=p.error, error_kind=p.error_kind) if p.error is not None else Response(text=t, seconds=s)
            for p, t, s in zip(prepared, texts, seconds)
        ]

    def loglikelihood(self, requests: Sequence[LikelihoodRequest]) -> list[LikelihoodResult]:
        c = self.components
        # As the released get_ppl: the answer and the end-of-replica marker, tokenised as one string.
        continuations = [c.tokenizer(r.continuation + "</RS>", add_special_tokens=False).input_ids for r in requests]
        prepared = [engine.prepare(c, r.request, len(cont), "to score") for r, cont in zip(requests, continuations)]
        logprobs: list[Optional[float]] = [None] * len(requests)
        usable = [i for i, p in enumerate(prepared) if p.error is None]
        for batch in self._batches([prepared[i] for i in usable]):
            indices = [usable[j] for j in batch]

            def step(part: list[int]) -> list[Optional[float]]:
                return engine.continuation_logprobs(c, [prepared[i] for i in part], [continuations[i] for i in part])

            scores = self._with_backoff(indices, step)
            for i, score in zip(indices, scores):
                logprobs[i] = score
        return [
            LikelihoodResult(logprob=lp, n_tokens=len(cont))
            if lp is not None
            else LikelihoodResult(logprob=float("nan"), n_tokens=len(cont), error=p.error or "media error",
                                  error_kind=p.error_kind if p.error else "media")
            for lp, cont, p in zip(logprobs, continuations, prepared)
        ]
