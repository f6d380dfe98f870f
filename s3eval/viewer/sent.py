"""What each run sent: a run with ``--media withhold|noise|shuffle`` sent other media than its task builds, so its
requests are ablated again as the run ablated them (``media_ablation.ablate`` over all the run's sent requests of the
task: shuffle draws donors across them). The page shows run A's media as A sent them, checks each run's media hashes
against what that run sent, and says how run B sent an item where it ablated the media otherwise than A."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from ..compare import Run, differ_only_in_media
from ..errors import S3evalError
from ..media_ablation import KEEP, NOISE, SEEDED, SHUFFLE, WITHHOLD, ablate
from ..types import Record, Request, Sample
from .media import MediaStore, replica_parts

@dataclass(frozen=True)
class Ablation:
    """How a run sent a task's media (``--media``, ``--media-seed``)."""

    mode: str = KEEP
    seed: int = 0  # 0 where the mode draws nothing: keep and withhold runs with other seeds sent the same

    @property
    def flag(self) -> str:
        seed = f" --media-seed {self.seed}" if self.seed else ""
        return f"--media {self.mode}{seed}"


# How a run sent an item's media, and the task's items' media, under each mode (the page's notes).
_SENT_ITEM = {KEEP: "with its own media", WITHHOLD: "without its media", NOISE: "with noise in place of its media",
              SHUFFLE: "with another item's media"}  # fmt: skip
_SENT_ITEMS = {KEEP: "with their own media", WITHHOLD: "without their media",
               NOISE: "with noise in place of their media", SHUFFLE: "with other items' media"}  # fmt: skip


def ablation_of(run: Run, task: str) -> Ablation:
    """The task's media ablation in ``run``: its settings, else the run's config; absent means keep (runs written
    before ``--media`` existed sent the media as given)."""
    settings = run.results.get("tasks", {}).get(task, {}).get("settings") or {}
    config = run.results.get("config", {})
    mode = settings.get("media") or config.get("media") or KEEP
    seed = settings.get("media_seed", config.get("media_seed", 0)) if mode in SEEDED else 0
    return Ablation(mode, int(seed or 0))


class Requests:
    """A task's requests built again, each once: as the task builds them, and as each run sent them."""

    def __init__(self, task: Any, samples: dict[str, Sample]) -> None:
        self.task = task
        self.samples = samples
        self._built: dict[str, Request | Exception] = {}
        self._sent: dict[tuple[Ablation, tuple[tuple[str, str], ...]], dict[str, Request]] = {}

    def built(self, sample: Sample) -> Request | Exception:
        """The request as the task builds it now (un-ablated: the prompt hash is this one's), or why it cannot be."""
        if sample.id not in self._built:
            try:
                self._built[sample.id] = self.task.build_request(sample)
            except (S3evalError, OSError, ValueError) as exc:
                self._built[sample.id] = exc
        return self._built[sample.id]

    def sent(self, records: Sequence[Record], ablation: Ablation) -> dict[str, Request]:
        """Sample id → the request as the run of ``records`` (all its records of the task, canonical order) sent
        it; empty for keep, whose requests are the built ones: only an ablated run pays for the whole task."""
        if ablation.mode == KEEP:
            return {}
        chosen = []
        for record in records:
            sample = self.samples.get(record.sample_id)
            if not record.prompt_hash or sample is None or sample.error is not None:
                continue  # the runner ablated the requests it sent, and it sent none for this item
            request = self.built(sample)
            if not isinstance(request, Exception):
                chosen.append((record.unit or record.sample_id, request))
        key = (ablation, tuple((unit, r.sample_id) for unit, r in chosen))
        if key not in self._sent:  # two runs that ablated the same items alike sent the same requests
            ablated = ablate([r for _, r in chosen], ablation.mode, ablation.seed, [u for u, _ in chosen])
            self._sent[key] = {r.sample_id: r for r in ablated}
        return self._sent[key]


def media_hashes(request: Request) -> list[Optional[str]]:
    """The content hashes of the request's media (None where one cannot be read), as a record keeps them."""
    hashes: list[Optional[str]] = []
    for media in request.media:
        try:
            hashes.append(media.content_hash())
        except (OSError, ValueError):
            hashes.append(None)
    return hashes


Parts = list[list[Any]]  # the replica as the page shows it (``_parts``)


def question(sample: Sample, pair: Sequence[Record], requests: Requests, sent: Sequence[dict[str, Request]],
              ablations: Sequence[Ablation], store: MediaStore) -> tuple[Optional[Parts], list[str]]:  # fmt: skip
    """(the replica as run A sent it, the item's notes): the prompt and each run's media checked against what that
    run sent, and how run B sent the item where it ablated the media otherwise than A."""
    request = requests.built(sample)
    if isinstance(request, Exception):
        if all(r.error_kind == "data" for r in pair):  # the record's own error says it
            return None, []
        return None, [f"its request could not be built again: {request}"]
    as_sent = [s.get(sample.id, request) for s in sent]  # an item a run did not send is shown as built
    parts, hashes = replica_parts(as_sent[0], store)
    notes = []
    if any(r.prompt_hash and r.prompt_hash != request.prompt_hash for r in pair):
        notes.append("the prompt built now differs from the one the run sent: the data or the code changed since "
                     "the run")  # fmt: skip
    own = [hashes if s is as_sent[0] else media_hashes(s) for s in as_sent]  # each run's media as it sent them
    if any(r.prompt_hash and r.media_hashes and r.media_hashes != h for r, h in zip(pair, own)):
        notes.append("the media found now differ from those the run sent: the data changed since the run")
    if len(pair) == 2 and ablations[0] != ablations[1] and pair[1].prompt_hash and own[1] != hashes:
        notes.append(f"run B sent this item {_SENT_ITEM[ablations[1].mode]} ({ablations[1].flag})")
    return parts, notes



def media_notices(runs: Sequence[Run], task: str) -> list[str]:
    """What the task's header says about the runs' media ablations: how an ablated run sent the media (the cards
    show run A's as sent), whether the paired runs differ in nothing else, and what an ablation left as it was."""
    ablations = [ablation_of(run, task) for run in runs]
    notices = []
    if len(runs) == 2 and ablations[0] != ablations[1]:
        a, b = ablations
        what = "differ only in their media mode" if differ_only_in_media(*runs) else "ablated their media differently"
        notices.append(f"the runs {what}: A sent the items {_SENT_ITEMS[a.mode]} ({a.flag}), B "
                       f"{_SENT_ITEMS[b.mode]} ({b.flag}); the cards show the media as A sent them and say how B "
                       f"sent each item")  # fmt: skip
    elif ablations[0].mode != KEEP:
        who = "this run" if len(runs) == 1 else "both runs"
        notices.append(f"{who} sent the items {_SENT_ITEMS[ablations[0].mode]} ({ablations[0].flag}); the cards show "
                       f"the media as {'it' if len(runs) == 1 else 'A'} sent them")  # fmt: skip
    for label, run in zip("AB", runs):
        note = (run.results.get("tasks", {}).get(task, {}).get("settings") or {}).get("media_note")
        if note:
            notices.append(f"{label}: {note}" if len(runs) == 2 else note)
    return list(dict.fromkeys(notices))
