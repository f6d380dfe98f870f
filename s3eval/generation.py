"""Drives the model for a run: all pending requests of a task handed to the backend at once (in windows of
``RunConfig.window``) with the backend's failures isolated, dialog turns in waves (each turn after its previous
one, with the dialog history), candidate answers scored by likelihood in the same context — every GPU batch's
results appended to the response log as the batch completes, and taken from it on a resume."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional, Sequence

from tqdm import tqdm

from .config import RunConfig
from .errors import S3evalError
from .models import Model
from .response_log import ResponseLog, likelihood_key, response_key
from .types import LikelihoodRequest, LikelihoodResult, Record, Request, Response, Turn


@dataclass
class Pending:
    """A sample on its way through the model: its record, its request (history added once the previous turn
    is answered) and the previous turn's sample id."""

    record: Record
    request: Request
    follows: Optional[str] = None


class RunError(S3evalError, RuntimeError):
    """A run stopped on purpose (``--fail-fast``) or cannot start; the message names the sample and the problem."""


class _DeliveryFailed(Exception):
    """The caller's ``deliver`` failed (a full disk, say): passed on as it is, never retried as a model failure."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _robust(stream: Callable[[list, Callable], list], items: list, fail_fast: bool, failed: Callable[[str], Any],
            deliver: Callable[[list[int], list], None]) -> None:  # fmt: skip
    """``stream(items, on_batch)`` with every completed batch passed on at once as ``deliver(positions, results)``
    (positions in ``items``; the response log makes them durable there). If the backend raises, what it had not
    delivered is retried in two halves, down to single items, which then become ``failed(message)`` (with
    ``fail_fast`` the exception propagates instead). An exception from ``deliver`` propagates unchanged."""
    try:
        _robust_part(stream, items, list(range(len(items))), fail_fast, failed, deliver)
    except _DeliveryFailed as failure:
        raise failure.error from None


def _robust_part(stream: Callable[[list, Callable], list], items: list, positions: list[int], fail_fast: bool,
                 failed: Callable[[str], Any], deliver: Callable[[list[int], list], None]) -> None:  # fmt: skip
    done = [False] * len(positions)

    def on_batch(indices: list[int], results: list) -> None:
        fresh = [(i, r) for i, r in zip(indices, results) if not done[i]]
        for i, _ in fresh:
            done[i] = True
        if fresh:
            try:
                deliver([positions[i] for i, _ in fresh], [r for _, r in fresh])
            except Exception as exc:  # the caller's failure, not the model's: stop, do not retry
                raise _DeliveryFailed(exc) from exc

    try:
        results = stream([items[p] for p in positions], on_batch)
        if len(results) != len(positions):
            raise RuntimeError(f"model returned {len(results)} results for {len(positions)} requests")
        on_batch(list(range(len(positions))), list(results))  # whatever the backend returned without streaming
    except _DeliveryFailed:
        raise
    except Exception as exc:  # any backend failure: isolate the culprit, keep the rest
        if fail_fast:
            raise
        rest = [p for p, ok in zip(positions, done) if not ok]
        if len(positions) == 1:
            if rest:
                on_batch([0], [failed(f"{type(exc).__name__}: {exc}")])
            return
        if len(rest) == 1:
            _robust_part(stream, items, rest, fail_fast, failed, deliver)
        elif rest:
            middle = len(rest) // 2
            _robust_part(stream, items, rest[:middle], fail_fast, failed, deliver)
            _robust_part(stream, items, rest[middle:], fail_fast, failed, deliver)


def _windows(items: Sequence[Any], size: int, weight: Callable[[Any], int] = lambda _: 1) -> list[list[Any]]:
    """Consecutive runs of ``items`` of total ``weight`` at most ``size`` (at least one item each)."""
    out: list[list[Any]] = []
    total = 0
    for item in items:
        w = weight(item)
        if not out or total + w > size:
            out.append([])
            total = 0
        out[-1].append(item)
        total += w
    return out


def _generate_robust(model: Model, requests: list[Request], fail_fast: bool,
                     deliver: Callable[[list[int], list[Response]], None]) -> None:  # fmt: skip
    """Responses to ``requests`` passed to ``deliver(positions, responses)`` GPU batch by GPU batch; a response
    without its own timing gets its batch's wall time shared out."""
    clock = [time.perf_counter()]

    def timed(positions: list[int], responses: list[Response]) -> None:
        now = time.perf_counter()
        share = (now - clock[0]) / len(positions)
        clock[0] = now
        # Built directly: dataclasses.replace is several times slower, and this runs once per item.
        deliver(positions, [r if r.seconds else Response(text=r.text, error=r.error, seconds=share,
                                                         error_kind=r.error_kind) for r in responses])  # fmt: skip

    _robust(model.generate_streaming, list(requests), fail_fast,
            lambda why: Response(text=None, error=f"generation failed: {why}", error_kind="model"), timed)  # fmt: skip


