"""The accuracy gate for CI, against a committed baseline.

``--baseline-run RUN`` (paired): the run and the baseline run are paired unit by unit per task
(``s3eval.paired``), and a task passes when a non-inferiority test gives evidence that the run is at most
``margin`` worse than the baseline: H0 Δ ≤ −margin, H1 Δ > −margin, PASS when p < ``alpha`` (exact McNemar for
right/wrong units of a mean headline, a paired bootstrap over units otherwise). Each line also says how many units
the test would need for 80 % power when the run is truly as good as the baseline: few units give little
evidence, so a small set can FAIL although nothing got worse (absence of evidence of a drop is not evidence of its
absence).

``--ablated-run RUN --min-media-gain X``: per task the media gain, the run's headline minus that of the same
checkpoint run without its media (``config.media``), on the paired units; FAIL when its estimate is below X.

``--baseline CSV`` (aggregate rows): compare each task's headline score with the CSV's last row for the task and
fail when it dropped by more than sampling noise explains. Modes:
- ``test`` (default): one-sided exact binomial test over the headline's units — with the baseline score p0 as
  the true rate, how likely is the run's k of n units or fewer? Fail when that probability is below ``alpha``.
  Only for right/wrong headlines that are a mean over independent units (``Headline.kind``/``aggregation``).
- ``tolerance``: fail when score < baseline − ``tolerance`` (absolute); for graded headlines (VQA soft accuracy,
  METEOR, the dialog integral).

A task without a baseline row is reported SKIP and fails only with ``require_all``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from . import leaderboard
from .compare import Run, differ_only_in_media, headline_of, load_run, media_mode, mismatches
from .errors import S3evalError
from .media_ablation import KEEP
from .paired import PairedResult, compare_records
from .results import MEAN, TaskResult
from .scoring import RIGHT_WRONG
from .stats import binomial_lower_tail
from .storage import read_json


class GateError(S3evalError, ValueError):
    pass


PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
BASELINE_ROW, NON_INFERIORITY, MEDIA_GAIN = "baseline", "non-inferiority", "media gain"


@dataclass
class GateResult:
    task: str
    status: str  # PASS, FAIL or SKIP
    reason: str
    check: str = BASELINE_ROW  # BASELINE_ROW (--baseline CSV), NON_INFERIORITY (--baseline-run) or MEDIA_GAIN
    numbers: dict[str, Any] = field(default_factory=dict)  # what the reason says, for --json

    @property
    def passed(self) -> bool:
        return self.status != FAIL

    def line(self) -> str:
        label = f"{self.task} {self.check}" if self.check == MEDIA_GAIN else self.task
        return f"{self.status} {label}: {self.reason}"


def check(run_dir: Path, baseline: Path, mode: str = "test", alpha: float = 0.05, tolerance: float = 0.02,
          tasks: Sequence[str] = (), require_all: bool = False) -> list[GateResult]:  # fmt: skip
    run = read_json(Path(run_dir) / "results.json")
    board = leaderboard.read(baseline)
    unknown = [t for t in tasks if t not in run["tasks"]]
    if unknown:
        raise GateError(f"{run_dir} has no task {unknown[0]!r} (it has {', '.join(run['tasks'])})")
    out = []
    for name, data in run["tasks"].items():
        result = TaskResult.from_dict(name, data, f"{run_dir}/results.json")
        if (tasks and name not in tasks) or not result.has_gold:
            continue
        rows = board[board["task"] == name]
        if rows.empty:
            status = FAIL if require_all else SKIP
            out.append(GateResult(name, status, f"no baseline row for task {name!r} in {baseline}"
                                  + (" (--require-all)" if require_all else "")))  # fmt: skip
            continue
        out.append(_gate(result, rows.iloc[-1], mode, alpha, tolerance))
    if not out:
        out.append(GateResult(",".join(tasks) or "*", FAIL, f"{run_dir} has no scored task to gate"))
    return out


def _gate(result: TaskResult, base, mode: str, alpha: float, tolerance: float) -> GateResult:
    headline = result.headline
    # Rows written before the headline existed carry only the accuracy, which was their headline.
    p0 = float(base["score"]) if not pd.isna(base["score"]) else float(base["accuracy"])
    score, n = headline.score, headline.n_units
    if score is None:
        return GateResult(result.task, FAIL, "the run has no score for this task (no scored items)")
    numbers = {"metric": headline.metric, "score": score, "baseline_score": p0, "unit": headline.unit, "n_units": n,
               "mode": mode}  # fmt: skip
    if mode == "tolerance":
        passed = score >= p0 - tolerance
        why = f"{headline.metric} {score:.4f} vs baseline {p0:.4f} − tolerance {tolerance} = {p0 - tolerance:.4f}"
        return GateResult(result.task, PASS if passed else FAIL, why, numbers={**numbers, "tolerance": tolerance})
    if headline.kind != RIGHT_WRONG or headline.aggregation != MEAN:
        return GateResult(result.task, FAIL, f"the exact binomial test needs a right/wrong score over independent "
                          f"units; {headline.metric} is {headline.kind} ({headline.aggregation}): use --mode tolerance")
    k = round(score * n)
    p = binomial_lower_tail(k, n, p0)
    passed = p >= alpha
    why = (f"{headline.metric} {k}/{n} {headline.unit}s = {score:.4f} vs baseline {p0:.4f}: P(≤ {k} | baseline "
           f"rate) = {p:.3g} {'≥' if passed else '<'} alpha {alpha}")  # fmt: skip
    return GateResult(result.task, PASS if passed else FAIL, why, numbers={**numbers, "p": p, "alpha": alpha})


def check_options(alpha: float, margin: float = 0.0) -> None:
    if not 0 < alpha < 1:
        raise GateError(f"--alpha must lie between 0 and 1, got {alpha}")
    if not 0 <= margin < 1:
        raise GateError(f"--margin is a difference of scores in [0, 1) (0.01 = one point), got {margin}")


def _gated(run: Run, tasks: Sequence[str]) -> list[str]:
    """The run's scored tasks with gold, or those of ``tasks``; an unknown name is an error."""
    unknown = [t for t in tasks if t not in run.results["tasks"]]
    if unknown:
        raise GateError(f"{run.path} has no task {unknown[0]!r} (it has {', '.join(run.results['tasks'])})")
    return [name for name, data in run.results["tasks"].items()
            if (not tasks or name in tasks) and data.get("has_gold", True) and name in run.records]  # fmt: skip


