"""The S³ model backend behind ``--model s3``: validates the release at construction (cheap), loads weights
on first use, and serves generation and likelihood requests in cost-sorted batches, results in input order."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from ...provenance import tree_fingerprint
from ...types import LikelihoodRequest, LikelihoodResult, Request, Response
from ..base import BatchSize, Model, ModelError, ModelIdentity, OnBatch, batch_arg, int_arg
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


AUTO = "auto"
# batch_size=auto: GPU batches are formed by a token budget — rows × the costliest row's tokens (prompt + the
# generation budget, or prompt + continuation for each scored candidate) — that starts at AUTO_START_TOKENS and
# doubles after every batch until memory says stop (CUDA out-of-memory, or a peak above AUTO_MEMORY_HIGH of the
# device's memory); then it stays (halved after an out-of-memory error), remembered for the model's life.
AUTO_START_TOKENS = 8_192
AUTO_MAX_TOKENS = {"cuda": 1 << 22, "cpu": 1 << 15}  # CPU: no memory signal, and bigger batches gain nothing
AUTO_MAX_ROWS = 1024
AUTO_MEMORY_HIGH = 0.85


def _peak_memory_fraction(device) -> Optional[float]:
    """The peak share of the device's memory allocated since the last reset; None where unknown (CPU)."""
    import torch

    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / torch.cuda.get_device_properties(device).total_memory


