"""Runs tasks through a model: build requests, have ``generation`` answer them (responses appended durably as
they come), then score in canonical order, and write the run directory and leaderboard rows."""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Sequence


from . import answer_parser as ap
from . import leaderboard, media_ablation, selection
from .cache import set_cache_root
from .config import RunConfig
from .distributed import Shard
from .models import Model, build_model
from .provenance import canonical_hash, git_commit, package_versions
from .results import TaskResult, build_result, records_file_name
from .scoring import score_records
from .generation import RunError  # noqa: F401  (re-exported: `run` raises it)
from .generation import Pending, check_likelihood_support, generate_all, raise_first_error
from .response_log import ResponseLog, log_name, supersede_logs
from .run_lock import hold
from .storage import StorageError, atomic_write_json, atomic_write_text, read_json
from .task import Task, TaskError, TaskOptions
from .task_registry import build_task, load_definitions
from .threads import apply_threads
from .types import Record

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SINGLE_PROCESS = Shard()


@dataclass
class RunOutcome:
    run_dir: Path
    results: dict  # results.json as written
    tasks: list[TaskResult]
    # Per task: (responses reused from an earlier, interrupted or finished run of the same config, requests).
    resumed: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def scores(self) -> dict[str, Optional[float]]:
        """The headline score per task."""
        return {result.task: result.headline.score for result in self.tasks}


def initial_record(task: Task, sample) -> Record:
    record = Record(
        task=task.name,
        sample_id=sample.id,
        answer_type=sample.answer_type,
        choices=list(sample.choices),
        gold=sample.gold if sample.gold is None or isinstance(sample.gold, str) else list(sample.gold),
        groups=task.groups(sample),
        unit=sample.unit,
        metric=task.metric_for(sample),
    )
    if sample.error is not None:
        record.error, record.error_kind = sample.error, "data"
    return record


def _prepare(task: Task, samples, max_new_tokens: Optional[int], media: str = media_ablation.KEEP,
             media_seed: int = 0) -> tuple[list[Record], list[Pending], list[str]]:  # fmt: skip
    """Records and requests of the task's samples, the requests ablated as ``media`` says, and the ablation's
    notes (``media_ablation.notes``)."""
    records, pending = [], []
    ids = {sample.id for sample in samples}
    for sample in samples:
        record = initial_record(task, sample)
        records.append(record)
        if sample.follows is not None and sample.follows not in ids:
            record.error, record.error_kind = (
                f"{sample.id}: its previous turn {sample.follows!r} is not in the run (did --limit cut the dialog?)",
                "data",
            )
        if record.error is not None:
            continue
        try:
            request = task.build_request(sample)
            record.media_hashes = [m.content_hash() for m in request.media]
        except (TaskError, OSError, ValueError) as exc:
            record.error, record.error_kind = f"{sample.id}: {exc}", "data"
            continue
        if max_new_tokens is not None:
            request = replace(request, max_new_tokens=max_new_tokens)
        record.prompt_hash = request.prompt_hash
        record.candidates = list(request.candidates)
        pending.append(Pending(record, request, sample.follows))
    return records, pending, _ablate(pending, media, media_seed)


def _ablate(pending: list[Pending], mode: str, seed: int) -> list[str]:
    """Swap each pending request for its ablated version, all of the task's at once (shuffle draws donors across
    them). ``prompt_hash`` stays the unablated request's, so keep and ablated runs pair item by item; the media
    hashes become those of the media sent."""
    if mode == media_ablation.KEEP:
        return []
    requests = [p.request for p in pending]
    units = [p.record.unit or p.record.sample_id for p in pending]
    # Shuffled media were hashed already, as their own items' media: no file is read twice.
    known = {(m.path, m.data): h for p in pending for m, h in zip(p.request.media, p.record.media_hashes)
             if m.path is not None or m.data is not None}  # fmt: skip
    for item, request in zip(pending, media_ablation.ablate(requests, mode, seed, units)):
        item.request = request
        item.record.media_hashes = [known.get((m.path, m.data)) or m.content_hash() for m in request.media]
    return media_ablation.notes(requests, mode, units)


def write_records(path: Path, records: Sequence[Record]) -> None:
    atomic_write_text(path, "".join(r.to_json() + "\n" for r in records))


