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
A run that ablated its media (``--media``) is shown as it sent them (``sent``).
Dialog turns link to their previous turn, so the page shows the whole transcript with each run's own earlier
answers."""

from __future__ import annotations

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
from ..rescore import TaskOverrides, rebuild_task
from ..results import item_kind
from ..scoring import RIGHT_WRONG
from ..selection import by_ids
from ..types import Record, Sample
from .media import MediaStore
from .sent import Requests, ablation_of, media_notices, question

ASSETS = Path(__file__).resolve().parent / "assets"
MARKER = ".s3eval-view"
PAGE_FILES = ("viewer.js", "viewer.css")

# Formats a browser shows as they are; other images are converted to PNG (named by the original's hash).
class ViewError(S3evalError, ValueError):
    pass


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


def _task_items(name: str, runs: Sequence[Run], rebuilt: _Rebuilt, store: MediaStore,
                ids: Optional[Sequence[str]]) -> list[dict[str, Any]]:  # fmt: skip
    base = _selected(runs[0].records[name], rebuilt, ids)
    others = [{r.sample_id: r for r in run.records[name]} for run in runs[1:]]
    task = rebuilt.task
    requests = Requests(task, rebuilt.samples)
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
                item["q"], found = question(sample, pair, requests, sent, ablations, store)
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