def _reset_peak_memory(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


class _Queue:
    """Work units in cost order per group (units of different groups never share a batch), taken batch by batch
    with the limits in force when each batch is planned."""

    def __init__(self, groups: Sequence[tuple[Any, list[int], list[int]]]) -> None:
        self.groups = [(key, units, costs, engine.cost_order(costs)) for key, units, costs in groups if units]
        self.group, self.start = 0, 0

    def take(self, token_budget: Optional[int], max_rows: Optional[int]) -> Optional[tuple[Any, list[int], list[int]]]:
        """(group key, units, their costs) of the next batch; None when all are taken."""
        if self.group >= len(self.groups):
            return None
        key, units, costs, order = self.groups[self.group]
        end = engine.take_batch(order, self.start, costs, token_budget, max_rows)
        batch = order[self.start : end]
        self.start = end
        if end >= len(order):
            self.group, self.start = self.group + 1, 0
        return key, [units[j] for j in batch], [costs[j] for j in batch]


class S3Model(Model):
    arguments = {**ARGUMENTS, "batch_size": "GPU batch: a whole number of requests, or auto (default: batches by a "
                 "token budget that grows until memory says stop); same as --batch-size"}  # fmt: skip
    supports_likelihood = True
    # Likelihood: each distinct prompt runs once and its key/value cache serves all its candidate continuations
    # (equal to one full forward per candidate up to float rounding); False: one full forward per candidate.
    shared_prefix = True

    def __init__(self, spec: S3Spec, batch_size: BatchSize = None) -> None:
        device = _checked_device(spec)
        self._start(spec, batch_size, device)
        self.facts = validate_release(spec)
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

    def _start(self, spec: S3Spec, batch_size: BatchSize, device,
               components: Optional[engine.Components] = None) -> None:  # fmt: skip
        self.spec, self.batch_size, self.device = spec, batch_size, device
        self._components = components
        self.backoffs = 0  # batch halvings after out-of-memory errors
        # batch_size=N: the largest batch not known to exhaust memory, found by halving on out-of-memory errors.
        self.memory_limit: Optional[int] = None
        # batch_size=auto: the token budget of the next batch, and whether it may still grow.
        self.token_budget = AUTO_START_TOKENS
        self.growing = True

    @classmethod
    def from_components(cls, components: engine.Components, spec: S3Spec, batch_size: BatchSize = None,
                        name: str = "s3-in-memory") -> "S3Model":  # fmt: skip
        """A model around components built in memory (the benchmarks' random-weight shapes): no release files
        are read; ``spec`` gives the settings (generation budget, empty-answer fallback)."""
        model = cls.__new__(cls)
        model._start(spec, batch_size, components.device, components)
        model.identity = ModelIdentity(name=name, details={"device": str(components.device),
                                                           "dtype": str(components.dtype)})  # fmt: skip
        return model

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> "S3Model":
        return cls(*cls._parse(args))

    @classmethod
    def _parse(cls, args: dict[str, Any]) -> tuple[S3Spec, BatchSize]:
        cls.check_args("s3", args)
        batch = batch_arg(args, "batch_size")
        args.pop("batch_size", None)
        budget = int_arg(args, "max_new_tokens", None, minimum=1)  # S3Spec would raise a bare ValueError for "abc"
        args.pop("max_new_tokens", None)
        if budget is not None:
            args["max_new_tokens"] = budget
        return S3Spec.from_args(args), batch

    def switch_checkpoint(self, args: dict[str, Any]) -> "S3Model":
        """The model of another checkpoint of the same base (a training run's checkpoints): validated like any
        release; where this model's weights are loaded, the base Mistral and ImageBind are kept and only the
        checkpoint's tokenizer, adapter and projector are loaded (``loading.swap_checkpoint``). This model must not
        be used afterwards. Its identity is exactly that of ``from_args(args)``, so its runs are the runs an
        ordinary ``s3eval run`` of that checkpoint makes."""
        spec, batch = self._parse(dict(args))
        kept = ("base", "dtype", "encoder_dtype", "device")
        changed = [k for k in kept if getattr(spec, k) != getattr(self.spec, k)]
        if changed:
            raise ModelError(f"checkpoint {spec.checkpoint} needs another {changed[0]} ({getattr(spec, changed[0])} "
                             f"vs {getattr(self.spec, changed[0])}): a sweep shares one base model")  # fmt: skip
        if spec.merge_lora:
            raise ModelError("merge_lora=true cannot be swept: merged LoRA weights cannot be swapped out; drop it")
        model = type(self)(spec, batch)
        if self._components is not None:
            from .loading import swap_checkpoint

            model._components = swap_checkpoint(self._components, spec, model.facts)
            self._components = None
        return model

    @property
    def components(self) -> engine.Components:
        if self._components is None:
            from .loading import load_components

            self._components = load_components(self.spec, self.facts)
        return self._components

    def set_batch_size(self, size: BatchSize) -> None:
        if size is not None:
            if size != AUTO and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
                raise ModelError(f"batch_size must be a whole number of at least 1 or auto, got {size!r}")
            self.batch_size = size

    @property
    def auto(self) -> bool:
        return self.batch_size is None or self.batch_size == AUTO

    def _limits(self, after_current: bool = False) -> tuple[Optional[int], Optional[int]]:
        """(token budget, row limit) for planning a batch; ``after_current``: the batch after the one running, as
        if that one succeeds (the look-ahead plans it early)."""
        if not self.auto:
            size = int(self.batch_size)  # type: ignore[arg-type]
            return None, min(size, self.memory_limit or size)
        return (self._grown() if after_current else self.token_budget), AUTO_MAX_ROWS

    def _grown(self) -> int:
        if not self.growing:
            return self.token_budget
        return min(self.token_budget * 2, AUTO_MAX_TOKENS.get(self.device.type, AUTO_MAX_TOKENS["cuda"]))

    def _succeeded(self) -> None:
        """After a GPU batch: auto grows the budget unless memory says stop."""
        if not self.auto:
            return
        peak = _peak_memory_fraction(self.device)
        if peak is not None and peak > AUTO_MEMORY_HIGH:
            self.growing = False
        self.token_budget = self._grown()

    def _with_backoff(self, indices: list[int], step, cost: Callable[[int], int]) -> list:
        """Run ``step`` on a batch; on CUDA out-of-memory free the cache and retry each half (never drops items).
        Later batches start at the size that can work instead of failing again first: batch_size=N remembers a
        row limit, auto a token budget half the failing batch's that no longer grows."""
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
            if self.auto:
                padded = len(indices) * max(cost(i) for i in indices)
                self.token_budget, self.growing = min(self.token_budget, max(1, padded // 2)), False
            else:
                self.memory_limit = min(self.memory_limit or len(indices), len(indices) - middle)
            return self._with_backoff(indices[:middle], step, cost) + self._with_backoff(indices[middle:], step, cost)

    def _drive(self, queue: _Queue, prepare_ahead: Callable[[list[int]], Any],
               run: Callable[[Any, list[int], Any], list], cost: Callable[[int], int],
               finish: Callable[[list[int], list, float], None]) -> None:  # fmt: skip
        """GPU batches from ``queue``, each run with out-of-memory back-off and handed to ``finish(units,
        outputs, seconds)`` as it completes; the next batch's media are decoded and transformed in the background
        (``prepare_ahead``) while this one runs."""
        current = queue.take(*self._limits())
        if current is None:
            return
        with ThreadPoolExecutor(max_workers=1) as ahead:
            upcoming = ahead.submit(prepare_ahead, current[1])
            while current is not None:
                ready = upcoming.result()
                following = queue.take(*self._limits(after_current=True))
                if following is not None:
                    upcoming = ahead.submit(prepare_ahead, following[1])
                key, units, _ = current
                _reset_peak_memory(self.device)
                t0 = time.perf_counter()
                outputs = self._with_backoff(units, lambda part, key=key, ready=ready: run(key, part, ready), cost)
                self._succeeded()
                finish(units, outputs, time.perf_counter() - t0)
                current = following

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        return self.generate_streaming(requests, lambda indices, responses: None)

    def generate_streaming(self, requests: Sequence[Request], on_batch: OnBatch) -> list[Response]:
        """Responses in input order; ``on_batch(indices, responses)`` after every GPU batch (and first for the
        requests refused before the model: too long, placeholder mismatch, unreadable media)."""
        c = self.components
        budgets = [r.max_new_tokens or self.spec.max_new_tokens for r in requests]
        prepared = [engine.prepare(c, r, b) for r, b in zip(requests, budgets)]
        responses: list[Optional[Response]] = [None] * len(requests)
        refused = [i for i, p in enumerate(prepared) if p.error is not None]
        for i in refused:
            responses[i] = Response(text=None, error=prepared[i].error, error_kind=prepared[i].error_kind)
        if refused:
            on_batch(refused, [responses[i] for i in refused])
        # Requests with different budgets never share a batch; a row's cost is its prompt plus its budget.
        groups = []
        for budget in sorted(set(budgets)):
            usable = [i for i, p in enumerate(prepared) if budgets[i] == budget and p.error is None]
            groups.append((budget, usable, [prepared[i].cost + budget for i in usable]))

        def run(budget: int, part: list[int], ready: dict) -> list[str]:
            return engine.generate(c, [prepared[i] for i in part], budget, preprocessed=ready)

        def finish(indices: list[int], texts: list[str], seconds: float) -> None:
            share = seconds / len(indices)
            for i, text in zip(indices, texts):
                p = prepared[i]
                if p.error is not None:  # media that failed to decode, non-finite logits
                    responses[i] = Response(text=None, error=p.error, error_kind=p.error_kind)
                else:
                    text = text or (EMPTY_ANSWER_FALLBACK if self.spec.empty_fallback else text)
                    responses[i] = Response(text=text, seconds=share)
            on_batch(indices, [responses[i] for i in indices])

        self._drive(_Queue(groups), lambda part: engine.preprocess_batch(c, [prepared[i] for i in part]), run,
                    lambda i: prepared[i].cost + budgets[i], finish)  # fmt: skip
        return responses  # type: ignore[return-value]

    def loglikelihood(self, requests: Sequence[LikelihoodRequest]) -> list[LikelihoodResult]:
        return self.loglikelihood_streaming(requests, lambda indices, results: None)

    def loglikelihood_streaming(
        self, requests: Sequence[LikelihoodRequest], on_batch: OnBatch
    ) -> list[LikelihoodResult]:
        """Log-probabilities in input order, ``on_batch(indices, results)`` after every GPU batch. Candidates
        of one prompt (the same request, or the same prompt ids and media) share one run of the prompt."""
        c = self.components
        # As the released get_ppl: the answer and the end-of-replica marker, tokenised as one string.
        encoded: dict[str, list[int]] = {}
        for r in requests:
            if r.continuation not in encoded:
                encoded[r.continuation] = c.tokenizer(r.continuation + "</RS>", add_special_tokens=False).input_ids
        continuations = [encoded[r.continuation] for r in requests]
        by_request: dict[int, engine.Prepared] = {}
        for r in requests:
            if id(r.request) not in by_request:
                by_request[id(r.request)] = engine.prepare(c, r.request, 0, "to score")
        prepared = [by_request[id(r.request)] for r in requests]
        results: list[Optional[LikelihoodResult]] = [None] * len(requests)
        refused = []
        for i, (p, cont) in enumerate(zip(prepared, continuations)):
            too_long = engine.context_error(c, len(p.ids), len(cont), "to score")
            if too_long is not None or p.error is not None:
                results[i] = LikelihoodResult(logprob=float("nan"), n_tokens=len(cont), error=too_long or p.error,
                                              error_kind="data" if too_long else p.error_kind)  # fmt: skip
                refused.append(i)
        if refused:
            on_batch(refused, [results[i] for i in refused])
        # Units of work: one prompt with the candidates scored after it (a single candidate without sharing).
        units: dict[Any, list[int]] = {}
        for i, p in enumerate(prepared):
            if results[i] is None:
                key = (tuple(p.ids), tuple(p.media_hashes)) if self.shared_prefix else i
                units.setdefault(key, []).append(i)
        members = list(units.values())
        costs = [len(m) * (len(prepared[m[0]].ids) + max(len(continuations[i]) for i in m)) for m in members]

        def run(_: Any, part: list[int], ready: Any) -> list:
            rows = [prepared[members[u][0]] for u in part]
            if self.shared_prefix:
                conts = [[continuations[i] for i in members[u]] for u in part]
                return engine.shared_prefix_logprobs(c, rows, conts, preprocessed=ready)
            scores = engine.continuation_logprobs(c, rows, [continuations[members[u][0]] for u in part], ready)
            return [None if s is None else [s] for s in scores]

        def finish(part: list[int], scores: list, seconds: float) -> None:
            done = []
            for u, unit_scores in zip(part, scores):
                for k, i in enumerate(members[u]):
                    cont, p = continuations[i], prepared[i]
                    if unit_scores is None:
                        results[i] = LikelihoodResult(logprob=float("nan"), n_tokens=len(cont),
                                                      error=p.error or "media error",
                                                      error_kind=p.error_kind if p.error else "media")  # fmt: skip
                    else:
                        results[i] = LikelihoodResult(logprob=unit_scores[k], n_tokens=len(cont))
                    done.append(i)
            on_batch(done, [results[i] for i in done])

        def prepare_ahead(part: list[int]) -> Any:
            return engine.preprocess_batch(c, [prepared[members[u][0]] for u in part])

        self._drive(_Queue([(None, list(range(len(members))), costs)]), prepare_ahead, run, lambda u: costs[u], finish)
        return results  # type: ignore[return-value]
