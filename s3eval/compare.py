"""Item-paired comparison of runs: on the samples the runs share, per task and per group, the accuracy (mean
score) of each run, the delta against the first run, a paired bootstrap 95 % CI of the delta, a p-value (exact
McNemar for right/wrong scores, a paired sign-flip test for graded ones), a significance flag and the items
whose score changed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

from .aggregate import group_kinds_of, record_score
from .errors import S3evalError
from .rescore import load_own_records, own_record_files
from .results import item_kind
from .scoring import RIGHT_WRONG
from .stats import mcnemar_exact, paired_bootstrap_ci, paired_sign_flip_p
from .storage import read_json
from .types import Record

# What must agree for two runs to be comparable, per task.
_SETTINGS_CHECKED = ("prompt_mode", "answer_key", "answer_key_hash", "split", "metric", "metric_version")


class CompareError(S3evalError, ValueError):
    pass


@dataclass
class Run:
    path: Path
    label: str
    results: dict
    records: dict[str, list[Record]]


def load_run(path: Path) -> Run:
    path = Path(path)
    if not (path / "results.json").is_file():
        raise CompareError(f"{path}: not an s3eval run directory (no results.json)")
    results = read_json(path / "results.json")
    return Run(path, results.get("run_id", path.name), results, load_own_records(own_record_files(path)))


def describe(run: Run) -> str:
    """Who a run is: its id, model, checkpoint and checkpoint hash."""
    model = run.results["model"]
    checkpoint = f", checkpoint {model['checkpoint']}" if model.get("checkpoint") else ""
    fingerprint = f" ({model['checkpoint_hash'][:12]})" if model.get("checkpoint_hash") else ""
    return f"{run.label}: model {model['name']}{checkpoint}{fingerprint}, {run.path}"


def group_kind_of(run: Run, task: str) -> Optional[str]:
    """The grouping a task's run recorded for its leaderboard row (discipline, category, dialog type, …)."""
    return run.results["tasks"].get(task, {}).get("leaderboard_group")


def mismatches(a: Run, b: Run, task: str) -> list[str]:
    problems = []
    if a.results["parser"]["version"] != b.results["parser"]["version"]:
        problems.append(f"parser version {a.results['parser']['version']} vs {b.results['parser']['version']}")
    sa, sb = a.results["tasks"][task]["settings"], b.results["tasks"][task]["settings"]
    problems += [f"{task} {k}: {sa.get(k)!r} vs {sb.get(k)!r}" for k in _SETTINGS_CHECKED if sa.get(k) != sb.get(k)]
    prompts_a = {r.sample_id: r.prompt_hash for r in a.records[task]}
    differing = [r.sample_id for r in b.records[task] if r.sample_id in prompts_a and prompts_a[r.sample_id] != r.prompt_hash]
    if differing:
        problems.append(f"{task}: {len(differing)} shared items have different prompts, e.g. {differing[:3]}")
    return problems


def _row(task, kind, group, pairs, label_a, label_b, alpha, metric_kind, mismatch) -> dict:
    a = [record_score(x) for x, _ in pairs]
    b = [record_score(y) for _, y in pairs]
    only_a = sum(x > y for x, y in zip(a, b))
    only_b = sum(y > x for x, y in zip(a, b))
    low, high = paired_bootstrap_ci(a, b)
    binary = metric_kind == RIGHT_WRONG
    # Exact McNemar for right/wrong items; graded scores (VQA soft accuracy, METEOR) get a sign-flip test.
    p = mcnemar_exact(only_a, only_b) if binary else paired_sign_flip_p(a, b)
    n = len(pairs)
    return {
        "task": task, "group_kind": kind, "group": group, "run_a": label_a, "run_b": label_b, "n": n,
        "accuracy_a": sum(a) / n, "accuracy_b": sum(b) / n, "delta": (sum(b) - sum(a)) / n,
        "ci_low": low, "ci_high": high, "only_a_correct": only_a, "only_b_correct": only_b,
        "test": "mcnemar" if binary else "sign-flip", "p_value": p, "significant": p < alpha,
        "mismatch": mismatch,  # what differs between the runs, compared anyway with --allow-mismatch
    }  # fmt: skip


