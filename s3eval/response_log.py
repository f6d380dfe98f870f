"""The run's response log: every model response appended durably (fsync per batch) under a content key, so a
re-run of the same command after a crash reuses what was produced and generates only the rest.

The key covers everything that determines a response — task, sample id, prompt hash, media content hashes,
generation budget and the model identity (name, checkpoint fingerprint, settings) — so a changed prompt, image
or checkpoint never reuses a stale answer. Failed generations are not reused: they are retried."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

from .provenance import canonical_hash
from .storage import append_lines, read_jsonl, recover_jsonl_tail
from .types import LikelihoodResult, Request, Response


def response_key(request: Request, media_hashes: Sequence[str], model_hash: str) -> str:
    """``model_hash``: the canonical hash of the model identity (name, checkpoint fingerprint, settings).
    A dialog turn's key also covers its history (earlier replicas, their media and the answers given)."""
    fields = {
        "task": request.task, "sample_id": request.sample_id, "prompt_hash": request.prompt_hash,
        "media": list(media_hashes), "max_new_tokens": request.max_new_tokens, "model": model_hash,
    }  # fmt: skip
    history = request.history_hash()
    if history is not None:  # absent for single-turn requests, so their keys stay what they always were
        fields["history"] = history
    return canonical_hash(fields)


def likelihood_key(key: str, continuation: str) -> str:
    """The key of one candidate's score, under the request's response key."""
    return canonical_hash({"request": key, "continuation": continuation})


LOG_GLOB = "responses*.jsonl"


def log_name(rank: int, world_size: int) -> str:
    return "responses.jsonl" if world_size == 1 else f"responses.rank{rank}.jsonl"


def supersede_logs(run_dir: Path, stamp: str) -> None:
    """Move earlier response logs aside (for ``--fresh``): never deleted, never read again."""
    old = sorted(Path(run_dir).glob(LOG_GLOB))
    if old:
        target = Path(run_dir) / f"superseded-{stamp.replace(':', '')}"
        target.mkdir(exist_ok=True)
        for path in old:
            path.rename(target / path.name)


class ResponseLog:
    """Appends to ``run_dir/name``; reuses successful responses from every response log in ``run_dir`` (the
    logs of all ranks of a distributed run, or of earlier runs with another process count)."""

    def __init__(self, run_dir: Path, name: str = "responses.jsonl") -> None:
        self.path = Path(run_dir) / name
        self._cached: dict[str, dict] = {}
        for path in sorted(Path(run_dir).glob(LOG_GLOB)):
            # A crash mid-append leaves a torn last line: moved aside to <log>.torn, with a notice. A broken line
            # elsewhere stops here, naming file:line and `s3eval repair RUN_DIR`.
            recover_jsonl_tail(path)
            for entry in read_jsonl(path):
                if entry.get("error") is None and "key" in entry:
                    self._cached[entry["key"]] = entry

    def get(self, key: str) -> Optional[Response]:
        entry = self._cached.get(key)
        if entry is None:
            return None
        return Response(text=entry["response"], seconds=entry.get("seconds", 0.0))

    def get_likelihood(self, key: str) -> Optional[LikelihoodResult]:
        entry = self._cached.get(key)
        if entry is None:
            return None
        return LikelihoodResult(logprob=entry["logprob"], n_tokens=entry["n_tokens"])

    def append(self, entries: Sequence[tuple[str, str, str, Response]]) -> None:
        """(key, task, sample_id, response) per item, in one durable write."""
        append_lines(self.path, [
            json.dumps({"key": key, "task": task, "sample_id": sample_id, "response": r.text, "error": r.error,
                        "error_kind": r.error_kind if r.error else None, "seconds": r.seconds}, ensure_ascii=False)
            for key, task, sample_id, r in entries
        ])  # fmt: skip

    def append_likelihoods(self, entries: Sequence[tuple[str, str, str, LikelihoodResult]]) -> None:
        """(key, task, sample_id, result) per scored candidate, in one durable write."""
        append_lines(self.path, [
            json.dumps({"key": key, "task": task, "sample_id": sample_id, "kind": "likelihood",
                        "logprob": r.logprob if r.error is None else None, "n_tokens": r.n_tokens,
                        "error": r.error}, ensure_ascii=False)
            for key, task, sample_id, r in entries
        ])  # fmt: skip
