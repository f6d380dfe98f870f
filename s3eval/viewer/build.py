"""Writes the viewer folder of one run, or of two runs side by side:

    DIR/index.html            the page: static, it fills itself in from data.js
    DIR/assets/viewer.js|css  the page's code and style
    DIR/data.js               ``window.S3VIEW = {…}``: the runs' identities and the tasks' index
    DIR/data/task-<i>.js      one task's items, loaded when its tab is opened
    DIR/media/<sha256>.<ext>  every image and audio clip once, named by the SHA-256 of its bytes
    DIR/.s3eval-view          marks the folder as a viewer that ``s3eval view`` may replace

The data are JavaScript files that assign globals, loaded by ``<script>`` tags: a page opened from ``file://``
may not ``fetch()`` a file in Chromium. Every text from a dataset, a response or a name reaches the page as data
and is put into it as text (``textContent``), never as markup; the page's Content-Security-Policy lets it load
its own files only, so it never touches the network.

Where questions and media come from: records keep only hashes, so each task is rebuilt from the arguments its
run recorded (as ``rescore`` does; ``--data`` overrides the data location) and each record's request is built
again — and checked against the record's prompt hash and media hashes: an item whose data changed since the run
says so. A task that cannot be rebuilt (data absent) is shown from its records alone, with the reason.
A run with ``--media withhold|noise|shuffle`` sent other media than the task's: its requests are ablated again
as the run ablated them (``media_ablation.ablate`` over all the run's sent requests of the task, since shuffle
draws donors across them), so the page shows run A's media as A sent them and each run's media hashes are checked
against what that run sent; where the two runs ablated differently, each item says how run B sent it.
Dialog turns link to their previous turn, so the page shows the whole transcript with each run's own earlier
answers."""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from ..aggregate import group_kinds_of, record_score
from ..compare import Run, describe, differ_only_in_media, load_run, mismatches
from ..errors import S3evalError
from ..media_ablation import KEEP, NOISE, SEEDED, SHUFFLE, WITHHOLD, ablate
from ..rescore import TaskOverrides, rebuild_task
from ..results import item_kind
from ..scoring import RIGHT_WRONG
from ..selection import by_ids
from ..types import Media, Record, Request, Sample, sha256_hex

ASSETS = Path(__file__).resolve().parent / "assets"
MARKER = ".s3eval-view"
PAGE_FILES = ("viewer.js", "viewer.css")

# Formats a browser shows as they are; other images are converted to PNG (named by the original's hash).
_IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpg"), (b"GIF87a", "gif"), (b"GIF89a", "gif"),
                (b"BM", "bmp"))  # fmt: skip
_AUDIO_MAGIC = ((b"fLaC", "flac"), (b"OggS", "ogg"), (b"ID3", "mp3"), (b"\xff\xfb", "mp3"), (b"\xff\xf3", "mp3"),
                (b"\xff\xf2", "mp3"))  # fmt: skip


class ViewError(S3evalError, ValueError):
    pass


def media_extension(kind: str, data: bytes) -> Optional[str]:
    """The file extension a browser plays or shows ``data`` under; None for a format it does not know."""
    if data[:4] == b"RIFF" and data[8:12] in (b"WAVE", b"WEBP"):
        return "wav" if data[8:12] == b"WAVE" else "webp"
    if data[4:8] == b"ftyp" and kind == "audio":
        return "m4a"
    for magic, ext in _IMAGE_MAGIC if kind == "image" else _AUDIO_MAGIC:
        if data.startswith(magic):
            return ext
    return None