def _missing(task: str, other: Run, what: str, require_all: bool, check: str) -> GateResult:
    why = f"{what} {other.path} has no task {task!r}" + (" (--require-all)" if require_all else "")
    return GateResult(task, FAIL if require_all else SKIP, why, check)


def _refuse_mismatched(run: Run, other: Run, tasks: Sequence[str], media_ablation: bool = False) -> None:
    """One line naming what differs; a headline that predates unit scores is named first (the fix is a re-run)."""
    shared = [t for t in tasks if t in other.records]
    for task in shared:
        headline_of(run, task), headline_of(other, task)
    problems = [p for t in shared for p in mismatches(other, run, t, media_ablation)]
    if problems:
        raise GateError(f"{run.path} and {other.path} are not comparable: {'; '.join(problems)}")


def check_paired(run_dir: Path, baseline_run: Path, margin: float = 0.01, alpha: float = 0.05,
                 tasks: Sequence[str] = (), require_all: bool = False) -> list[GateResult]:  # fmt: skip
    """Per task a non-inferiority test of the run against ``baseline_run``, unit by unit (module docstring)."""
    check_options(alpha, margin)
    run, base = load_run(run_dir), load_run(baseline_run)
    names = _gated(run, tasks)
    _refuse_mismatched(run, base, names)

    def judge(result: PairedResult) -> tuple[bool, str, dict[str, Any]]:
        return result.n_units > 0 and result.noninferior(), describe_noninferiority(result), {}

    return _paired_checks(run, base, "the baseline run", base, names, tasks, require_all, NON_INFERIORITY, judge,
                          margin=margin, alpha=alpha)  # fmt: skip