def _apply(record: Record, response: Response) -> None:
    record.response, record.seconds = response.text, response.seconds
    if response.error is not None:
        record.error, record.error_kind = response.error, response.error_kind


def _waves(pending: Sequence[Pending]) -> list[list[Pending]]:
    """Turns grouped by depth in their dialog: every turn's previous turn is in an earlier wave. Single-turn
    samples are all in the first wave."""
    depth: dict[str, int] = {}
    waves: list[list[Pending]] = []
    for item in pending:  # a dialog's turns come in order, so the previous turn's depth is known
        d = 0 if item.follows is None else depth.get(item.follows, -1) + 1
        depth[item.record.sample_id] = d
        while len(waves) <= d:
            waves.append([])
        waves[d].append(item)
    return waves


def _with_history(item: Pending, answered: dict[str, Pending], records: dict[str, Record]) -> bool:
    """Give a turn its history: the previous turn's history, replica and answer. False (and the record marked
    failed) when the previous turn has no answer."""
    if item.follows is None:
        return True
    previous = answered.get(item.follows)
    prev_record = records[item.follows]
    if previous is None or prev_record.error is not None or prev_record.response is None:
        item.record.error = f"previous turn {item.follows} failed: {prev_record.error or 'no answer'}"
        item.record.error_kind = prev_record.error_kind or "model"
        return False
    turn = Turn(previous.request.query(), prev_record.response)
    item.request = replace(item.request, history=previous.request.history + (turn,))
    return True


def generate_all(model: Model, model_hash: str, pending: Sequence[Pending], records: dict[str, Record],
                 config: RunConfig, log: ResponseLog, label: str, show_progress: bool, fail_fast: bool) -> int:  # fmt: skip
    """Fill the records' responses, from the log where possible, generating the rest; dialogs turn by turn.
    Returns how many responses came from the log (a resume)."""
    model.set_batch_size(config.batch_size)  # --batch-size: the GPU batch (None: the backend's default)
    answered: dict[str, Pending] = {}
    reused = 0
    with tqdm(total=sum(p.request.generate for p in pending), desc=label, unit="item",
              disable=not show_progress) as bar:  # fmt: skip
        for wave in _waves(pending):
            todo = []
            for item in wave:
                if not _with_history(item, answered, records):
                    continue
                answered[item.record.sample_id] = item
                if not item.request.generate:
                    continue
                key = response_key(item.request, item.record.media_hashes, model_hash)
                cached = log.get(key)
                if cached is not None:
                    _apply(item.record, cached)
                    reused += 1
                    bar.update(1)
                else:
                    todo.append((item, key))
            # The model gets the whole wave (in windows of config.window requests, to bound memory): it sorts
            # by cost and forms its own GPU batches; each one is stored durably as it completes.
            for window in _windows(todo, config.window):

                def deliver(indices: list[int], responses: list[Response], window: list = window) -> None:
                    batch = [window[i] for i in indices]
                    for (item, _), response in zip(batch, responses):
                        _apply(item.record, response)
                    log.append([(key, item.record.task, item.record.sample_id, r)
                                for (item, key), r in zip(batch, responses)])  # fmt: skip
                    bar.update(len(batch))

                _generate_robust(model, [item.request for item, _ in window], fail_fast, deliver)
    _score_candidates(model, model_hash, [p for p in pending if p.record.sample_id in answered], config, log, label,
                      show_progress, fail_fast)  # fmt: skip
    if fail_fast:
        raise_first_error([p.record for p in pending])
    return reused


