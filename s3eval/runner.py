"""Runs tasks through a model: build requests, generate in batches (responses appended durably as they come),
then parse and score in canonical order, and write the run directory and leaderboard rows."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Sequence

from tqdm import tqdm

from . import answer_parser as ap
from . import leaderboard
from .aggregate import summarize
from .config import RunConfig
from .models import Model, build_model
from .provenance import canonical_hash, git_commit, package_versions
from .scoring import score_records
from .storage import append_lines, atomic_write_json, atomic_write_text
from .task import Task, TaskError, TaskOptions
from .task_registry import build_task
from .types import Record, Request

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class TaskOutcome:
    task: str
    summary: dict
    settings: dict
    records_path: Path
    extra_files: list[Path]


@dataclass
class RunOutcome:
    run_dir: Path
    results: dict
    tasks: list[TaskOutcome]


def initial_record(task: Task, sample) -> Record:
    record = Record(
        task=task.name,
        sample_id=sample.id,
        answer_type=sample.answer_type,
        choices=list(sample.choices),
        gold=sample.gold if sample.gold is None or isinstance(sample.gold, str) else list(sample.gold),
        groups=task.groups(sample),
    )
    if sample.error is not None:
        record.error, record.error_kind = sample.error, "data"
    return record


def _prepare(task: Task, samples, max_new_tokens: Optional[int]) -> tuple[list[Record], list[tuple[Record, Request]]]:
    records, pending = [], []
    for sample in samples:
        record = initial_record(task, sample)
        records.append(record)
        if record.error is not None:
            continue
        try:
            request = task.build_request(sample)
            record.media_hashes = [m.content_hash() for m in request.media]
        except (TaskError, OSError, ValueError) as exc:
            record.error, record.error_kind = f"{sample.id}: {exc}", "data"
            continue
        if max_new_tokens is not None:
            request = Request(request.task, request.sample_id, request.prompt, request.media, max_new_tokens)
        record.prompt_hash = request.prompt_hash
        pending.append((record, request))
    return records, pending


def _generate(model: Model, pending, batch_size: int, log_path: Path, label: str, show_progress: bool) -> None:
    with tqdm(total=len(pending), desc=label, unit="item", disable=not show_progress) as bar:
        for start in range(0, len(pending), batch_size):
            batch = pending[start : start + batch_size]
            t0 = time.perf_counter()
            responses = model.generate([request for _, request in batch])
            if len(responses) != len(batch):
                raise RuntimeError(f"model returned {len(responses)} responses for {len(batch)} requests")
            share = (time.perf_counter() - t0) / len(batch)
            lines = []
            for (record, _), response in zip(batch, responses):
                record.response = response.text
                record.seconds = response.seconds or share
                if response.error is not None:
                    record.error, record.error_kind = response.error, response.error_kind
                lines.append(json.dumps({
                    "task": record.task, "sample_id": record.sample_id, "prompt_hash": record.prompt_hash,
                    "response": record.response, "error": response.error, "seconds": record.seconds,
                }, ensure_ascii=False))  # fmt: skip
            append_lines(log_path, lines)
            bar.update(len(batch))


def write_records(path: Path, records: Sequence[Record]) -> None:
    atomic_write_text(path, "".join(r.to_json() + "\n" for r in records))


def leaderboard_row(results: dict, outcome: TaskOutcome, run_dir: Path, group_kind: Optional[str]) -> dict:
    overall = outcome.summary["overall"]
    model = results["model"]
    groups = outcome.summary["groups"].get(group_kind, {}) if group_kind else {}
    return {
        "timestamp": results["timestamp"],
        "run_id": results["run_id"],
        "model": model["name"],
        "checkpoint": model.get("checkpoint"),
        "checkpoint_hash": model.get("checkpoint_hash"),
        "task": outcome.task,
        "split": outcome.settings.get("split"),
        "answer_key": outcome.settings.get("answer_key"),
        "prompt_mode": outcome.settings.get("prompt_mode"),
        "parser": ap.PARSER_NAME,
        "parser_version": ap.PARSER_VERSION,
        "n": overall["n"],
        "n_fallback": overall["n_fallback"],
        "n_error": overall["n_error"],
        "n_missing": overall["n_missing"],
        "accuracy": overall["accuracy"],
        "strict_accuracy": overall["strict_accuracy"],
        "expected_accuracy": overall["expected_accuracy"],
        "accuracy_valid": overall["accuracy_valid"],
        "group_kind": group_kind,
        "group_accuracy": json.dumps({k: v["accuracy"] for k, v in groups.items()}, sort_keys=True) if groups else None,
        "config_hash": results["config_hash"],
        "git_commit": results["git_commit"],
        "run_dir": str(run_dir),
    }


def run(config: RunConfig, *, show_progress: bool = True) -> RunOutcome:
    config.validate()
    # Cheap checks first: task names and arguments, then model arguments (backends defer heavy loading),
    # then the data.
    tasks = [build_task(spec.name, TaskOptions(data=config.data, args=spec.args)) for spec in config.tasks]
    model = build_model(config.model, config.model_args)
    task_samples = []
    for task in tasks:
        samples = task.samples()
        task_samples.append(samples[: config.limit] if config.limit else samples)

    now = datetime.now(timezone.utc)
    config_hash = canonical_hash(config.to_dict())
    run_id = config.run_name or f"{now:%Y%m%dT%H%M%S}-{config.model}-{config_hash[:8]}"
    run_dir = Path(config.output_dir) / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "run_id": run_id,
        "timestamp": now.isoformat(timespec="seconds"),
        "config": config.to_dict(),
        "config_hash": config_hash,
        "git_commit": git_commit(PROJECT_ROOT),
        "packages": package_versions(),
        "model": {
            "name": model.identity.name,
            "checkpoint": model.identity.checkpoint,
            "checkpoint_hash": model.identity.checkpoint_hash,
            "details": dict(model.identity.details),
        },
        "parser": {"name": ap.PARSER_NAME, "version": ap.PARSER_VERSION, "fallback_seed": config.fallback_seed},
        "tasks": {},
    }
    outcomes = []
    for task, samples in zip(tasks, task_samples):
        records, pending = _prepare(task, samples, config.max_new_tokens)
        _generate(model, pending, config.batch_size, run_dir / "responses.jsonl", task.name, show_progress)
        score_records(records, seed=config.fallback_seed)
        records_path = run_dir / f"samples_{task.name}.jsonl"
        write_records(records_path, records)
        summary = summarize(records, task.group_kinds, task.group_order)
        extra = task.write_outputs(records, run_dir)
        outcome = TaskOutcome(task.name, summary, task.settings(), records_path, extra)
        outcomes.append(outcome)
        results["tasks"][task.name] = {
            "settings": outcome.settings,
            "has_gold": task.has_gold,
            "leaderboard_group": task.leaderboard_group,
            "summary": summary,
            "records": records_path.name,
            "extra_files": [p.name for p in extra],
        }
    atomic_write_json(run_dir / "results.json", results)
    if config.leaderboard:
        rows = [
            leaderboard_row(results, o, run_dir, results["tasks"][o.task]["leaderboard_group"])
            for o in outcomes
            if results["tasks"][o.task]["has_gold"]
        ]
        if rows:
            leaderboard.append_rows(Path(config.leaderboard), rows)
    return RunOutcome(run_dir, results, outcomes)