def compare_runs(runs: Sequence[Run], allow_mismatch: bool = False, alpha: float = 0.05) -> tuple[list[dict], list[dict]]:
    """(rows, flipped items) comparing every run with the first, on the tasks and items they share."""
    if len(runs) < 2:
        raise CompareError("compare needs at least two run directories")
    base = runs[0]
    rows, flips = [], []
    for other in runs[1:]:
        tasks = [t for t in base.records if t in other.records]
        if not tasks:
            raise CompareError(f"{base.path} and {other.path} share no task")
        problems = [p for t in tasks for p in mismatches(base, other, t)]
        if problems and not allow_mismatch:
            raise CompareError(
                f"{base.path} and {other.path} are not comparable (pass --allow-mismatch to compare anyway):\n  "
                + "\n  ".join(problems)
            )
        for task in tasks:
            mismatch = "; ".join(mismatches(base, other, task))
            theirs = {r.sample_id: r for r in other.records[task]}
            pairs = [(r, theirs[r.sample_id]) for r in base.records[task] if r.sample_id in theirs]
            if not pairs:
                continue
            # As the metrics declare it (both runs passed the metric check above, or --allow-mismatch).
            metric_kind = item_kind([r for pair in pairs for r in pair])
            rows.append(_row(task, "overall", "all", pairs, base.label, other.label, alpha, metric_kind, mismatch))
            for kind in group_kinds_of(r for r, _ in pairs):
                groups: dict[str, list] = {}
                for pair in pairs:
                    groups.setdefault(pair[0].groups.get(kind, ""), []).append(pair)
                for group, members in groups.items():
                    rows.append(_row(task, kind, group, members, base.label, other.label, alpha, metric_kind,
                                     mismatch))  # fmt: skip
            flips += [
                {"task": task, "sample_id": x.sample_id, "run_a": base.label, "run_b": other.label,
                 "a_correct": bool(x.correct), "b_correct": bool(y.correct), "a_score": record_score(x),
                 "b_score": record_score(y), "a_parsed": x.parsed, "b_parsed": y.parsed}
                for x, y in pairs if record_score(x) != record_score(y)
            ]  # fmt: skip
    return rows, flips


def chosen_kinds(rows: Sequence[dict], runs: Sequence[Run], requested: Optional[str]) -> dict[str, Optional[str]]:
    """Per task the group kind to show: ``requested`` where the task has it, else what its run recorded for the
    leaderboard (so MMMU shows disciplines, a QA set categories, dialogs their types); None: overall only."""
    present: dict[str, set] = {}
    for row in rows:
        present.setdefault(row["task"], set()).add(row["group_kind"])
    out = {}
    for task, kinds in present.items():
        recorded = group_kind_of(runs[0], task)
        out[task] = requested if requested in kinds else recorded if recorded in kinds else None
    return out


def display_frame(rows: Sequence[dict], kinds: Mapping[str, Optional[str]], columns: Sequence[str]):
    """The overall rows and those of each task's group kind (``kinds[task]``), numbers formatted as percentages."""
    import pandas as pd

    frame = pd.DataFrame([r for r in rows if r["group_kind"] in ("overall", kinds.get(r["task"]))])
    if frame.empty:
        return frame
    shown = frame[list(columns)].copy()
    for column in ("accuracy_a", "accuracy_b"):
        shown[column] = (shown[column] * 100).map("{:.1f}".format)
    for column in ("delta", "ci_low", "ci_high"):
        shown[column] = (shown[column] * 100).map("{:+.1f}".format)
    shown["p_value"] = shown["p_value"].map(lambda p: f"{p:.3g}")
    return shown


def format_rows(rows: Sequence[dict], kinds: Mapping[str, Optional[str]]) -> str:
    shown = display_frame(rows, kinds, ["task", "group", "run_b", "n", "accuracy_a", "accuracy_b", "delta", "ci_low",
                                        "ci_high", "test", "p_value", "significant"])  # fmt: skip
    return "(nothing shared)" if shown.empty else shown.to_string(index=False)
