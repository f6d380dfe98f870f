"""Unit-paired comparison of runs: on the units the runs share (items, circular questions, dialogs), per task and
per group, each run's score as the task's headline defines it (``s3eval.paired``), the delta against the first
run, a paired bootstrap 95 % CI over units, a p-value (exact McNemar for right/wrong units, a paired sign-flip
test over units for graded ones), a significance flag and the items whose score changed. Runs that differ only
in their media mode (``config.media``) also get the media gain: the keep run's score minus the ablated run's.

Rows: ``accuracy_a``/``accuracy_b`` are the mean per-item score over the paired units' items (as the run's
summary counts); ``score_a``/``score_b`` are the headline's score on the paired units (the overall row) or the
mean of the group's unit scores (a group row); ``delta``, the CI and p are about the score."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from .aggregate import group_kinds_of, record_score
from .config import what_decides_results
from .errors import S3evalError
from .media_ablation import KEEP
from .paired import MCNEMAR, definition_of, pair_units, paired_test, unit_of, unit_rule
from .rescore import load_own_records, own_record_files
from .results import MEAN, Headline, TaskResult
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


def media_mode(run: Run) -> str:
    """The run's media ablation (``config.media``); runs written before it existed kept their media."""
    return run.results.get("config", {}).get("media") or KEEP


def _config_without_media(run: Run) -> dict:
    values = what_decides_results(run.results.get("config", {}))
    return {k: v for k, v in values.items() if k not in ("media", "media_seed")}


def differ_only_in_media(a: Run, b: Run) -> bool:
    """The runs asked the same model the same questions and differ in their media mode alone: their media hashes
    differ by design, and the difference in score is what the media carry."""
    return media_mode(a) != media_mode(b) and _config_without_media(a) == _config_without_media(b)


def mismatches(a: Run, b: Run, task: str, media_ablation: bool = False) -> list[str]:
    """What makes the runs' results of ``task`` not comparable: parser, task settings, headline definition, and on
    shared items the prompts and (unless ``media_ablation``: the runs differ only in their media mode) the media."""
    problems = []
    if a.results["parser"]["version"] != b.results["parser"]["version"]:
        problems.append(f"parser version {a.results['parser']['version']} vs {b.results['parser']['version']}")
    sa, sb = a.results["tasks"][task]["settings"], b.results["tasks"][task]["settings"]
    problems += [f"{task} {k}: {sa.get(k)!r} vs {sb.get(k)!r}" for k in _SETTINGS_CHECKED if sa.get(k) != sb.get(k)]
    da = definition_of(a.results["tasks"][task].get("headline") or {})
    db = definition_of(b.results["tasks"][task].get("headline") or {})
    problems += [f"{task} headline {k}: {da[k]!r} vs {db[k]!r}" for k in da if da[k] != db[k]]
    prompts_a = {r.sample_id: r.prompt_hash for r in a.records[task]}
    differing = [r.sample_id for r in b.records[task] if r.sample_id in prompts_a and prompts_a[r.sample_id] != r.prompt_hash]
    if differing:
        problems.append(f"{task}: {len(differing)} shared items have different prompts, e.g. {differing[:3]}")
    if not media_ablation:
        media_a = {r.sample_id: r.media_hashes for r in a.records[task]}
        changed = [r.sample_id for r in b.records[task]
                   if r.sample_id in media_a and media_a[r.sample_id] != r.media_hashes]  # fmt: skip
        if changed:
            problems.append(f"{task}: {len(changed)} shared items have different media, e.g. {changed[:3]}")
    return problems


def headline_of(run: Run, task: str) -> Headline:
    """The task's recorded headline, refused (re-run, responses are reused) where it predates unit scoring."""
    where = f"{run.path / 'results.json'}: task {task!r}"
    headline = TaskResult.from_dict(task, run.results["tasks"][task], str(run.path / "results.json")).headline
    unit_rule(headline, where)
    return headline


def group_headline(headline: Headline) -> Headline:
    """A group's score: the mean of its unit scores (a weighted headline's weights belong to the whole task)."""
    return replace(headline, aggregation=MEAN, strata=None, strata_weights={}) if headline.strata else headline