class MediaStore:
    """Copies each medium once into ``root`` as ``<sha256>.<ext>``; describes it for the page."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, Optional[str]] = {}  # sha256 -> file name under media/ (None: not viewable)
        self.notes: dict[str, str] = {}

    def add(self, media: Media) -> tuple[dict[str, Any], Optional[str]]:
        """(the part as the page shows it, the content hash; None if the bytes could not be read)."""
        part: dict[str, Any] = {"kind": media.kind, "name": media.name}
        try:
            data = media.read_bytes()
        except (OSError, ValueError) as exc:
            part["note"] = f"cannot read {media.name}: {getattr(exc, 'strerror', None) or exc}"
            return part, None
        digest = sha256_hex(data)
        if digest not in self.files:
            self.files[digest] = self._write(media.kind, data, digest)
        if self.files[digest] is not None:
            part["file"] = "media/" + self.files[digest]
        else:
            part["note"] = self.notes.get(digest, f"{media.kind} in a format the browser cannot show")
        part["sha256"] = digest
        return part, digest

    def _write(self, kind: str, data: bytes, digest: str) -> Optional[str]:
        ext = media_extension(kind, data)
        if ext is None and kind == "image":
            data, ext = _as_png(data), "png"
            if data is None:
                self.notes[digest] = "an image PIL cannot read; not shown"
                return None
        if ext is None:
            self.notes[digest] = f"{kind} in a format the browser cannot play; not copied"
            return None
        name = f"{digest}.{ext}"
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / name).write_bytes(data)
        return name


def _as_png(data: bytes) -> Optional[bytes]:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            buffer = io.BytesIO()
            image.convert("RGBA" if "A" in image.getbands() else "RGB").save(buffer, format="PNG")
            return buffer.getvalue()
    except Exception:  # any decoding failure: the page says the image cannot be shown
        return None


def _parts(request: Request, store: MediaStore) -> tuple[list[list[Any]], list[Optional[str]]]:
    """The replica as sent, in order: ``["text", str]`` or ``["media", {kind, name, file, sha256}]``."""
    parts, hashes = [], []
    for part in request.query():
        if isinstance(part, Media):
            shown, digest = store.add(part)
            parts.append(["media", shown])
            hashes.append(digest)
        else:
            parts.append(["text", part])
    return parts, hashes


def status_of(record: Record) -> str:
    """right, wrong, partial (a graded score strictly between 0 and 1) or unscored (no gold, no score)."""
    if record.correct is not None and record.score in (None, 0.0, 1.0):
        return "right" if record.correct else "wrong"
    if record.score is None:
        return "unscored" if record.correct is None else ("right" if record.correct else "wrong")
    return "right" if record.score >= 1.0 else "wrong" if record.score <= 0.0 else "partial"


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    """Without the empty values (None, "", [], {}) and false flags; 0 and 0.0 stay."""
    return {k: v for k, v in values.items()
            if not (v is None or v is False or (isinstance(v, (str, list, dict, tuple)) and not v))}  # fmt: skip


def _run_result(record: Record) -> dict[str, Any]:
    return _compact({
        "response": record.response, "parsed": record.parsed, "rule": record.parse_rule, "fallback": record.fallback,
        "error": record.error, "error_kind": record.error_kind, "score": record.score, "scores": record.scores,
        "correct": record.correct, "status": status_of(record), "nll": record.candidate_nll, "metric": record.metric,
    })  # fmt: skip


def _change(a: Record, b: Record) -> str:
    sa, sb = record_score(a), record_score(b)
    return "down" if sb < sa else "up" if sb > sa else "same"


@dataclass
class _Rebuilt:
    samples: dict[str, Sample] = field(default_factory=dict)
    order: list[Sample] = field(default_factory=list)
    notice: Optional[str] = None
    task: Any = None  # the rebuilt Task; None where it could not be rebuilt


def _rebuild_task(name: str, run: Run, data: Optional[str]) -> _Rebuilt:
    try:
        task, _, _, source = rebuild_task(name, run.results, TaskOverrides(data=data))
        if source.startswith("recorded settings"):
            raise ViewError(source.removeprefix("recorded settings (").removesuffix(")"))
        samples = task.samples()
    except (S3evalError, OSError, ValueError, KeyError) as exc:
        return _Rebuilt(notice=f"questions and media are not shown: the task could not be rebuilt from the run's "
                               f"arguments ({exc}); if its data moved, pass --data DIR")  # fmt: skip
    return _Rebuilt({s.id: s for s in samples}, list(samples), task=task)


def _identity(run: Run) -> dict[str, Any]:
    results = run.results
    model = dict(results.get("model", {}))
    details = dict(model.get("details") or {})
    details.pop("token_encodings", None)  # tokenizer facts: long and of no use to a reader
    config = {k: v for k, v in results.get("config", {}).items()
              if k not in ("output_dir", "leaderboard", "tasks", "model", "model_args")}  # fmt: skip
    identity = {
        "label": run.label, "path": str(run.path), "describe": describe(run), "model": model.get("name"),
        "checkpoint": model.get("checkpoint"), "checkpoint_hash": model.get("checkpoint_hash"),
        "timestamp": results.get("timestamp"), "git_commit": results.get("git_commit"),
        "config_hash": results.get("config_hash"), "model_args": results.get("config", {}).get("model_args", {}),
        "model_details": details, "config": config, "parser": results.get("parser", {}),
    }  # fmt: skip
    if model.get("name") == "s3":
        from ..models.s3 import prompt as s3prompt

        spec = details.get("spec") or {}
        identity["s3_prompt"] = {
            "system": spec.get("system_prompt", s3prompt.NOTEBOOK_SYSTEM_PROMPT), "bos": s3prompt.BOS,
            "begin_system": s3prompt.BEGIN_SYSTEM, "begin_user": s3prompt.BEGIN_USER, "begin_bot": s3prompt.BEGIN_BOT,
            "end": s3prompt.END_REPLICA, "image": s3prompt.modality_block("image"),
            "audio": s3prompt.modality_block("audio"),
        }  # fmt: skip
    return identity


def _selected(records: Sequence[Record], rebuilt: _Rebuilt, ids: Optional[Sequence[str]]) -> list[Record]:
    if ids is None:
        return list(records)
    present = {r.sample_id for r in records}
    if rebuilt.order:
        keep = {s.id for s in by_ids([s for s in rebuilt.order if s.id in present], ids)}
    else:
        wanted = set(ids)
        keep = {r.sample_id for r in records if r.sample_id in wanted or (r.unit is not None and r.unit in wanted)}
    return [r for r in records if r.sample_id in keep]


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


class _Requests:
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


def _media_hashes(request: Request) -> list[Optional[str]]:
    """The content hashes of the request's media (None where one cannot be read), as a record keeps them."""
    hashes: list[Optional[str]] = []
    for media in request.media:
        try:
            hashes.append(media.content_hash())
        except (OSError, ValueError):
            hashes.append(None)
    return hashes