def _manifest(run_dir: Path, config_hash: str, model_hash: str, fresh: bool) -> dict:
    """The run's identity, kept across resumes so a resumed run reports exactly what an uninterrupted one would.
    The same config with other model content (a checkpoint changed in place) is a new run. ``fresh`` starts a new
    one and moves the earlier response logs aside."""
    path = run_dir / "run.json"
    if path.exists() and not fresh:
        manifest = read_json(path)
        if manifest.get("config_hash") == config_hash and manifest.get("model_hash") == model_hash:
            return manifest
    manifest = {"timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                "config_hash": config_hash, "model_hash": model_hash}  # fmt: skip
    if fresh:
        supersede_logs(run_dir, manifest["timestamp"])
    atomic_write_json(path, manifest)
    return manifest


def run(
    config: RunConfig, *, show_progress: bool = True, fresh: bool = False, fail_fast: bool = False,
    shard: Shard = SINGLE_PROCESS, model: Optional[Model] = None,
) -> Optional[RunOutcome]:  # fmt: skip
    """Run (or resume) the evaluation ``config`` describes. The run directory is named after the model and the
    config hash, so the same command continues an interrupted run; ``fresh`` ignores earlier responses.
    With a ``shard`` of a torchrun group every rank generates its share; rank 0 returns the outcome, the others
    None. ``model``: an already-built model to use instead of building ``config.model`` from ``config.model_args``
    (a sweep's swapped checkpoint, a training loop's modules); its identity still names the run's responses."""
    config.validate()
    if config.cache_dir is not None:
        set_cache_root(Path(config.cache_dir))
    apply_threads(config.threads)
    # Cheap checks first: task names and arguments, then model arguments (backends defer heavy loading),
    # then the data.
    for path in config.define:
        load_definitions(Path(path))
    tasks = [build_task(spec.name, TaskOptions(data=config.data, args=spec.args)) for spec in config.tasks]
    if model is None:
        model = build_model(config.model, config.model_args)
    task_samples = [selection.for_task(task, task.samples(), config) for task in tasks]
    selection.check(config.samples, tasks, task_samples)

    config_hash = config.result_hash()
    model_hash = canonical_hash(asdict(model.identity))
    run_id = config.run_name or f"{config.model}-{config_hash[:12]}"
    run_dir = Path(config.output_dir) / run_id
    with contextlib.ExitStack() as stack:
        if shard.is_main:
            try:
                run_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create run directory {run_dir}: {exc.strerror or exc}") from exc
            # One process per run directory: a second identical run would regenerate what the first is writing.
            stack.enter_context(hold(run_dir))
            manifest = _manifest(run_dir, config_hash, model_hash, fresh)
        shard.barrier()
        if not shard.is_main:
            manifest = _manifest(run_dir, config_hash, model_hash, fresh=False)
        prepared, media_notes = [], {}
        for task, samples in zip(tasks, task_samples):
            records, pending, media_notes[task.name] = _prepare(task, samples, config.max_new_tokens, config.media,
                                                                config.media_seed)  # fmt: skip
            prepared.append((task, records, pending))
        check_likelihood_support(model, prepared)
        if fail_fast:
            for _, records, _ in prepared:
                raise_first_error(records)
        log = ResponseLog(run_dir, log_name(shard.rank, shard.world_size))
        by_id = [{r.sample_id: r for r in records} for _, records, _ in prepared]
        resumed = {}
        for (task, _, pending), records in zip(prepared, by_id):
            share = shard.take(pending, unit_of=lambda p: p.record.unit or p.record.sample_id)
            reused = generate_all(model, model_hash, share, records, config, log, task.name,
                                  show_progress and shard.is_main, fail_fast)  # fmt: skip
            resumed[task.name] = (reused, sum(p.request.generate for p in share))
        if shard.world_size > 1:
            shard.barrier()  # every rank's responses are on disk
            if not shard.is_main:
                return None
            log = ResponseLog(run_dir, log_name(shard.rank, shard.world_size))  # now with all ranks' responses
            for (task, _, pending), records in zip(prepared, by_id):
                generate_all(model, model_hash, pending, records, config, log, task.name, False, fail_fast)

        results: dict[str, Any] = {
            "run_id": run_id,
            "timestamp": manifest["timestamp"],
            "config": config.to_dict(),
            "config_hash": config_hash,
            # Resolved, so `rescore RUN_DIR` rebuilds the run's own tasks from wherever it is called.
            "definitions": [str(Path(path).resolve()) for path in config.define],
            "git_commit": git_commit(PROJECT_ROOT),
            "packages": package_versions(),
            "model": asdict(model.identity),
            "parser": {"name": ap.PARSER_NAME, "version": ap.PARSER_VERSION, "fallback_seed": config.fallback_seed},
            "tasks": {},
        }
        outcomes = []
        for spec, (task, records, _) in zip(config.tasks, prepared):
            score_records(records, seed=config.fallback_seed)
            records_path = run_dir / records_file_name(task.name)
            write_records(records_path, records)
            extra = task.write_outputs(records, run_dir)
            result = build_result(task, records, arguments=spec.args, data=config.data, records_file=records_path.name,
                                  extra_files=[p.name for p in extra])  # fmt: skip
            ablation = media_ablation.recorded_settings(config.media, config.media_seed, media_notes[task.name])
            result.settings = {**result.settings, **ablation}
            outcomes.append(result)
            results["tasks"][task.name] = result.to_dict()
        atomic_write_json(run_dir / "results.json", results)
        if config.leaderboard:
            rows = [leaderboard.row_for(results, r, run_dir) for r in outcomes if r.has_gold and not all_failed(r)]
            if rows:
                # Idempotent per (run, start time, task): resuming after a crash that followed the append adds nothing.
                leaderboard.append_rows(Path(config.leaderboard), rows, unique_on=("run_id", "timestamp", "task"))
        return RunOutcome(run_dir, results, outcomes, resumed)


def all_failed(result: TaskResult) -> bool:
    """Every item failed in the model (broken weights, a backend that cannot run): not a score of 0, no row."""
    overall = result.summary["overall"]
    return overall["n"] > 0 and overall["n_model_error"] == overall["n"]