def _row(task: str, kind: str, group: str, ours: Sequence[Record], theirs: Sequence[Record], headline: Headline,
         labels: tuple[str, str], alpha: float, mismatch: str) -> Optional[dict]:  # fmt: skip
    units = pair_units(ours, theirs, headline)
    if not units.ids:
        return None
    result = paired_test(units, headline, alpha=alpha)
    paired = set(units.ids)
    a = [record_score(r) for r in ours if unit_of(r, headline) in paired]
    b = [record_score(r) for r in theirs if unit_of(r, headline) in paired]
    return {
        "task": task, "group_kind": kind, "group": group, "run_a": labels[0], "run_b": labels[1], "n": len(a),
        "unit": headline.unit, "n_units": result.n_units, "accuracy_a": sum(a) / len(a),
        "accuracy_b": sum(b) / len(b), "score_a": result.baseline_score, "score_b": result.candidate_score,
        "delta": result.delta, "ci_low": result.ci_low, "ci_high": result.ci_high,
        "only_a_correct": result.n_baseline_better, "only_b_correct": result.n_candidate_better,
        "test": "mcnemar" if result.test == MCNEMAR else "sign-flip", "p_value": result.p_two_sided,
        "significant": result.p_two_sided < alpha, "n_units_dropped": result.n_dropped,
        "mismatch": mismatch,  # what differs between the runs, compared anyway with --allow-mismatch
    }  # fmt: skip


def _task_rows(task: str, base: Run, other: Run, headline: Headline, alpha: float, mismatch: str) -> list[dict]:
    """The overall row (the headline) and a row per group of every group kind (the mean of its unit scores); a
    record's group is the reference run's, so both runs' records of an item land in the same group."""
    ours, theirs = base.records[task], other.records[task]
    labels = (base.label, other.label)
    rows = [_row(task, "overall", "all", ours, theirs, headline, labels, alpha, mismatch)]
    within = group_headline(headline)
    for kind in group_kinds_of(ours):
        group_of = {r.sample_id: r.groups.get(kind, "") for r in ours}
        split_ours: dict[str, list[Record]] = {}
        split_theirs: dict[str, list[Record]] = {}
        for record in ours:
            split_ours.setdefault(group_of[record.sample_id], []).append(record)
        for record in theirs:
            if record.sample_id in group_of:
                split_theirs.setdefault(group_of[record.sample_id], []).append(record)
        rows += [_row(task, kind, group, members, split_theirs.get(group, []), within, labels, alpha, mismatch)
                 for group, members in split_ours.items()]  # fmt: skip
    return [row for row in rows if row is not None]


def compare_runs(runs: Sequence[Run], allow_mismatch: bool = False, alpha: float = 0.05) -> tuple[list[dict], list[dict]]:
    """(rows, flipped items) comparing every run with the first, on the tasks and items they share."""
    if len(runs) < 2:
        raise CompareError("compare needs at least two run directories")
    base = runs[0]
    rows, flips = [], []
    for other in runs[1:]:
        tasks = _shared_tasks(base, other)
        ablation = differ_only_in_media(base, other)
        problems = [p for t in tasks for p in mismatches(base, other, t, ablation)]
        if problems and not allow_mismatch:
            raise CompareError(
                f"{base.path} and {other.path} are not comparable (pass --allow-mismatch to compare anyway):\n  "
                + "\n  ".join(problems)
            )
        for task in tasks:
            mismatch = "; ".join(mismatches(base, other, task, ablation))
            theirs = {r.sample_id: r for r in other.records[task]}
            pairs = [(r, theirs[r.sample_id]) for r in base.records[task] if r.sample_id in theirs]
            if not pairs:
                continue
            rows += _task_rows(task, base, other, headline_of(base, task), alpha, mismatch)
            flips += [
                {"task": task, "sample_id": x.sample_id, "run_a": base.label, "run_b": other.label,
                 "a_correct": bool(x.correct), "b_correct": bool(y.correct), "a_score": record_score(x),
                 "b_score": record_score(y), "a_parsed": x.parsed, "b_parsed": y.parsed}
                for x, y in pairs if record_score(x) != record_score(y)
            ]  # fmt: skip
    return rows, flips