Parts = list[list[Any]]  # the replica as the page shows it (``_parts``)


def _question(sample: Sample, pair: Sequence[Record], requests: _Requests, sent: Sequence[dict[str, Request]],
              ablations: Sequence[Ablation], store: MediaStore) -> tuple[Optional[Parts], list[str]]:  # fmt: skip
    """(the replica as run A sent it, the item's notes): the prompt and each run's media checked against what that
    run sent, and how run B sent the item where it ablated the media otherwise than A."""
    request = requests.built(sample)
    if isinstance(request, Exception):
        if all(r.error_kind == "data" for r in pair):  # the record's own error says it
            return None, []
        return None, [f"its request could not be built again: {request}"]
    as_sent = [s.get(sample.id, request) for s in sent]  # an item a run did not send is shown as built
    parts, hashes = _parts(as_sent[0], store)
    notes = []
    if any(r.prompt_hash and r.prompt_hash != request.prompt_hash for r in pair):
        notes.append("the prompt built now differs from the one the run sent: the data or the code changed since "
                     "the run")  # fmt: skip
    own = [hashes if s is as_sent[0] else _media_hashes(s) for s in as_sent]  # each run's media as it sent them
    if any(r.prompt_hash and r.media_hashes and r.media_hashes != h for r, h in zip(pair, own)):
        notes.append("the media found now differ from those the run sent: the data changed since the run")
    if len(pair) == 2 and ablations[0] != ablations[1] and pair[1].prompt_hash and own[1] != hashes:
        notes.append(f"run B sent this item {_SENT_ITEM[ablations[1].mode]} ({ablations[1].flag})")
    return parts, notes