def describe_noninferiority(r: PairedResult) -> str:
    if r.n_units == 0:
        return f"no {r.unit} was scored in both runs with the same records; nothing to test"
    passed = r.noninferior()
    power = (f"{r.n_needed}" if r.n_needed is not None else f"cannot be estimated ({r.power_note})")
    left_out = f"; {r.n_dropped} {r.unit}s not in both runs left out" if r.n_dropped else ""
    return (f"Δ {r.metric} {r.delta:+.4f} [{r.ci_low:+.4f}, {r.ci_high:+.4f}] ({r.candidate_score:.4f} vs baseline "
            f"{r.baseline_score:.4f}, {r.n_units} paired {r.unit}s{left_out}); {r.test_name}: non-inferiority "
            f"p = {r.p_noninferiority:.3g} {'<' if passed else '≥'} α {r.alpha} at margin {r.margin}; n needed for "
            f"80 % power: {power} (this run: {r.n_units})")  # fmt: skip


def check_media_gain(run_dir: Path, ablated_run: Path, min_gain: float, alpha: float = 0.05,
                     tasks: Sequence[str] = (), require_all: bool = False) -> list[GateResult]:  # fmt: skip
    """Per task the media gain of the run over ``ablated_run`` (the same checkpoint without its media); FAIL when
    its point estimate is below ``min_gain``."""
    run, ablated = load_run(run_dir), load_run(ablated_run)
    _check_ablation(run, ablated)
    names = _gated(run, tasks)
    _refuse_mismatched(run, ablated, names, media_ablation=True)
    mode = media_mode(ablated)

    def judge(result: PairedResult) -> tuple[bool, str, dict[str, Any]]:
        extra = {"min_gain": min_gain, "media": mode}
        if result.n_units == 0:
            return False, f"no {result.unit} was scored in both runs", extra
        passed = result.delta >= min_gain  # type: ignore[operator]
        why = (f"{result.metric} {result.candidate_score:.4f} with media − {result.baseline_score:.4f} with media "
               f"{mode} = {result.delta:+.4f} [{result.ci_low:+.4f}, {result.ci_high:+.4f}] "
               f"{'≥' if passed else '<'} minimum {min_gain} ({result.n_units} paired {result.unit}s)")  # fmt: skip
        return passed, why, extra

    return _paired_checks(run, ablated, "the ablated run", run, names, tasks, require_all, MEDIA_GAIN, judge,
                          alpha=alpha)  # fmt: skip


def _paired_checks(run: Run, reference: Run, reference_is: str, headlines: Run, names: Sequence[str],
                   tasks: Sequence[str], require_all: bool, check: str,
                   judge: Callable[[PairedResult], tuple[bool, str, dict[str, Any]]],
                   **options: Any) -> list[GateResult]:  # fmt: skip
    """Per task the run paired with ``reference`` unit by unit (the headline rule as ``headlines`` recorded it),
    PASS or FAIL as ``judge`` says; SKIP (FAIL with ``require_all``) where the reference lacks the task."""
    out = []
    for name in names:
        if name not in reference.records:
            out.append(_missing(name, reference, reference_is, require_all, check))
            continue
        result = compare_records(reference.records[name], run.records[name], headline_of(headlines, name), **options)
        passed, why, extra = judge(result)
        out.append(GateResult(name, PASS if passed else FAIL, why, check, {**_numbers(result), **extra}))
    return out or [GateResult(",".join(tasks) or "*", FAIL, f"{run.path} has no scored task to gate", check)]


def _check_ablation(run: Run, ablated: Run) -> None:
    """The ablated run must be the same checkpoint, asked the same, with only its media mode (not keep) changed."""
    if media_mode(ablated) == KEEP:
        raise GateError(f"--ablated-run {ablated.path} kept its media; give a run made with --media withhold, noise "
                        f"or shuffle")  # fmt: skip
    if media_mode(run) != KEEP:
        raise GateError(f"{run.path} was run with media {media_mode(run)}; the media gain needs the run with its media")
    ours, theirs = run.results["model"].get("checkpoint_hash"), ablated.results["model"].get("checkpoint_hash")
    if ours != theirs:
        raise GateError(f"--ablated-run {ablated.path} is another checkpoint ({str(theirs)[:12]} vs {str(ours)[:12]}); "
                        f"ablate the run's own checkpoint")  # fmt: skip
    if not differ_only_in_media(run, ablated):
        raise GateError(f"--ablated-run {ablated.path} differs from {run.path} in more than its media mode; run the "
                        f"same command with --media MODE")  # fmt: skip


def _numbers(result: PairedResult) -> dict[str, Any]:
    return {**asdict(result), "test_name": result.test_name, "n_dropped": result.n_dropped}