def _shared_tasks(base: Run, other: Run) -> list[str]:
    """The scored tasks both runs hold, their headlines checked for unit scoring first (a re-run is the fix, not
    --allow-mismatch)."""
    tasks = [t for t in base.records if t in other.records]
    if not tasks:
        raise CompareError(f"{base.path} and {other.path} share no task")
    tasks = [t for t in tasks if base.results["tasks"].get(t, {}).get("has_gold", True)]
    for task in tasks:
        headline_of(base, task), headline_of(other, task)
    return tasks


def answer_of(record: Record) -> Any:
    """What a record answered: its parsed answer, else its stripped response."""
    if record.parsed is not None:
        return record.parsed
    return None if record.response is None else record.response.strip()


def media_gain_rows(runs: Sequence[Run], alpha: float = 0.05) -> list[dict]:
    """Per task, for every run paired with the first where the two differ only in their media mode and one of them
    kept its media: the keep run's score minus the ablated run's on the paired units, its 95 % interval and p (as
    the compare rows), and the share of the paired items answered the same (``answer_of``) without the media."""
    out = []
    for other in runs[1:]:
        if not differ_only_in_media(runs[0], other) or KEEP not in (media_mode(runs[0]), media_mode(other)):
            continue
        keep, ablated = (runs[0], other) if media_mode(runs[0]) == KEEP else (other, runs[0])
        for task in _shared_tasks(keep, ablated):
            headline = headline_of(keep, task)
            units = pair_units(ablated.records[task], keep.records[task], headline)
            if not units.ids:
                continue
            result = paired_test(units, headline, alpha=alpha)
            paired = set(units.ids)
            answers = {r.sample_id: answer_of(r) for r in ablated.records[task] if unit_of(r, headline) in paired}
            kept = [r for r in keep.records[task] if r.sample_id in answers]
            unchanged = sum(answer_of(r) == answers[r.sample_id] for r in kept)
            out.append({
                "task": task, "run_keep": keep.label, "run_ablated": ablated.label, "media": media_mode(ablated),
                "metric": headline.metric, "unit": headline.unit, "n_units": result.n_units,
                "score_keep": result.candidate_score, "score_ablated": result.baseline_score, "gain": result.delta,
                "ci_low": result.ci_low, "ci_high": result.ci_high,
                "test": "mcnemar" if result.test == MCNEMAR else "sign-flip", "p_value": result.p_two_sided,
                "n_items": len(kept), "unchanged_share": unchanged / len(kept) if kept else None,
            })  # fmt: skip
    return out


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
    return percent_frame(frame[list(columns)])


def percent_frame(frame):
    """``frame`` with its scores, deltas and p-values as text: percentages with one decimal, p to three digits."""
    shown = frame.copy()
    for column in ("accuracy_a", "accuracy_b", "score_a", "score_b", "score_keep", "score_ablated", "unchanged_share"):
        if column in shown:
            shown[column] = (shown[column] * 100).map("{:.1f}".format)
    for column in ("delta", "gain", "ci_low", "ci_high"):
        if column in shown:
            shown[column] = (shown[column] * 100).map("{:+.1f}".format)
    if "p_value" in shown:
        shown["p_value"] = shown["p_value"].map(lambda p: f"{p:.3g}")
    return shown


ROW_COLUMNS = ["task", "group", "run_b", "unit", "n_units", "score_a", "score_b", "delta", "ci_low", "ci_high", "test",
               "p_value", "significant"]  # fmt: skip
MEDIA_GAIN_COLUMNS = ["task", "run_keep", "run_ablated", "media", "unit", "n_units", "score_keep", "score_ablated",
                      "gain", "ci_low", "ci_high", "test", "p_value", "unchanged_share"]  # fmt: skip


def format_rows(rows: Sequence[dict], kinds: Mapping[str, Optional[str]]) -> str:
    shown = display_frame(rows, kinds, ROW_COLUMNS)
    return "(nothing shared)" if shown.empty else shown.to_string(index=False)


def format_media_gains(gains: Sequence[dict]) -> str:
    """The media gain table: percentages, the gain's 95 % interval, p, and the share of answers unchanged."""
    import pandas as pd

    return percent_frame(pd.DataFrame(list(gains))[MEDIA_GAIN_COLUMNS]).to_string(index=False)