def _task_items(name: str, runs: Sequence[Run], rebuilt: _Rebuilt, store: MediaStore,
                ids: Optional[Sequence[str]]) -> list[dict[str, Any]]:  # fmt: skip
    base = _selected(runs[0].records[name], rebuilt, ids)
    others = [{r.sample_id: r for r in run.records[name]} for run in runs[1:]]
    task = rebuilt.task
    requests = _Requests(task, rebuilt.samples)
    ablations = [ablation_of(run, name) for run in runs]
    # Each run's requests as it sent them: ablated over all of the run's records, not only the items shown.
    sent = [requests.sent(run.records[name], a) if task is not None else {} for run, a in zip(runs, ablations)]
    items = []
    for record in base:
        if any(record.sample_id not in other for other in others):
            continue  # paired views show the items both runs have
        pair = [record] + [other[record.sample_id] for other in others]
        item: dict[str, Any] = {
            "id": record.sample_id, "unit": record.unit, "groups": record.groups, "type": record.answer_type,
            "choices": record.choices, "gold": record.gold, "cands": record.candidates,
            "runs": [_run_result(r) for r in pair],
        }  # fmt: skip
        notes = []
        sample = rebuilt.samples.get(record.sample_id)
        if task is not None and sample is None:
            notes.append("this item is not in the task's data any more; its question is not shown")
        elif task is not None and sample is not None:
            item["prev"] = sample.follows
            if sample.error is not None:
                if not all(r.error_kind == "data" for r in pair):  # else the record's own error says it
                    notes.append(f"the item could not be loaded: {sample.error}")
            else:
                item["q"], found = _question(sample, pair, requests, sent, ablations, store)
                notes += found
        if len(pair) == 2:
            item["change"] = _change(*pair)
            if pair[0].prompt_hash and pair[1].prompt_hash and pair[0].prompt_hash != pair[1].prompt_hash:
                notes.append("the two runs sent different prompts for this item")
        item["notes"] = notes
        items.append(_compact(item))
    if len(runs) == 2:  # the flips first: right→wrong (score down), then wrong→right (score up), then the rest
        rank = {"down": 0, "up": 1}
        items.sort(key=lambda i: rank.get(i.get("change", "same"), 2))
    return items


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