def _score_candidates(model: Model, model_hash: str, pending: Sequence[Pending], config: RunConfig, log: ResponseLog,
                      label: str, show_progress: bool, fail_fast: bool) -> None:  # fmt: skip
    """Mean NLL of every candidate answer, in the same context (history included) as the generation."""
    jobs = []  # (item, candidate index, key, likelihood request)
    for item in pending:
        if item.record.error is not None or not item.request.candidates:
            continue
        item.record.candidate_nll = [None] * len(item.request.candidates)
        base = response_key(item.request, item.record.media_hashes, model_hash)
        for i, candidate in enumerate(item.request.candidates):
            jobs.append((item, i, likelihood_key(base, candidate), LikelihoodRequest(item.request, candidate)))
    results: dict[int, LikelihoodResult] = {}
    todo = []
    for j, (_, _, key, _) in enumerate(jobs):
        cached = log.get_likelihood(key)
        if cached is not None:
            results[j] = cached
        else:
            todo.append(j)
    with tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc=f"{label} (likelihoods)", unit="cand",
              disable=not show_progress or not jobs) as bar:  # fmt: skip
        # Whole requests per window (all candidates of a request together: the backend runs their shared prompt
        # once), each GPU batch's scores stored durably as it completes.
        for window in _windows(_by_request(todo, jobs), config.window, weight=len):
            window_jobs = [j for group in window for j in group]

            def deliver(positions: list[int], scored: list[LikelihoodResult], window_jobs: list = window_jobs) -> None:
                batch = [window_jobs[p] for p in positions]
                results.update(zip(batch, scored))
                log.append_likelihoods([(jobs[j][2], jobs[j][0].record.task, jobs[j][0].record.sample_id, r)
                                        for j, r in zip(batch, scored)])  # fmt: skip
                bar.update(len(batch))

            _robust(model.loglikelihood_streaming, [jobs[j][3] for j in window_jobs], fail_fast,
                    lambda why: LikelihoodResult(float("nan"), 0, error=f"scoring failed: {why}"), deliver)  # fmt: skip
    for j, (item, i, _, _) in enumerate(jobs):
        result = results[j]
        if result.error is not None or result.n_tokens == 0:
            item.record.error = f"candidate {i} could not be scored: {result.error or 'no tokens'}"
            item.record.error_kind = result.error_kind if result.error is not None else "model"
        else:
            item.record.candidate_nll[i] = result.mean_nll


def _by_request(todo: list[int], jobs: list) -> list[list[int]]:
    """The jobs to score, grouped by the request they belong to (consecutive in ``jobs``)."""
    groups: list[list[int]] = []
    for j in todo:
        if groups and jobs[groups[-1][-1]][0] is jobs[j][0]:
            groups[-1].append(j)
        else:
            groups.append([j])
    return groups


def raise_first_error(records: Sequence[Record]) -> None:
    failed = next((r for r in records if r.error is not None), None)
    if failed is not None:
        raise RunError(f"--fail-fast: {failed.task} sample {failed.sample_id}: {failed.error}")


def check_likelihood_support(model: Model, prepared) -> None:
    for task, _, pending in prepared:
        if any(p.request.candidates for p in pending) and not model.supports_likelihood:
            raise RunError(
                f"task {task.name!r} scores candidate answers by likelihood, which model {model.identity.name!r} "
                f"cannot do; use a model that can (s3, constant) or turn likelihood scoring off for the task "
                f"(see `s3eval tasks`)"
            )