def _script(global_name: str, value: Any, index: Optional[int] = None) -> str:
    """JavaScript assigning ``value`` (as JSON) to a global; ``<``, ``>``, ``&`` and the line separators escaped,
    so the text stays inert even if someone pastes it into an HTML page."""
    text = json.dumps(_finite(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                          ("\u2029", "\\u2029")):  # fmt: skip
        text = text.replace(char, escaped)
    if index is None:
        return f"window.{global_name} = {text};\n"
    return f"(window.{global_name} = window.{global_name} || {{}})[{index}] = {text};\n"


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float (a failed likelihood, say) as None: JSON has no NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def default_out(runs: Sequence[Run]) -> Path:
    """RUN/view; for two runs A/compare-<B>/view, beside the ``s3eval compare A B`` report that links to it."""
    if len(runs) == 1:
        return runs[0].path / "view"
    return runs[0].path / f"compare-{runs[1].label}" / "view"


def _check_out(out: Path) -> None:
    if out.exists() and not (out / MARKER).exists() and (not out.is_dir() or any(out.iterdir())):
        raise ViewError(f"{out} exists and is not a viewer folder s3eval wrote; choose another --out or remove it")


@dataclass
class ViewOutcome:
    out: Path
    items: int
    tasks: list[str]
    bytes: int
    media_files: int
    notices: list[str]


def build_view(runs: Sequence[Path], out: Optional[Path] = None, tasks: Optional[Sequence[str]] = None,
               samples: Optional[Sequence[str]] = None, data: Optional[str] = None) -> ViewOutcome:  # fmt: skip
    """Write the viewer of ``runs`` (one run, or two side by side) to ``out``."""
    if not 1 <= len(runs) <= 2:
        raise ViewError("view takes one run directory, or two to show side by side")
    loaded = [load_run(Path(p)) for p in runs]
    out = Path(out) if out is not None else default_out(loaded)
    _check_out(out)
    order = list(loaded[0].results.get("tasks", {})) + sorted(loaded[0].records)  # the run's task order
    names = [t for t in dict.fromkeys(order) if t in loaded[0].records and all(t in r.records for r in loaded[1:])]
    if not names:
        raise ViewError(f"{runs[0]} and {runs[1]} share no task")
    if tasks:
        unknown = [t for t in tasks if t not in names]
        if unknown:
            where = "both runs" if len(loaded) == 2 else runs[0]
            raise ViewError(f"no task {', '.join(map(repr, unknown))} in {where} (it has {', '.join(names)})")
        names = [t for t in names if t in tasks]
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        outcome = _write(staging, loaded, names, samples, data)
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    outcome.out = out
    return outcome


def _write(root: Path, runs: Sequence[Run], names: Sequence[str], ids: Optional[Sequence[str]],
           data: Optional[str]) -> ViewOutcome:  # fmt: skip
    store = MediaStore(root / "media")
    (root / "data").mkdir()
    index, notices, total = [], [], 0
    for name in names:
        rebuilt = _rebuild_task(name, runs[0], data)
        items = _task_items(name, runs, rebuilt, store, ids)
        if ids is not None and not items:
            continue
        records = runs[0].records[name]
        entries = [run.results.get("tasks", {}).get(name, {}) for run in runs]
        kinds = list(getattr(rebuilt.task, "group_kinds", ()) or ()) or group_kinds_of(records)
        kinds = [k for k in kinds if any(k in i.get("groups", {}) for i in items)]
        task_notices = ([rebuilt.notice] if rebuilt.notice else []) + media_notices(runs, name)
        if len(runs) == 2:  # runs that differ only in their media mode send other media by design, as compare says
            ablation = differ_only_in_media(runs[0], runs[1])
            task_notices += [f"the runs differ: {m}" for m in mismatches(runs[0], runs[1], name, ablation)]
        notices += [f"{name}: {n}" for n in task_notices]
        number = len(index)
        index.append({
            "name": name, "file": f"data/task-{number}.js", "n": len(items),
            "kind": entries[0].get("kind") or item_kind(records), "unit": entries[0].get("unit", "item"),
            "metric": entries[0].get("metric"), "group_kinds": kinds, "notices": task_notices,
            "headlines": [e.get("headline") for e in entries], "settings": [e.get("settings") for e in entries],
            "right_wrong": (entries[0].get("kind") or item_kind(records)) == RIGHT_WRONG,
        })  # fmt: skip
        (root / "data" / f"task-{number}.js").write_text(_script("S3VIEW_TASKS", {"items": items}, number),
                                                         encoding="utf-8")  # fmt: skip
        total += len(items)
    if ids is not None and not index:
        raise ViewError(f"--samples: none of {', '.join(map(repr, list(ids)[:5]))} is an item of "
                        f"{', '.join(names)}")  # fmt: skip
    meta = {"version": 1, "paired": len(runs) == 2, "runs": [_identity(run) for run in runs], "tasks": index}
    (root / "data.js").write_text(_script("S3VIEW", meta), encoding="utf-8")
    (root / "assets").mkdir()
    for asset in PAGE_FILES:
        shutil.copyfile(ASSETS / asset, root / "assets" / asset)
    shutil.copyfile(ASSETS / "index.html", root / "index.html")
    (root / MARKER).write_text("written by `s3eval view`; the folder is replaced when the view is written again\n")
    os.chmod(root, 0o755)  # mkdtemp makes it private; the viewer is an ordinary folder
    return ViewOutcome(root, total, [t["name"] for t in index], folder_bytes(root),
                       sum(v is not None for v in store.files.values()), notices)  # fmt: skip


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def describe_size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def iter_items(view_dir: Path) -> Iterable[dict[str, Any]]:
    """The items a viewer folder holds, task by task, read back from its data files (for tests and tools)."""
    meta = read_script(Path(view_dir) / "data.js")
    for task in meta["tasks"]:
        yield from read_script(Path(view_dir) / task["file"])["items"]


def read_script(path: Path) -> Any:
    """The value a data file written by ``_script`` assigns."""
    text = path.read_text(encoding="utf-8")
    start = text.index("] = ") + 4 if text.startswith("(") else text.index(" = ") + 3
    return json.loads(text[start : text.rstrip().rindex(";")])
